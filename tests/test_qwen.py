"""The Qwen teachers' transformers backend, on tiny random-weight models saved like real checkpoints."""

import asyncio
import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest
from afcot_qwen import hf
from afcot_qwen.prompts import clip_wave

from afcot_core import recipe as recipes
from afcot_core import runner
from afcot_core.audio import audio_ref_from_wave
from afcot_core.errors import BadInput
from afcot_core.teacher import Request

from .conftest import QUICKSTART
from .tiny_models import save_omni_thinker, save_qwen3

pytest.importorskip("transformers")


@pytest.fixture(scope="session")
def qwen_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("qwen")
    return save_qwen3(root / "qwen3"), save_omni_thinker(root / "omni")


def _build(plugins, role, name, **config):
    reg = plugins.registry(role).get(name)
    import msgspec

    return reg.build(msgspec.convert(config, reg.config))


def _clip(seconds: float, seed: int):
    rng = np.random.default_rng(seed)
    return audio_ref_from_wave((0.3 * rng.standard_normal(int(16000 * seconds))).astype(np.float32), 16000)


def test_omni_hears_each_clip_and_batches_mix_text_only(plugins, qwen_folders):
    """The audio tower of the real teacher receives each clip's own log-mel (not zeros, not a neighbour's)."""
    _, omni = qwen_folders
    alm = _build(plugins, "teacher_alm", "qwen2.5-omni", model=str(omni), device="cpu", dtype="float32",
                 max_new_tokens=4)
    heard = []
    hook = alm.lm.model.audio_tower.register_forward_pre_hook(
        lambda module, args, kwargs: heard.append(kwargs.get("input_features", args[0] if args else None)),
        with_kwargs=True)
    clips = [_clip(2.0, 1), _clip(0.7, 2)]

    async def ask_all():
        return await asyncio.gather(*(alm.ask("Describe.", c) for c in clips), alm.ask("Describe.", None))

    replies = asyncio.run(ask_all())
    hook.remove()
    assert alm.batch_sizes == [3] and len(replies) == 3 and len(heard) == 1
    # the tower reads the valid frames of every clip, one after the other: each must be that clip's own
    frames = [alm.features(clip_wave(Request("", c)), sampling_rate=16000, return_tensors="np",
                           return_attention_mask=True) for c in clips]
    own = np.concatenate([f["input_features"][0][:, : int(f["attention_mask"][0].sum())] for f in frames], axis=1)
    got = heard[0].float().numpy()
    assert got.shape == own.shape and np.allclose(got, own, atol=1e-5) and np.abs(got).max() > 0.1
    enc = alm.tok([alm._prompt("x", 50, "")], return_tensors="pt")
    assert int((enc["input_ids"] == alm.lm.config.audio_token_index).sum()) == 50



def test_omni_audio_requests_carry_their_own_prompt_prefix_and_placeholder_count(plugins, qwen_folders, monkeypatch):
    """What the bfloat16 thinker is given for a batch of clips: each request's system, text and prefix, as many
    audio placeholders as the tower makes of that clip's frames, and features in the model's dtype; the batch's
    text-only requests go in a second call, padded, with no placeholder."""
    import torch
    from afcot_qwen.prompts import omni_prompt

    _, omni = qwen_folders
    alm = _build(plugins, "teacher_alm", "qwen2.5-omni", model=str(omni), device="cpu", dtype="bfloat16",
                 max_new_tokens=2, system_prompt="Listen closely.")
    given = []
    real = hf._generate
    monkeypatch.setattr(hf, "_generate", lambda lm, tok, enc, config, seeds: given.append(enc) or real(
        lm, tok, enc, config, seeds))
    requests = [Request("Describe the first.", _clip(2.0, 1), "It is"), Request("And this one?", _clip(0.7, 2))]
    texts = [Request("A question without a clip, and a long one.", None, "So"), Request("Short?")]
    assert len(alm.generate([texts[0], *requests, texts[1]])) == 4
    enc, text_enc = given
    asked = [omni_prompt("Listen closely.", r.prompt, 0, r.prefix) for r in texts]
    assert torch.equal(text_enc["input_ids"], alm.tok(asked, return_tensors="pt", padding=True,
                                                      add_special_tokens=False)["input_ids"])
    frames = [int(alm.features(clip_wave(r), sampling_rate=16000, return_tensors="np",
                               return_attention_mask=True)["attention_mask"][0].sum()) for r in requests]
    counts = [hf.audio_token_count(n) for n in frames]
    assert counts[0] > counts[1] > 0
    prompts = [omni_prompt("Listen closely.", r.prompt, n, r.prefix) for r, n in zip(requests, counts, strict=True)]
    expected = alm.tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    assert torch.equal(enc["input_ids"], expected["input_ids"])
    assert enc["input_features"].dtype == torch.bfloat16


def test_a_sampled_omni_teacher_follows_each_request_s_seed_and_keeps_its_reply_whole(plugins, qwen_folders,
                                                                                       monkeypatch):
    """Omni decodes greedily by default; configured to sample, its replies follow the request's seed (the config's
    for a request without one), and a reply is never cut at a ``</think>`` (the thinker does not think)."""
    _, omni = qwen_folders
    clip = _clip(1.0, 3)

    def build(seed):
        return _build(plugins, "teacher_alm", "qwen2.5-omni", model=str(omni), device="cpu", dtype="float32",
                      max_new_tokens=12, temperature=1.0, top_p=1.0, top_k=0, seed=seed)

    alm = build(5)
    asked = [Request("Describe.", clip, seed=s) for s in (1, 1, 2)] + [Request("Describe.", clip)]
    first, again, other, unseeded = alm.generate(asked)
    assert first == again != other
    assert alm.generate([Request("Describe.", clip, seed=5)]) == [unseeded]  # the config's seed
    assert build(6).generate([Request("Describe.", clip)]) != [unseeded]
    monkeypatch.setattr(hf, "_generate", lambda lm, tok, enc, config, seeds: [
        tok.encode("<think>x</think> y<|im_end|>", add_special_tokens=False)] * len(seeds))
    assert alm.generate([Request("Describe.", clip, seed=1), Request("Describe.")]) == ["<think>x</think> y"] * 2

def test_omni_features_padded_to_the_longest_clip_give_the_same_replies(plugins, qwen_folders, monkeypatch):
    _, omni = qwen_folders
    alm = _build(plugins, "teacher_alm", "qwen2.5-omni", model=str(omni), device="cpu", dtype="float32",
                 max_new_tokens=6)
    requests = [Request("Describe.", _clip(s, i)) for i, s in enumerate((0.4, 3.1, 1.7, 9.3))]
    padded = alm.generate(requests)
    features = hf.whisper_features(alm.features, [clip_wave(r) for r in requests])
    assert features["input_features"].shape[-1] < 3000  # not 30 s
    monkeypatch.setattr(hf, "whisper_features", lambda extractor, waves: extractor(
        waves, sampling_rate=16000, return_attention_mask=True, padding="max_length", return_tensors="pt"))
    assert alm.generate(requests) == padded  # Whisper's fixed 30 s padding says the same


def _scripted_qwen3(folder: Path, words: str) -> Path:
    """A real Qwen3 whose weights make it write ``words`` after the generation prompt, one token a step.

    One layer whose attention and MLP outputs are zero passes each token's embedding to the head;
    the head row of each next token is the previous token's embedding, so the model follows the chain.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3Config

    save_qwen3(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    base = AutoModelForCausalLM.from_pretrained(folder)
    config = Qwen3Config(**{**base.config.to_dict(), "num_hidden_layers": 1, "layer_types": None,
                                                     "tie_word_embeddings": False})
    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_config(config)
    chain = [tok.encode("\n", add_special_tokens=False)[-1], *tok.encode(words, add_special_tokens=False)]
    assert len(set(chain)) == len(chain), "every token of the script must be unique"
    with torch.no_grad():
        layer = model.model.layers[0]
        layer.self_attn.o_proj.weight.zero_()
        layer.mlp.down_proj.weight.zero_()
        emb = model.model.embed_tokens.weight
        model.lm_head.weight.zero_()
        for prev, nxt in itertools.pairwise(chain):
            model.lm_head.weight[nxt] = 50 * emb[prev] / emb[prev].norm()
    model.save_pretrained(folder)
    return folder


def test_qwen3_reply_is_the_text_after_think(plugins, tmp_path):
    folder = _scripted_qwen3(tmp_path / "scripted", "<think>ab</think>xy<|im_end|>")
    llm = _build(plugins, "teacher_llm", "qwen3", model=str(folder), device="cpu", dtype="float32",
                 max_new_tokens=12)
    assert llm.generate([Request("hi")]) == ["xy"]  # the model wrote <think>ab</think>xy
    assert llm.generate([Request("hi", prefix="<think>ab</think>")]) == ["xy"]  # continues after a prefix
    short = _build(plugins, "teacher_llm", "qwen3", model=str(folder), device="cpu", dtype="float32",
                   max_new_tokens=5)
    assert short.generate([Request("hi")]) == ["x"]  # five new tokens: <think> a b </think> x


def test_qwen3_samples_each_request_with_its_own_seed(plugins, qwen_folders):
    qwen3, _ = qwen_folders
    llm = _build(plugins, "teacher_llm", "qwen3", model=str(qwen3), device="cpu", dtype="float32",
                 max_new_tokens=8, temperature=1.0, top_p=1.0, top_k=0)
    alone = llm.generate([Request("hi", seed=1)])[0]
    batch = llm.generate([Request("a longer prompt", seed=5), Request("hi", seed=1), Request("hi", seed=2)])
    assert batch[1] == alone  # the batch neighbours do not change a request's sample
    assert len({alone, batch[2], *llm.generate([Request("hi", seed=3), Request("hi", seed=4)])}) > 1
    greedy = _build(plugins, "teacher_llm", "qwen3", model=str(qwen3), device="cpu", dtype="float32",
                    max_new_tokens=8, temperature=0.0)
    assert greedy.generate([Request("hi", seed=1), Request("hi", seed=2)]) == greedy.generate([Request("hi")]) * 2


def test_generate_stage_runs_on_the_real_teachers(plugins, qwen_folders, tmp_path):
    qwen3, omni = qwen_folders
    sets = [f'generate.llm={{use="qwen3", model="{qwen3}", device="cpu", dtype="float32", max_new_tokens=8}}',
            f'generate.alm={{use="qwen2.5-omni", model="{omni}", device="cpu", dtype="float32", max_new_tokens=8}}',
            "generate.source.items=4", "generate.json_retries=0"]
    result = runner.run(recipes.load(QUICKSTART, plugins, sets), plugins, tmp_path, stages=["generate"],
                        show_progress=False)
    counts = result["generate"]
    assert counts["accepted"] + counts["rejected"] + counts["failed"] == 4 and counts["failed"] == 0
    # random weights never write valid JSON: every item is rejected, with the reason
    lines = (tmp_path / "generate" / "rejects-000000.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all('"reason":"' in line for line in lines)


def test_missing_weights_stop_the_run_before_any_work(plugins, tmp_path):
    sets = ['generate.llm={use="qwen3", model="Qwen/Qwen3-8B"}']
    with pytest.raises(BadInput) as err:
        runner.run(recipes.load(QUICKSTART, plugins, sets), plugins, tmp_path / "out", stages=["generate"],
                   show_progress=False)
    assert "Qwen/Qwen3-8B" in str(err.value) and "download Qwen/Qwen3-8B" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_backends_missing_their_package_or_key_stop_at_preflight(plugins, qwen_folders, tmp_path, monkeypatch):
    qwen3, _ = qwen_folders
    monkeypatch.delenv("AFCOT_UNSET_KEY", raising=False)
    sets = [f'generate.llm={{use="qwen3", backend="vllm", model="{qwen3}"}}',
            'generate.alm={use="qwen2.5-omni", backend="openai", base_urls=["http://127.0.0.1:9/v1"], '
            'api_key_env="AFCOT_UNSET_KEY"}']
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    with pytest.raises(BadInput) as err:
        runner.run(recipes.load(QUICKSTART, plugins, sets), plugins, tmp_path / "out", stages=["generate"],
                   show_progress=False)
    assert "pip install 'afcot[vllm]'" in str(err.value) and "AFCOT_UNSET_KEY" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_a_batch_is_padded_on_the_left_so_each_reply_is_the_one_it_gets_alone(plugins, qwen_folders):
    qwen3, _ = qwen_folders
    llm = _build(plugins, "teacher_llm", "qwen3", model=str(qwen3), device="cpu", dtype="float32",
                 max_new_tokens=6, temperature=0.0)
    requests = [Request("hi"), Request("a much longer prompt than the first one"), Request("mid length")]
    assert llm.generate(requests) == [llm.generate([r])[0] for r in requests]


def test_the_reply_rule_takes_the_text_after_the_last_think_without_control_tokens():
    from afcot_qwen.prompts import reply_text

    assert reply_text("<think>a</think>b</think> xy<|im_end|><|endoftext|>", thinking=True) == "xy"
    assert reply_text("no thinking here<|im_end|>", thinking=True) == "no thinking here"
    assert reply_text("<think>kept</think>x", thinking=False) == "<think>kept</think>x"


class _Output:
    """The two attributes of a vLLM ``RequestOutput`` that the backend reads (``outputs[0].text``)."""

    def __init__(self, text: str) -> None:
        self.outputs = [type("Completion", (), {"text": text})()]


def test_vllm_requests_carry_their_own_seed_only_when_sampling_and_keep_special_tokens(qwen_folders):
    from afcot_qwen.config import QwenLlmConfig, QwenOmniConfig
    from afcot_qwen.vllm_backend import sampling_args

    sampled = QwenLlmConfig(model="m", seed=99, max_new_tokens=5)
    args = sampling_args(sampled, [Request("a", seed=7), Request("b", seed=8), Request("c")])
    assert [a["seed"] for a in args] == [7, 8, 99]
    assert args[0] == {"temperature": 0.6, "top_p": 0.95, "top_k": 20, "seed": 7, "max_tokens": 5,
                       "skip_special_tokens": False}  # Qwen3's thinking-mode sampling, as vLLM names it
    assert sampling_args(QwenLlmConfig(model="m", top_k=0), [Request("a")])[0]["top_k"] == -1  # vLLM's "off"
    greedy = sampling_args(QwenOmniConfig(model="m"), [Request("a", seed=7)])
    assert greedy == [{"temperature": 0.0, "max_tokens": 256, "skip_special_tokens": False}]


def test_vllm_replies_cut_the_thinking_of_qwen3_and_not_of_omni():
    from afcot_qwen.vllm_backend import VllmQwenLlm, VllmQwenOmni, replies

    outputs = [_Output("<think>a</think>b</think>xy<|im_end|>"), _Output("plain")]
    assert replies(outputs, VllmQwenLlm.thinking) == ["xy", "plain"]
    assert replies([_Output("<think>x</think>y")], VllmQwenOmni.thinking) == ["<think>x</think>y"]


def test_vllm_engine_arguments_pass_through_and_scheduling_ones_stay_out_of_the_fingerprint(plugins, qwen_folders):
    from afcot_qwen.config import QwenLlmConfig
    from afcot_qwen.vllm_backend import engine_args

    from afcot_core.recipe import component

    qwen3, _ = qwen_folders
    config = QwenLlmConfig(model=str(qwen3), backend="vllm",
                           engine_args={"enable_chunked_prefill": False, "max_model_len": 512})
    assert config.engine_args == {"max_model_len": 512} and config.engine_run_args == {"enable_chunked_prefill": False}
    kwargs = engine_args(config, limit_mm_per_prompt={"audio": 1})
    assert kwargs == {"model": str(qwen3), "dtype": "bfloat16", "seed": config.seed, "tensor_parallel_size": 1,
                      "gpu_memory_utilization": config.gpu_memory_utilization, "limit_mm_per_prompt": {"audio": 1},
                      "max_model_len": 512, "enable_chunked_prefill": False}
    table = {"use": "qwen3", "model": str(qwen3)}
    ids = [component({**table, "engine_args": e}, "teacher_llm", "generate.llm", plugins).identity_table()
           for e in ({}, {"max_num_seqs": 8}, {"kv_cache_dtype": "fp8"})]
    assert ids[0] == ids[1] != ids[2]
    with pytest.raises(ValueError, match="engine_args may not set seed"):
        QwenLlmConfig(engine_args={"seed": 1})


def test_a_dead_vllm_engine_is_told_apart_from_a_failing_request():
    from afcot_qwen.vllm_backend import is_dead_engine

    class EngineDeadError(RuntimeError):  # vLLM's name (vllm.v1.engine.exceptions)
        pass

    try:
        try:
            raise EngineDeadError("EngineCore encountered an issue")
        except EngineDeadError as exc:
            raise RuntimeError("generate failed") from exc
    except RuntimeError as chained:
        assert is_dead_engine(chained)
    assert not is_dead_engine(RuntimeError("one request too long"))
    caused = RuntimeError("generate failed")
    caused.__cause__ = EngineDeadError("gone")  # an explicit cause without a context
    assert is_dead_engine(caused)
    first, second = RuntimeError("a"), ValueError("b")
    first.__context__, second.__context__ = second, first  # a circle of contexts ends the search
    assert not is_dead_engine(first)


def test_vllm_logs_go_to_stderr(capsys):
    import logging
    import logging.config
    import re

    from afcot_qwen.vllm_backend import logging_config

    existing, seen_by_root = logging.getLogger("afcot.already.there"), []
    root_catcher = logging.Handler()
    root_catcher.emit = seen_by_root.append  # type: ignore[method-assign]
    logging.getLogger().addHandler(root_catcher)
    try:
        logging.config.dictConfig(logging_config())
        logging.getLogger("vllm.engine").info("engine started")
        out = capsys.readouterr()
    finally:
        logging.getLogger().removeHandler(root_catcher)
        logging.getLogger("vllm").handlers.clear()
    assert out.out == "" and re.fullmatch(  # vLLM's own line layout, written by the handler (not an error report)
        r"vllm INFO \d{4}-\d\d-\d\d [\d:,]+ test_qwen\.py:\d+\] engine started\n", out.err), out.err
    assert seen_by_root == [] and not existing.disabled  # vLLM's lines stop at its handler; afcot's loggers live on


def test_processes_forked_after_an_engine_starts_die_with_their_parent(tmp_path):
    """kill -9 of afcot takes vLLM's engine and worker processes (forked children) with it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = ("import multiprocessing as mp, os, sys, time\n"
              "from afcot_qwen.vllm_backend import children_die_with_parent\n"
              "children_die_with_parent()\n"
              "child = mp.get_context('fork').Process(target=time.sleep, args=(60,))\n"
              "child.start()\n"
              "print(child.pid, os.environ['VLLM_WORKER_MULTIPROC_METHOD'], flush=True)\n"
              "time.sleep(60)\n")
    env = {k: v for k, v in os.environ.items() if k != "VLLM_WORKER_MULTIPROC_METHOD"}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    pid, method = proc.stdout.readline().split()
    assert method == "fork"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(int(pid), signal.SIGKILL)
        raise AssertionError("the child outlived its killed parent")


def test_an_openai_teacher_without_servers_names_the_variable_to_set(monkeypatch):
    from afcot_qwen.config import QwenLlmConfig, preflight

    monkeypatch.delenv("AFCOT_NO_URLS", raising=False)
    config = QwenLlmConfig(model="m", backend="openai", base_urls_env="AFCOT_NO_URLS")
    assert [m for m in preflight(config) if "server" in m] == [
        "server URLs: set the environment variable AFCOT_NO_URLS (comma-separated)"]


def test_the_clip_sent_to_a_server_is_a_16_khz_mono_float_wav_of_exactly_our_samples():
    import base64
    import io
    import struct

    import numpy as np
    import soundfile as sf
    from afcot_qwen.openai_backend import wav_base64

    wave = np.array([0.5, -0.25, 0.125, 1 / 3], dtype=np.float64)  # float64 in: float32 samples out
    raw = base64.b64decode(wav_base64(wave))
    assert raw[:4] == b"RIFF" and struct.unpack("<I", raw[4:8])[0] == len(raw) - 8 and raw[8:16] == b"WAVEfmt "
    assert struct.unpack("<IHHIIHH", raw[16:36]) == (16, 3, 1, 16000, 64000, 4, 32)  # IEEE float, mono, 4-byte
    assert raw[36:40] == b"data" and struct.unpack("<I", raw[40:44])[0] == 16 == len(raw) - 44
    samples, rate = sf.read(io.BytesIO(raw), dtype="float32")
    assert rate == 16000 and samples.tolist() == wave.astype(np.float32).tolist()


def test_cuda_means_this_process_s_own_gpu_under_torchrun(monkeypatch):
    from afcot_qwen.hf import rank_device

    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert rank_device("cuda") == "cuda" and rank_device("cpu") == "cpu"
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert rank_device("cuda") == "cuda:3" and rank_device("cpu") == "cpu" and rank_device("cuda:1") == "cuda:1"


def test_a_tokenizer_without_a_pad_token_pads_on_the_left_with_its_eos(qwen_folders, tmp_path):
    from afcot_qwen.hf import _load_tokenizer
    from transformers import AutoTokenizer

    qwen3, _ = qwen_folders
    tok = AutoTokenizer.from_pretrained(qwen3)
    tok.pad_token = None
    tok.save_pretrained(tmp_path / "no-pad")
    loaded = _load_tokenizer(tmp_path / "no-pad")
    assert loaded.padding_side == "left" and loaded.pad_token == tok.eos_token is not None
    tok.eos_token = None
    tok.save_pretrained(tmp_path / "neither")
    assert _load_tokenizer(tmp_path / "neither").pad_token == "<|endoftext|>"
    assert _load_tokenizer(qwen3).pad_token == AutoTokenizer.from_pretrained(qwen3).pad_token  # its own is kept


def test_the_omni_prompt_is_chatml_with_the_audio_placeholders_before_the_text(plugins, qwen_folders):
    from afcot_qwen.prompts import omni_prompt

    assert omni_prompt("Be brief.", "Describe.", 0) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nDescribe.<|im_end|>\n<|im_start|>assistant\n")
    assert omni_prompt("S", "T", 2, "Pre") == ("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n<|audio_bos|>"
                                               "<|AUDIO|><|AUDIO|><|audio_eos|>T<|im_end|>\n<|im_start|>assistant\nPre")
    _, omni = qwen_folders
    alm = _build(plugins, "teacher_alm", "qwen2.5-omni", model=str(omni), device="cpu", dtype="bfloat16",
                 system_prompt="Listen.")
    assert alm._prompt("Describe.", 1, "A") == omni_prompt("Listen.", "Describe.", 1, "A")
    assert alm.model == str(omni) and next(alm.lm.parameters()).dtype.is_floating_point
    assert str(next(alm.lm.parameters()).dtype) == "torch.bfloat16"  # the configured dtype, not the saved one


def test_the_audio_placeholder_count_is_the_omni_tower_s_own():
    import torch
    from afcot_qwen.hf import audio_token_count
    from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import Qwen2_5OmniAudioEncoder

    frames = torch.tensor([1, 2, 3, 4, 5, 7, 99, 100, 101, 1499, 1500, 2999, 3000])
    _, tokens = Qwen2_5OmniAudioEncoder._get_feat_extract_output_lengths(None, frames)
    assert [audio_token_count(int(f)) for f in frames] == tokens.tolist()


def test_audio_past_30_s_is_cut_where_the_tower_stops_reading():
    import numpy as np
    from afcot_qwen.prompts import clip_wave

    from afcot_core.api import audio_ref_from_wave

    long = audio_ref_from_wave(np.full(16000 * 31, 0.1, dtype=np.float32), 16000)
    assert len(clip_wave(Request("", long))) == 30 * 16000


def test_weights_that_are_not_here_name_the_model_and_the_command_to_see_why(tmp_path):
    from afcot_qwen.hf import weights_folder

    from afcot_core.api import AfcotError

    with pytest.raises(AfcotError, match=r"weights for '.*nowhere' are not on this machine; run `afcot recipe plan`"):
        weights_folder(str(tmp_path / "nowhere"))


@pytest.mark.parametrize("top_k,top_p", [(4, 0.9), (2, 1.0), (1, 1.0), (0, 0.8)])
def test_seeded_sampling_draws_from_transformers_own_temperature_top_k_top_p_distribution(top_k, top_p):
    import torch
    from afcot_qwen.sampling import SeededSampling
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    scores = torch.tensor([[2.0, 1.5, 1.0, 0.5, 0.0, -1.0], [-1.0, 0.2, 3.0, 0.1, 2.5, 0.0]])
    ids = torch.zeros(2, 1, dtype=torch.long)
    expected = scores.clone()
    warps = (TemperatureLogitsWarper(0.7), top_k and TopKLogitsWarper(top_k), top_p < 1 and TopPLogitsWarper(top_p))
    for warp in warps:
        expected = warp(ids, expected) if warp else expected
    expected = expected.softmax(-1)
    sampler = SeededSampling(0.7, top_p, top_k, [1, 2], "cpu")
    draws = 4000
    counts = torch.zeros_like(scores)
    for _ in range(draws):
        out = sampler(ids, scores)
        assert ((out == 0).sum(-1) == 1).all() and torch.isinf(out).sum() == 2 * 5  # one token per row
        counts += out == 0
    assert ((counts > 0) == (expected > 0)).all()  # the same nucleus: top-k and top-p cut where transformers cuts
    assert torch.allclose(counts / draws, expected, atol=0.03), (counts / draws, expected)


def test_the_nucleus_is_the_smallest_set_whose_probability_reaches_top_p():
    """Four equal tokens and top_p = 0.5: two of them reach it exactly, so a third is never drawn."""
    import torch
    from afcot_qwen.sampling import SeededSampling

    sampler = SeededSampling(1.0, 0.5, 0, [3], "cpu")
    scores = torch.tensor([[0.0, 0.0, 0.0, 0.0, float("-inf")]])
    drawn = {int(sampler(torch.zeros(1, 1, dtype=torch.long), scores).argmax()) for _ in range(300)}
    assert len(drawn) == 2 and drawn <= {0, 1, 2, 3}
