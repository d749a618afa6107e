"""Finding and loading an AF2 model named in a recipe: our converted folder, NVIDIA's released layout (converted
in memory), or ``random:tiny``; and the preflight messages with the ``hf download`` commands for what is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from afcot_core.api import AfcotError, expand, hf_cache_dir
from afcot_flamingo.config import TINY  # ``model = "random:tiny"``: a tiny random-weight AF2 (no weights needed)

#: the base LM of the released AF2 models
BASE_LLM = "Qwen/Qwen2.5-3B"
_INSTALL = "pip install 'afcot[models]'"


def _snapshot(model: str, marker: str) -> Path | None:
    path = Path(expand(model)).expanduser()
    if (path / marker).is_file():
        return path
    if "/" not in model or model.startswith((".", "/", "~")):
        return None
    snapshots = hf_cache_dir() / f"models--{model.replace('/', '--')}" / "snapshots"
    found = sorted(snapshots.glob(f"*/{marker}"), key=lambda p: p.stat().st_mtime) if snapshots.is_dir() else []
    return found[-1].parents[len(Path(marker).parts) - 1] if found else None


def converted_folder(model: str) -> Path | None:
    """The folder of an AF2 model in our format (``config.json`` + ``model.safetensors``), or None."""
    path = _snapshot(model, "model.safetensors")
    return path if path is not None and (path / "config.json").is_file() else None


def released_folder(model: str) -> Path | None:
    """The folder of a release as NVIDIA ships it (``safe_ckpt/metadata.json``), or None."""
    return _snapshot(model, "safe_ckpt/metadata.json")


def llm_folder(llm: str) -> Path | None:
    return _snapshot(llm, "config.json")


def missing(model: str, llm: str, key: str = "model") -> list[str]:
    """What a recipe naming ``model`` (and ``llm`` for a release) lacks on this machine, with the commands to fetch it.

    Paths under ``{run}`` are made by an earlier stage and are not checked.
    """
    from afcot_core.api import missing_packages

    problems = missing_packages({"torch": _INSTALL, "torchaudio": _INSTALL, "transformers": _INSTALL,
                                 "safetensors": _INSTALL})
    if model == TINY or "{run}" in model or converted_folder(model) is not None:
        return problems
    if released_folder(model) is None:
        name = model.rsplit("/", 1)[-1]
        problems.append(f"{key}: AF2 weights '{model}' are not on this machine (looked for our converted folder, "
                        f"for safe_ckpt/metadata.json, and in the Hugging Face cache {hf_cache_dir()}). Fetch the "
                        f"release with `hf download {model} --include 'safe_ckpt/*' 'clap_ckpt/*'` "
                        f"(or `hf download {model} --local-dir {name}` and set {key} = \"{name}\")")
    if llm_folder(llm) is None:
        problems.append(f"llm: the base LM '{llm}' of the AF2 release is not on this machine; fetch it with "
                        f"`hf download {llm}` (or set llm = \"/path/to/{llm.rsplit('/', 1)[-1]}\")")
    return problems


def load(model: str, llm: str = BASE_LLM, workdir: Path | None = None, skeleton: bool = False) -> tuple[Any, Any]:
    """(``Af2Model`` in float32 on the CPU, its tokenizer with left padding) for a recipe's ``model``.

    ``random:tiny`` is written to ``workdir/init`` once (the trainer) or built in memory. ``skeleton``: an
    Af2Model of our format is built with its parameters on the meta device (no weights read); a release is
    converted (and so loaded) either way.
    """
    from transformers import AutoTokenizer

    from afcot_flamingo.af2.model import Af2Model

    if model == TINY:
        from afcot_flamingo.af2.tiny import save_tiny_af2

        if workdir is None:
            import tempfile

            workdir = Path(tempfile.mkdtemp(prefix="af2-tiny-"))
        folder = workdir / "init"
        if not (folder / "model.safetensors").exists():
            save_tiny_af2(folder)
        model = str(folder)
    ours = converted_folder(model)
    if ours is not None and skeleton:
        import msgspec

        from afcot_flamingo.af2.config import CONFIG_FILE, Af2Config
        from afcot_flamingo.training.parallel import empty_weights

        with empty_weights():
            net = Af2Model(msgspec.json.decode((ours / CONFIG_FILE).read_bytes(), type=Af2Config))
        net.llm.tie_weights()  # tied inside the meta context, the output layer got a parameter of its own
        tokenizer = AutoTokenizer.from_pretrained(ours)
    elif ours is not None:
        net, tokenizer = Af2Model.from_pretrained(ours), AutoTokenizer.from_pretrained(ours)
    else:
        release, base = released_folder(model), llm_folder(llm)
        if "{run}" in model and release is None:
            raise AfcotError(f"AF2 weights '{expand(model)}' are not on this machine (this run's own checkpoint: "
                             "run the train stage first)")
        if release is None or base is None:
            raise AfcotError("; ".join(missing(model, llm)))
        from afcot_flamingo.af2.convert import converted_model

        net, tokenizer = converted_model(base, release)
    tokenizer.padding_side = "left"
    return net, tokenizer
