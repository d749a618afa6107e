"""Algorithms 6–9: call structure on the embedded world, every reject path and fallback, decoders under fuzz."""

import asyncio
import itertools
import json
import re

import pytest
from afcot_embedded.alm import EmbeddedAlm, EmbeddedAlmConfig
from afcot_embedded.llm import EmbeddedLlm, EmbeddedLlmConfig
from afcot_embedded.source import make_item
from afcot_paper.algorithms import (
    Alg6,
    Alg6Config,
    Alg7,
    Alg7Config,
    Alg8,
    Alg8Config,
    Alg9,
    Alg9Config,
)
from afcot_paper.validators import AcceptConfig, FormatConfig, FormatRules, PaperAccept
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from afcot_core.errors import Rejected
from afcot_core.protocols import ItemContext
from afcot_core.records import AudioRef, Item
from afcot_core.teacher import Request, Teacher
from afcot_core.template import format_question, parse_strict, render

ITEMS = [make_item(i, 0, 0.5) for i in range(40)]
ALM, LLM = EmbeddedAlm(EmbeddedAlmConfig()), EmbeddedLlm(EmbeddedLlmConfig())


def run(strategy, item, alm=ALM, llm=LLM, retries=2):
    """Gather, the paper's accept and format rules, compose: (cot or None, reason or None, ctx, evidence)."""
    ctx = ItemContext(alm, llm, retries, item.id, 0)

    async def go():
        evidence = None
        try:
            evidence = await strategy.gather(item, ctx)
            for check in (PaperAccept(AcceptConfig()), FormatRules(FormatConfig())):
                if reason := check.check(item, evidence, None):
                    raise Rejected(f"{check.name}: {reason}")
            cot = await strategy.compose(item, evidence, ctx)
            return cot, None, ctx, evidence
        except Rejected as exc:
            return None, exc.reason, ctx, evidence

    return asyncio.run(go())


def accepted(strategy, kind):
    out = [r for item in ITEMS if item.kind == kind and (r := run(strategy, item))[0] is not None]
    assert len(out) >= 5, f"{strategy.name} accepted only {len(out)} embedded items"
    for cot, _, _, _ in out:
        assert parse_strict(render(cot)) == cot
    return out


def test_alg6_one_gate_then_caption_and_every_sub_question_together():
    for _cot, _, ctx, _ in accepted(Alg6(Alg6Config()), "aqa"):
        trace = ctx.trace
        subs = json.loads(trace[0].reply)["sub_questions"]
        assert trace[0].role == "llm" and "require_step_by_step" in trace[0].prompt
        alm = trace[1: 2 + len(subs)]  # one block of ALM calls right after the gate, nothing between
        assert [c.role for c in alm] == ["alm"] * (1 + len(subs)) and all(c.with_audio for c in alm)
        assert [c.prompt for c in alm] == ["Generate caption for this audio input.", *subs]
        assert all(c.role == "llm" for c in trace[2 + len(subs):])
        assert sum(c.role == "alm" for c in trace) == 1 + len(subs)


def test_alg7_alternates_llm_follow_ups_and_alm_answers_for_at_most_10_rounds():
    for cot, _, ctx, evidence in accepted(Alg7(Alg7Config()), "aqa"):
        roles = "".join("L" if c.role == "llm" else "A" for c in ctx.trace)
        assert re.fullmatch(r"LA(LA){2,10}L+", roles), roles  # gate, caption, rounds, final answer and compose
        followups = [c for c in ctx.trace if '"followup"' in c.prompt]
        asked = [c.prompt for c in ctx.trace[2:] if c.role == "alm"]
        assert asked == [json.loads(c.reply)["followup"] for c in followups[:-1]]  # each ALM query is a follow-up
        assert json.loads(followups[-1].reply)["answer"] != "unsure"
        assert cot.reasoning.startswith(f"{asked[0]} {evidence.chain[1][1]}\n")  # the raw rounds open REASONING


def test_alg8_caption_then_describe_without_audio_and_fit_with_audio_per_choice():
    for cot, _, ctx, _ in accepted(Alg8(Alg8Config()), "classification"):
        alm = [c for c in ctx.trace if c.role == "alm"]
        item = next(i for i in ITEMS if f"one of {', '.join(i.choices or [])}." in cot.summary)
        assert len(alm) == 1 + 2 * len(item.choices)
        assert alm[0].with_audio and alm[0].prompt == "Generate caption for this audio input."
        for choice, describe, fit in zip(item.choices, alm[1::2], alm[2::2], strict=True):
            assert f"'{choice}'" in describe.prompt and not describe.with_audio
            assert f"'{choice}'" in fit.prompt and fit.with_audio


def test_alg9_asks_one_question_per_round_and_the_choices_shrink():
    for _, _, ctx, evidence in accepted(Alg9(Alg9Config()), "classification"):
        roles = "".join("L" if c.role == "llm" else "A" for c in ctx.trace)
        assert re.fullmatch(r"A(LA){2,10}L+", roles), roles
        rounds = [c for c in ctx.trace if '"remaining"' in c.prompt]
        shown = [re.findall(r"^  - (.+)$", c.prompt.split("closely related labels:")[1], re.MULTILINE)
                 for c in rounds]
        assert all(set(b) <= set(a) for a, b in itertools.pairwise(shown)) and len(shown[-1]) < len(shown[0])
        assert len(json.loads(rounds[-1].reply)["remaining"]) == 1
        assert evidence.notes["remaining"][-1] == [evidence.prediction]


class Scripted(Teacher):
    """A teacher that replies from a script: the first (pattern, reply) whose pattern is in the prompt."""

    offload = False

    def __init__(self, role, script, default="I cannot tell."):
        super().__init__()
        self.role, self.model, self.script, self.default = role, f"scripted-{role}", script, default

    def generate(self, requests: list[Request]) -> list[str]:
        out = []
        for r in requests:
            reply = next((rep for pat, rep in self.script if pat in r.prompt), self.default)
            out.append(reply(r) if callable(reply) else reply)
        return out


AQA = Item(id="q1", audio=AudioRef(path="unused.flac"), question="Is the gull calling, and what preys on it?",
           answer="(B) a hawk", kind="aqa", choices=["a fox", "a hawk"])
CLS = Item(id="c1", audio=AudioRef(path="unused.flac"), question="Classify the sound.", answer="gull",
           kind="classification", choices=["gull", "crow", "owl"])
GOOD = {"gate": '{"require_step_by_step": 1, "sub_questions": ["Is a gull calling?", "What preys on gulls?"]}',
        "predict": '{"answer": "it is a hawk"}', "validate": '{"validation": 0}',
        "summary": '{"summary": "I check the bird, then its predators."}',
        "reasoning": '{"reasoning": "A gull calls; hawks prey on gulls."}'}
KEYS = {"gate": "require_step_by_step", "predict": 'with the key "answer"', "validate": '"validation"',
        "summary": '"summary"', "reasoning": '"reasoning"', "followup": '"followup"', "remaining": '"remaining"',
        "causality": "line of reasoning"}
ALM_SCRIPT = Scripted("alm", [("caption", "A gull calls twice over waves."), ("preys", "Hawks prey on gulls."),
                              ("gull", "Yes, a gull is calling.")], default="I hear a bird.")


def llm_with(**replies):
    table = {**GOOD, **replies}
    order = ["causality", "remaining", "followup", "gate", "validate", "summary", "reasoning", "predict"]
    return Scripted("llm", [(KEYS[k], table[k]) for k in order if k in table])


@pytest.mark.parametrize("replies, reason", [
    ({"gate": '{"require_step_by_step": 0, "sub_questions": []}'}, "gate/no-step-by-step"),
    ({"gate": '{"require_step_by_step": "1", "sub_questions": []}'}, "gate/no-sub-questions"),
    ({"gate": '{"require_step_by_step": 1, "sub_questions": "is it a gull"}'}, "gate/no-sub-questions"),
    ({"gate": "require_step_by_step: yes"}, "gate/malformed-json"),
    ({"predict": '{"answer": "a fox"}'}, "paper-accept"),
    ({"predict": "{broken", "validate": "{broken"}, "paper-accept"),
    ({"predict": '{"answer": "a hawk"}', "summary": "no json here"}, "summary/malformed-json"),
    ({"predict": '{"answer": "a hawk"}', "reasoning": '{"text": "x"}'}, "reasoning/malformed-json"),
])
def test_alg6_reject_paths_name_their_code(replies, reason):
    cot, got, _, _ = run(Alg6(Alg6Config()), AQA, ALM_SCRIPT, llm_with(**replies))
    assert cot is None and got.split(":")[0] == reason


def test_accept_rule_follows_the_judge_and_strips_the_option_tag():
    # the prediction misses; the judge alone decides
    cot, reason, _, _ = run(Alg6(Alg6Config()), AQA, ALM_SCRIPT, llm_with(predict='{"answer": "unsure"}',
                                                                            validate='{"validation": "1"}'))
    assert reason is None and cot.conclusion == "(B) a hawk"  # the ground truth exactly as given
    cot, reason, _, _ = run(Alg6(Alg6Config()), AQA, ALM_SCRIPT, llm_with(predict='{"answer": "unsure"}'))
    assert reason.startswith("paper-accept")
    # the prediction ends with the answer without its tag: accepted though the judge says 0
    cot, reason, _, _ = run(Alg6(Alg6Config()), AQA, ALM_SCRIPT, llm_with())
    assert reason is None


def test_malformed_predict_and_validate_fall_back_to_unsure_and_zero_with_codes():
    _, reason, ctx, evidence = run(Alg6(Alg6Config()), AQA, ALM_SCRIPT, llm_with(predict="{", validate="nope"))
    assert evidence.prediction == "unsure" and evidence.judge is False
    assert ctx.codes == ["predict/fallback", "validate/fallback"] and reason.startswith("paper-accept")
    assert sum('"validation"' in c.prompt for c in ctx.trace) == 3  # two re-asks before the fallback


def test_alg6_sends_every_sub_question_to_the_alm():
    subs = [f"Question {i} about the gull?" for i in range(5)]
    gate = json.dumps({"require_step_by_step": 1, "sub_questions": subs})
    _cot, _, ctx, _ = run(Alg6(Alg6Config()), AQA, ALM_SCRIPT, llm_with(gate=gate, predict='{"answer": "hawk"}'))
    assert [c.prompt for c in ctx.trace if c.role == "alm"][1:] == subs


def followups(*questions, final='{"answer": "a hawk", "followup": ""}'):
    replies = iter([json.dumps({"answer": "unsure", "followup": q}) for q in questions] + [final] * 20)
    return lambda request: next(replies)


def test_alg7_rounds_stop_at_an_answer_and_the_reasoning_starts_with_them():
    llm = llm_with(gate='{"require_step_by_step": 1}', followup=followups("Is a gull calling?", "What preys on gulls?"))
    cot, reason, ctx, evidence = run(Alg7(Alg7Config()), AQA, ALM_SCRIPT, llm)
    assert reason is None and evidence.prediction == "a hawk" and len(evidence.chain) == 3
    assert cot.reasoning.startswith("Is a gull calling? Yes, a gull is calling.\nWhat preys on gulls? Hawks prey")
    assert "(B) a hawk" in next(c.prompt for c in ctx.trace if '"reasoning"' in c.prompt)  # the suffix sees the GT


@pytest.mark.parametrize("followup, reason", [
    (lambda r: '{"answer": "unsure"}', "followup/missing"),
    (lambda r: "not json", "followup/missing"),  # malformed: unsure without a follow-up, as released
    (followups("Is a gull calling?", final='{"answer": "a hawk"}'), "format"),  # one round: chain too short
    (lambda r: '{"answer": "unsure", "followup": "Anything else?"}', "paper-accept"),  # 10 rounds, still unsure
])
def test_alg7_reject_paths(followup, reason):
    llm = llm_with(gate='{"require_step_by_step": true}', followup=followup)
    cot, got, ctx, _ = run(Alg7(Alg7Config()), AQA, ALM_SCRIPT, llm)
    assert cot is None and got.split(":")[0] == reason
    assert sum('"followup"' in c.prompt for c in ctx.trace) <= 10 * 3


def test_alg7_never_exceeds_its_rounds():
    llm = llm_with(gate='{"require_step_by_step": 1}',
                   followup=lambda r: '{"answer": "unsure", "followup": "Anything else?"}',
                   validate='{"validation": 1}')
    _cot, reason, ctx, evidence = run(Alg7(Alg7Config()), AQA, ALM_SCRIPT, llm)
    assert reason is None and len(evidence.chain) == 11 and evidence.prediction == "unsure"
    assert sum(c.role == "alm" for c in ctx.trace) == 11


def test_alg8_fallbacks_and_accept():
    alm = Scripted("alm", [("caption", "A gull calls over the sea."), ("Describe", "A sharp cry."),
                           ("fit", "It fits well.")])
    cot, reason, ctx, _ = run(Alg8(Alg8Config()), CLS, alm, llm_with(predict='{"answer": "gull"}'))
    assert reason is None and cot.reasoning.count("A sharp cry. It fits well.") == 3
    _, reason, ctx, _ = run(Alg8(Alg8Config()), CLS, alm, llm_with(predict="??", validate="??"))
    assert reason.startswith("paper-accept") and ctx.codes == ["predict/fallback", "validate/fallback"]


def test_alg9_reject_paths_and_shrinking_choices():
    rounds = iter(['{"remaining": ["gull", "crow", "owl"], "answer": "unsure", "followup": "Is it shrill?"}',
                   '{"remaining": ["gull", "crow"], "answer": "unsure", "followup": "Does it caw?"}',
                   '{"remaining": ["gull"], "answer": "unsure", "followup": ""}'])
    llm = llm_with(remaining=lambda r: next(rounds), validate='{"validation": 1}')
    _cot, reason, ctx, evidence = run(Alg9(Alg9Config()), CLS, ALM_SCRIPT, llm)
    assert reason is None and evidence.prediction == "gull"
    assert evidence.notes["remaining"] == [["gull", "crow", "owl"], ["gull", "crow", "owl"], ["gull", "crow"], ["gull"]]
    llm = llm_with(remaining='{"remaining": ["gull", "crow"], "answer": "unsure"}')
    assert run(Alg9(Alg9Config()), CLS, ALM_SCRIPT, llm)[1].startswith("followup/missing")
    llm = llm_with(remaining="garbage")
    _, reason, ctx, _ = run(Alg9(Alg9Config()), CLS, ALM_SCRIPT, llm)
    assert reason.startswith("followup/missing") and ctx.codes == ["discriminate/fallback"]


def test_causality_check_rejects_a_reasoning_that_does_not_lead_to_the_conclusion():
    replies = dict(predict='{"answer": "a hawk"}')
    config = Alg6Config(causality=True)
    _, reason, ctx, _ = run(Alg6(config), AQA, ALM_SCRIPT, llm_with(causality='{"answer": "a fox"}', **replies))
    assert reason.startswith("causality") and "causality/checked" in ctx.codes
    prompt = next(c.prompt for c in ctx.trace if "line of reasoning" in c.prompt)
    assert "A gull calls; hawks prey on gulls." in prompt and "(B) a hawk" in prompt  # options shown
    assert "ground truth" not in prompt.lower() and "Generate caption" not in prompt  # REASONING only
    _cot, reason, _, _ = run(Alg6(config), AQA, ALM_SCRIPT, llm_with(causality='{"answer": "A hawk"}', **replies))
    assert reason is None
    assert run(Alg6(Alg6Config()), AQA, ALM_SCRIPT, llm_with(causality='{"answer": "a fox"}', **replies))[1] is None


STRATEGIES = [(Alg6(Alg6Config()), AQA), (Alg7(Alg7Config(max_rounds=3)), AQA), (Alg8(Alg8Config()), CLS),
              (Alg9(Alg9Config(max_rounds=3)), CLS), (Alg6(Alg6Config(causality=True)), AQA)]
json_like = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                         lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                             st.sampled_from(["answer", "followup", "remaining", "sub_questions", "validation",
                                              "require_step_by_step", "summary", "reasoning"]), inner, max_size=4),
                         max_leaves=8).map(json.dumps)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.text(max_size=40), json_like), min_size=1, max_size=6), st.text(max_size=30))
def test_arbitrary_llm_text_never_escapes_a_strategy(replies, alm_reply):
    pool = iter(replies * 200)
    llm = Scripted("llm", [], default="")
    llm.generate = lambda requests: [next(pool) for _ in requests]  # type: ignore[method-assign]
    alm = Scripted("alm", [], default=alm_reply)
    for strategy, item in STRATEGIES:
        cot, reason, _, _ = run(strategy, item, alm, llm, retries=1)  # only Rejected may come out
        assert (cot is None) != (reason is None)


@pytest.mark.parametrize("strategy, item, replies, reason", [
    (Alg7(Alg7Config()), AQA, {"gate": '{"require_step_by_step": 0}'}, "gate/no-step-by-step"),
    (Alg7(Alg7Config()), AQA, {"gate": "{"}, "gate/malformed-json"),
    (Alg7(Alg7Config()), AQA, {"gate": '{"require_step_by_step": 1}', "summary": "{",
                               "followup": followups("Is a gull calling?", "What preys on gulls?")},
     "summary/malformed-json"),
    (Alg8(Alg8Config()), Item(id="c2", audio=CLS.audio, question="Classify.", answer="gull", kind="classification",
                              choices=["gull"]), {}, "choices/too-few"),
    (Alg9(Alg9Config()), Item(id="c3", audio=CLS.audio, question="Classify.", answer="gull", kind="classification"),
     {}, "choices/too-few"),
    (Alg9(Alg9Config(max_rounds=2)), CLS, {"remaining": '{"remaining": ["gull", "crow"], "followup": "More?"}'},
     "paper-accept"),  # out of rounds with two labels left: the prediction stays unsure
])
def test_reject_paths_of_the_other_algorithms(strategy, item, replies, reason):
    cot, got, _, _ = run(strategy, item, ALM_SCRIPT, llm_with(**replies))
    assert cot is None and got.split(":")[0] == reason


@pytest.mark.parametrize("strategy, kind", [(Alg6(Alg6Config(prompts="strict-perception")), "aqa"),
                                            (Alg8(Alg8Config(prompts="strict-perception")), "classification")])
def test_the_strict_perception_prompts_run_on_the_embedded_world(strategy, kind):
    for _, _, ctx, _ in accepted(strategy, kind):
        assert any("You cannot hear the audio" in c.prompt for c in ctx.trace)


def recording(teacher):
    """``teacher`` made a sampling one (its requests carry seeds), every request it gets kept in ``.seen``."""
    teacher.sampled, teacher.seen = True, []
    generate = teacher.generate

    def keep(requests):
        teacher.seen.extend(requests)
        return generate(requests)

    teacher.generate = keep  # type: ignore[method-assign]
    return teacher


def test_verdict_helpers_read_replies_as_documented():
    from afcot_paper.algorithms import as_text, truthy, unsure

    assert truthy("true") and truthy(" TRUE ") and truthy("yes") and truthy(1) and not truthy("2")
    assert as_text(" a hawk ") == "a hawk" and as_text(5) == "5" and as_text(None) == ""
    assert unsure("  ") and unsure(" Unsure ") and not unsure("a hawk")


@pytest.mark.parametrize("config", [Alg7Config, Alg9Config])
def test_rounds_must_be_at_least_one(config):
    assert config(max_rounds=1).max_rounds == 1
    with pytest.raises(ValueError, match=r"^max_rounds must be >= 1$"):
        config(max_rounds=0)
    if config is Alg9Config:
        with pytest.raises(ValueError, match=r'^fidelity: Algorithm 9 was not released, so it has no "release" '
                                             r'fidelity$'):
            config(fidelity="release")


def test_reject_reasons_are_worded_exactly():
    llm = llm_with(gate='{"require_step_by_step": 0}')
    assert run(Alg7(Alg7Config()), AQA, ALM_SCRIPT, llm)[1] == \
        "gate/no-step-by-step: the LLM found no need for step-by-step reasoning"
    llm = llm_with(gate='{"require_step_by_step": 1}', followup=lambda r: '{"answer": "unsure"}')
    assert run(Alg7(Alg7Config()), AQA, ALM_SCRIPT, llm)[1] == \
        "followup/missing: the LLM was unsure and asked no follow-up question"
    llm = llm_with(remaining='{"remaining": ["gull", "crow"], "answer": "unsure"}')
    assert run(Alg9(Alg9Config()), CLS, ALM_SCRIPT, llm)[1] == \
        "followup/missing: several labels remain and the LLM asked no follow-up question"


def test_alg6_sub_questions_must_be_text_and_afcot_drops_blank_ones_the_release_keeps():
    gate = json.dumps({"require_step_by_step": 1, "sub_questions": ["  ", "What preys on gulls?"]})
    assert run(Alg6(Alg6Config()), AQA, ALM_SCRIPT, llm_with(gate=gate))[1].startswith("gate/no-sub-questions")
    _, reason, _ctx, evidence = run(Alg6(Alg6Config(fidelity="release")), AQA, ALM_SCRIPT, llm_with(gate=gate))
    assert not (reason or "").startswith("gate/") and evidence.notes["sub_questions"] == ["  ", "What preys on gulls?"]
    gate = json.dumps({"require_step_by_step": 1, "sub_questions": [5, "What preys on gulls?"]})
    assert run(Alg6(Alg6Config()), AQA, ALM_SCRIPT, llm_with(gate=gate))[1].startswith("gate/no-sub-questions")


def test_alg6_records_its_sub_questions_and_the_formatted_question():
    _, reason, _, evidence = run(Alg6(Alg6Config()), AQA, ALM_SCRIPT, llm_with())
    assert reason is None and evidence.notes["sub_questions"] == ["Is a gull calling?", "What preys on gulls?"]
    assert evidence.notes["formatted_question"] == format_question(AQA.question, AQA.choices)  # as the release keeps it
    assert "(B) a hawk" in evidence.notes["formatted_question"]


def test_the_same_question_asked_twice_is_sampled_twice():
    # Algorithm 6: a sub-question repeated; Algorithms 7 and 9: a follow-up repeated in a later round. Each ALM
    # call has a seed of its own (the step names its position), so a sampling ALM is not asked for one reply twice
    gate = json.dumps({"require_step_by_step": 1, "sub_questions": ["Is a gull calling?", "Is a gull calling?"]})
    alm = recording(Scripted("alm", ALM_SCRIPT.script, default="I hear a bird."))
    run(Alg6(Alg6Config()), AQA, alm, llm_with(gate=gate))
    asked = [r.seed for r in alm.seen if r.prompt == "Is a gull calling?"]
    assert len(asked) == 2 and len(set(asked)) == 2
    llm = recording(llm_with(gate='{"require_step_by_step": 1}',
                             followup=followups("Is a gull calling?", "Is a gull calling?")))
    alm = recording(Scripted("alm", ALM_SCRIPT.script, default="I hear a bird."))
    run(Alg7(Alg7Config()), AQA, alm, llm)
    asked = [r.seed for r in alm.seen if r.prompt == "Is a gull calling?"]
    assert len(asked) == 2 and len(set(asked)) == 2
    rounds = [r.seed for r in llm.seen if '"followup"' in r.prompt]
    assert len(rounds) == 3 and len(set(rounds)) == 3  # and each round's LLM call too
    replies = iter(['{"remaining": ["gull", "crow", "owl"], "answer": "unsure", "followup": "Is it shrill?"}'] * 2
                   + ['{"remaining": ["gull"], "answer": "unsure", "followup": ""}'])
    alm = recording(Scripted("alm", ALM_SCRIPT.script, default="I hear a bird."))
    run(Alg9(Alg9Config()), CLS, alm, llm_with(remaining=lambda r: next(replies)))
    asked = [r.seed for r in alm.seen if r.prompt == "Is it shrill?"]
    assert len(asked) == 2 and len(set(asked)) == 2


def test_an_empty_answer_is_unsure_and_out_of_rounds_the_prediction_stays_unsure():
    llm = llm_with(gate='{"require_step_by_step": 1}',
                   followup=lambda r: '{"answer": "", "followup": "Anything else?"}', validate='{"validation": 1}')
    _, reason, _ctx, evidence = run(Alg7(Alg7Config(max_rounds=3)), AQA, ALM_SCRIPT, llm)
    assert reason is None and evidence.prediction == "unsure" and evidence.notes["rounds"] == 3
    llm = llm_with(remaining='{"remaining": ["gull", "crow"], "answer": "", "followup": "More?"}',
                   validate='{"validation": 1}')
    _, reason, _ctx, evidence = run(Alg9(Alg9Config(max_rounds=2)), CLS, ALM_SCRIPT, llm)
    assert reason is None and evidence.prediction == "unsure" and evidence.notes["rounds"] == 2


def test_alg9_stops_at_the_llms_answer_and_shows_it_the_caption():
    llm = llm_with(remaining='{"remaining": ["gull", "crow", "owl"], "answer": "gull", "followup": "More?"}')
    _, _reason, ctx, evidence = run(Alg9(Alg9Config()), CLS, ALM_SCRIPT, llm)
    assert evidence.prediction == "gull" and evidence.notes["rounds"] == 0 and len(evidence.chain) == 1
    [asked] = [c.prompt for c in ctx.trace if '"remaining"' in c.prompt]
    assert "A gull calls twice over waves." in asked
    assert ctx.trace[0].role == "alm" and ctx.trace[0].with_audio  # the caption hears the audio


def test_alg8_reasoning_is_each_choices_description_then_its_fit_in_order():
    def answer(request):
        label = re.search(r"'([a-z]+)'", request.prompt)
        if "caption" in request.prompt:
            return "A gull calls over the sea."
        return f"{'Describes' if 'Describe' in request.prompt else 'Fits'} {label.group(1)}."

    alm = Scripted("alm", [("", answer)])
    cot, reason, _, _ = run(Alg8(Alg8Config()), CLS, alm, llm_with(predict='{"answer": "gull"}'))
    assert reason is None
    assert cot.reasoning == "Describes gull. Fits gull.\nDescribes crow. Fits crow.\nDescribes owl. Fits owl."


def test_a_causality_reply_that_will_not_parse_or_is_empty_counts_as_unsure():
    config = Alg6Config(causality=True)
    replies = dict(predict='{"answer": "a hawk"}')
    _, reason, ctx, _ = run(Alg6(config), AQA, ALM_SCRIPT, llm_with(causality="{broken", **replies))
    assert reason == "causality: from the reasoning alone the LLM answers 'unsure', not '(B) a hawk'"
    assert ctx.codes == ["causality/checked", "causality/fallback"]
    _, reason, _, _ = run(Alg6(config), AQA, ALM_SCRIPT, llm_with(causality='{"answer": ""}', **replies))
    assert reason == "causality: from the reasoning alone the LLM answers 'unsure', not '(B) a hawk'"


def test_a_kept_record_that_fails_the_causality_check_says_so_in_its_codes():
    config = Alg6Config(causality=True, causality_rejects=False)
    cot, reason, ctx, _ = run(Alg6(config), AQA, ALM_SCRIPT,
                              llm_with(causality='{"answer": "a fox"}', predict='{"answer": "a hawk"}'))
    assert reason is None and cot is not None
    assert ctx.codes == ["causality/checked", "causality/does-not-follow"]


def test_validation_is_asked_only_of_a_chain_with_a_question_and_shows_the_ground_truth():
    one = json.dumps({"require_step_by_step": 1, "sub_questions": ["Is a gull calling?"]})
    _, _, ctx, evidence = run(Alg6(Alg6Config()), AQA, ALM_SCRIPT, llm_with(gate=one, validate='{"validation": 1}'))
    [asked] = [c.prompt for c in ctx.trace if '"validation"' in c.prompt]
    assert "The ground truth answer is: (B) a hawk" in asked and evidence.judge is True
    llm = llm_with(gate='{"require_step_by_step": 1}', followup=lambda r: '{"answer": "a hawk"}',
                   validate='{"validation": 1}')
    _, _, ctx, evidence = run(Alg7(Alg7Config()), AQA, ALM_SCRIPT, llm)  # answered at once: the caption only
    assert not [c for c in ctx.trace if '"validation"' in c.prompt] and evidence.judge is False


def test_an_empty_prediction_is_unsure():
    _, _, _, evidence = run(Alg6(Alg6Config()), AQA, ALM_SCRIPT, llm_with(predict='{"answer": ""}'))
    assert evidence.prediction == "unsure"
