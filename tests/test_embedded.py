import asyncio
import collections
import json

import numpy as np
from afcot_embedded.alm import EmbeddedAlm, EmbeddedAlmConfig
from afcot_embedded.grammar import SUB_QUESTIONS
from afcot_embedded.listen import measure
from afcot_embedded.llm import EmbeddedLlm, EmbeddedLlmConfig, ScriptedLlm
from afcot_embedded.source import EmbeddedSource, EmbeddedSourceConfig, make_item
from afcot_embedded.world import SAMPLE_RATE, leaf_classes, ontology, synthesize

from afcot_core.audio import audio_ref_from_wave
from afcot_core.template import COT_SUFFIX, extract_conclusion


def test_hierarchy_has_three_levels_below_the_root_and_at_least_12_leaves():
    leaves = leaf_classes()
    assert len(leaves) >= 12
    assert len({c.parent for c in leaves.values()}) >= 6 and len({c.grandparent for c in leaves.values()}) == 3
    ids = {n["id"] for n in ontology()}
    assert all(child in ids for n in ontology() for child in n["child_ids"])
    for c in leaves.values():  # every leaf has a sibling, and cousins
        assert sum(o.parent == c.parent for o in leaves.values()) >= 2


def test_source_is_deterministic_under_a_seed():
    a, b = make_item(7, 3, 0.5), make_item(7, 3, 0.5)
    assert a == b
    assert make_item(7, 4, 0.5).audio.sha256 != a.audio.sha256
    items = [i for p in EmbeddedSource(EmbeddedSourceConfig(items=60, seed=1)).partitions(25) for i in p]
    assert len(items) == 60 and len({i.id for i in items}) == 60
    assert {"aqa", "classification"} == {i.kind for i in items}
    for item in items:
        if item.choices:
            assert item.answer in item.choices and len(set(item.choices)) == len(item.choices)


def test_dsp_measurements_agree_with_the_synthesis_parameters():
    errors = total = 0
    for j, label in enumerate(sorted(leaf_classes())):
        for i in range(6):
            clip = synthesize(label, np.random.default_rng([99, i, j]))
            m = measure(clip.wave, SAMPLE_RATE)
            for prop, value in clip.truth.items():
                if prop == "duration":
                    assert abs(m.duration - value) < 0.02
                    continue
                total += 1
                observed = m.value(prop)
                errors += not (abs(observed - value) <= 1 if prop == "event_count" else observed == value)
    assert errors / total < 0.05


def _ask(alm: EmbeddedAlm, prompt: str, ref) -> str:
    return asyncio.run(alm.ask(prompt, ref)).text


def test_the_alm_listens_swapping_the_audio_changes_its_answers():
    alm = EmbeddedAlm(EmbeddedAlmConfig())
    rising = audio_ref_from_wave(synthesize("rising chirp", np.random.default_rng(1)).wave, SAMPLE_RATE)
    falling = audio_ref_from_wave(synthesize("falling chirp", np.random.default_rng(1)).wave, SAMPLE_RATE)
    q = SUB_QUESTIONS["pitch_direction"]
    assert _ask(alm, q, rising) == "The pitch is rising."
    assert _ask(alm, q, falling) == "The pitch is falling."
    assert _ask(alm, "Generate caption for this audio input.", rising) != _ask(
        alm, "Generate caption for this audio input.", falling)
    assert "on 3 of 3" in _ask(alm, "How does this sound fit with the label 'rising chirp'?", rising)
    assert "on 3 of 3" not in _ask(alm, "How does this sound fit with the label 'rising chirp'?", falling)
    assert "need to hear" in _ask(alm, q, None)


def test_the_alm_answers_benchmark_questions_in_the_tagged_format():
    alm = EmbeddedAlm(EmbeddedAlmConfig())
    ref = audio_ref_from_wave(synthesize("hiss", np.random.default_rng(2)).wave, SAMPLE_RATE)
    prompt = f"Classify the sound.\n(A) rumble. (B) hiss. (C) wind. (D) surf. {COT_SUFFIX}"
    assert extract_conclusion(_ask(alm, prompt, ref)) == "(B) hiss"


def test_the_scripted_llm_only_reads_the_prompt():
    llm = ScriptedLlm()
    gate = json.loads(llm.reply('Question: Is the pitch rising, and is it quiet?\n\nReply with JSON only: '
                                '{"require_step_by_step": 0 or 1, "sub_questions": []}'))
    assert gate["require_step_by_step"] == 1 and len(gate["sub_questions"]) == 2
    chain = ("Caption: A tone.\nReasoning chain:\n- Is the pitch rising, falling, or steady? Answer: The pitch is "
             "rising.\n- How loud is the sound overall? Answer: The sound is quiet overall.\n\n")
    question = "Question: Is the pitch rising, and is it quiet?\n\n"
    assert json.loads(llm.reply(chain + question + 'Reply with JSON only: {"answer": "..."}'))["answer"] == "yes"
    judge = chain + question + 'Ground truth answer: no\n\nReply with JSON only: {"validation": 1}'
    assert json.loads(llm.reply(judge))["validation"] == 0
    assert llm.reply("Tell me a joke.") == "I am not sure what you are asking for."


def test_accept_rate_tracks_listening(plugins):
    """A deaf ALM (every clip replaced by silence-free noise) must get far fewer items accepted."""
    from afcot_embedded.llm import EmbeddedLlm, EmbeddedLlmConfig

    from afcot_core.protocols import ItemContext

    strategies = {k: plugins.registry("strategy").get(n).build(plugins.registry("strategy").get(n).config())
                  for k, n in (("aqa", "alg6-aqa-subquestions"), ("classification", "alg8-classification-mcq"))}
    accept = plugins.registry("validator").get("paper-accept")
    validator = accept.build(accept.config())
    noise = audio_ref_from_wave(np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1,
                                SAMPLE_RATE)
    import msgspec

    async def rate(swap: bool) -> float:
        alm, llm = EmbeddedAlm(EmbeddedAlmConfig()), EmbeddedLlm(EmbeddedLlmConfig())
        counts = collections.Counter()
        for i in range(40):
            item = make_item(i, 11, 1.0)
            if swap:
                item = msgspec.structs.replace(item, audio=noise)
            ev = await strategies[item.kind].gather(item, ItemContext(alm, llm))
            counts[validator.check(item, ev, None) is None] += 1
        return counts[True] / 40

    honest, deaf = asyncio.run(rate(False)), asyncio.run(rate(True))
    assert honest > 0.8 and deaf < 0.5


def test_the_alm_continues_after_a_prefix():
    alm = EmbeddedAlm(EmbeddedAlmConfig())
    ref = audio_ref_from_wave(synthesize("hiss", np.random.default_rng(2)).wave, SAMPLE_RATE)
    prompt = f"Classify the sound.\n(A) rumble. (B) hiss. (C) wind. (D) surf. {COT_SUFFIX}"
    prefix = "<SUMMARY> s </SUMMARY>\n<CAPTION> c </CAPTION>\n<REASONING> r </REASONING>\n<CONCLUSION>"
    reply = asyncio.run(alm.ask(prompt, ref, prefix=prefix)).text
    assert reply.strip() == "(B) hiss </CONCLUSION>"
    assert extract_conclusion(prefix + reply) == "(B) hiss"


def test_the_scripted_llm_answers_from_a_reasoning_alone():
    from afcot_paper.prompts import Prompts

    llm = ScriptedLlm()

    def ask(reasoning, question, choices=None):
        from afcot_core.template import format_question

        prompt = Prompts().fill("causality", reasoning=reasoning, question=format_question(question, choices))
        return json.loads(llm.reply(prompt))["answer"]

    question = "Are there fewer than 3 separate events, and does it last shorter than 3 seconds?"
    assert ask("First, i hear 5 separate events. Finally, the sound lasts about 2.2 seconds.", question) == "no"
    assert ask("The sound lasts about 2.2 seconds.", question) == "unsure"  # the reasoning leaves a clause open
    labels = ["hum", "whistle"]
    assert ask("Is the pitch high, medium, or low? The pitch is high, around 1800 Hz.", "Classify the sound.",
               labels) == "whistle"  # what a whistle sounds like is knowledge; the pitch is the evidence


def test_embedded_teachers_say_when_they_sample():
    """A sampling teacher's identical requests with other seeds must not share one in-flight reply."""
    assert EmbeddedLlm(EmbeddedLlmConfig()).sampled
    assert not EmbeddedLlm(EmbeddedLlmConfig(temperature=0.0)).sampled
    assert not EmbeddedAlm(EmbeddedAlmConfig()).sampled
    assert EmbeddedAlm(EmbeddedAlmConfig(temperature=0.5)).sampled
