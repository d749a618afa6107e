"""``fidelity = "release"``: the released soundCoT prompts verbatim and the release's reading of every reply.

Each test names the departure of afcot's default it pins (docs/algorithms.md, "Paper-exact mode"), and shows the
default behaving otherwise where it does.
"""

import asyncio
import json
from pathlib import Path

import pytest
from afcot_paper import release
from afcot_paper.algorithms import Alg6, Alg6Config, Alg7, Alg7Config, Alg8, Alg8Config, Alg9Config
from afcot_paper.prompts import Prompts
from afcot_paper.validators import AcceptConfig, FormatConfig, FormatRules, PaperAccept

from afcot_core.errors import Rejected
from afcot_core.protocols import ItemContext
from afcot_core.records import AudioRef, Item
from afcot_core.teacher import Request, Teacher
from afcot_core.template import format_question

from .conftest import afcot

FIXTURES = Path(__file__).parent / "fixtures" / "release"
RELEASE = {"fidelity": "release"}
AQA = Item(id="q1", audio=AudioRef(path="unused.flac"), question="Is the gull calling, and what preys on it?",
           answer="(B) a hawk", kind="aqa", choices=["a fox", "a hawk"])


class Scripted(Teacher):
    """Replies from a script: the first (pattern, reply) whose pattern is in the prompt; a list is used in turn."""

    offload = False

    def __init__(self, role, script, default="I cannot tell."):
        super().__init__()
        self.role, self.model, self.script, self.default = role, f"scripted-{role}", script, default

    def generate(self, requests: list[Request]) -> list[str]:
        out = []
        for r in requests:
            reply = next((rep for pat, rep in self.script if pat in r.prompt), self.default)
            out.append(reply.pop(0) if isinstance(reply, list) else reply)
        return out


ALM = Scripted("alm", [("caption", "A gull calls twice over waves."), ("preys", "Hawks prey on gulls."),
                       ("gull", "Yes, a gull is calling.")], default="I hear a bird.")
GOOD = {"gate": '{"require_step_by_step": 1, "sub_questions": ["Is a gull calling?", "What preys on gulls?"]}',
        "predict": '{"answer": "it is a hawk"}', "validate": '{"validation": 0}',
        "summary": '{"summary": "I check the bird, then its predators."}',
        "reasoning": '{"reasoning": "A gull calls; hawks prey on gulls."}'}
# each step's prompt, found by a phrase both prompt sets share
KEYS = {"gate": "require_step_by_step", "followup": "followup", "validate": "validation", "summary": "summary",
        "reasoning": "'reasoning'", "reasoning_paper": '"reasoning"', "predict": "answer"}


def llm_with(**replies):
    table = {**GOOD, **replies}
    order = ["followup", "gate", "validate", "summary", "reasoning", "reasoning_paper", "predict"]
    table.setdefault("reasoning_paper", table["reasoning"])
    return Scripted("llm", [(KEYS[k], table[k]) for k in order if k in table])


def run(strategy, item=AQA, llm=None, retries=2):
    """Gather, the accept and format rules, compose: (cot or None, reason or None, ctx, evidence)."""
    ctx = ItemContext(ALM, llm or llm_with(), retries, item.id, 0)

    async def go():
        evidence = None
        try:
            evidence = await strategy.gather(item, ctx)
            for check in (PaperAccept(AcceptConfig()), FormatRules(FormatConfig())):
                if reason := check.check(item, evidence, None):
                    raise Rejected(f"{check.name}: {reason}")
            return await strategy.compose(item, evidence, ctx), None, ctx, evidence
        except Rejected as exc:
            return None, exc.reason, ctx, evidence

    return asyncio.run(go())


def prompts_of(ctx, phrase):
    return [c.prompt for c in ctx.trace if c.role == "llm" and phrase in c.prompt]


def test_the_summary_example_is_the_released_text_word_for_word():
    released = (FIXTURES / "summary_example.txt").read_text(encoding="utf-8").split()
    for step in ("summary", "summary_interactive"):
        words = Prompts("release").text(step).split()
        assert any(words[i: i + len(released)] == released for i in range(len(words))), step
    # the default set words the example in its own way (the departure)
    assert "sqauwking" not in Prompts("paper").text("summary")


def test_every_release_prompt_is_the_released_concatenation_for_one_input():
    expected = json.loads((FIXTURES / "prompts.json").read_text(encoding="utf-8"))
    _, reason, ctx, _ = run(Alg6(Alg6Config(**RELEASE)))
    assert reason is None
    for step, phrase in (("gate", "require_step_by_step"), ("predict", "key 'answer'"),
                         ("validate", "'validation'"), ("summary", "'summary'"), ("reasoning", "'reasoning'")):
        assert prompts_of(ctx, phrase) == [expected[f"alg6/{step}"]], step
    followups = ['{"answer": "unsure", "followup": "Is a gull calling?"}',
                 '{"answer": "unsure", "followup": "What preys on gulls?"}', '{"answer": "a hawk"}']
    _, reason, ctx, _ = run(Alg7(Alg7Config(**RELEASE)), llm=llm_with(followup=followups))
    assert reason is None
    assert prompts_of(ctx, "require_step_by_step") == [expected["alg7/gate"]]
    asked = prompts_of(ctx, "'followup'")
    assert (asked[0], asked[2]) == (expected["alg7/followup-0"], expected["alg7/followup-2"])
    assert prompts_of(ctx, "'summary'") == [expected["alg7/summary"]]
    assert prompts_of(ctx, "'reasoning'") == [expected["alg7/reasoning"]]


def test_release_json_is_one_strict_loads_with_no_repair_and_no_re_ask():
    fenced = '```json\n{"answer": "a hawk"}\n```'
    # afcot repairs the fence; the release's json.loads fails, so the prediction falls back to 'unsure' at once
    _, _, _, evidence = run(Alg6(Alg6Config()), llm=llm_with(predict=fenced))
    assert evidence.prediction == "a hawk"
    _, _, ctx, evidence = run(Alg6(Alg6Config(**RELEASE)), llm=llm_with(predict=fenced))
    assert evidence.prediction == "unsure" and "predict/fallback" in ctx.codes
    assert len(prompts_of(ctx, "key 'answer'")) == 1  # no re-ask, whatever json_retries says
    # a gate reply with prose around its object: afcot finds the object, the release rejects after one try
    chatty = 'Sure! {"require_step_by_step": 1, "sub_questions": ["Is a gull calling?", "What preys on gulls?"]}'
    assert run(Alg6(Alg6Config()), llm=llm_with(gate=chatty))[1] is None
    _, reason, ctx, _ = run(Alg6(Alg6Config(**RELEASE)), llm=llm_with(gate=chatty))
    assert reason.startswith("gate/malformed-json") and len(ctx.trace) == 1
    # the text after the last </think> is what the release parses
    thought = 'I think {"answer": "a fox"}</think>\n{"answer": "a hawk"}'
    assert run(Alg6(Alg6Config(**RELEASE)), llm=llm_with(predict=thought))[3].prediction == "a hawk"


@pytest.mark.parametrize("value, passes", [
    ('"yes"', True), ('"no"', True), ("null", True), ("2", True), ('"1"', True),
    ("0", False), ("false", False), ('"0"', False), ('"False"', False), ('"false"', False), ("0.0", False),
])
def test_release_gate_rejects_only_on_its_listed_values(value, passes):
    gate = f'{{"require_step_by_step": {value}, "sub_questions": ["Is a gull calling?", "What preys on gulls?"]}}'
    _, reason, _, _ = run(Alg6(Alg6Config(**RELEASE)), llm=llm_with(gate=gate))
    assert (reason is None) == passes, reason
    if value in ('"no"', "null", "2"):  # afcot passes only truthy values (the departure)
        assert run(Alg6(Alg6Config()), llm=llm_with(gate=gate))[1].startswith("gate/no-step-by-step")


def test_release_gate_rejects_a_missing_key_and_takes_any_non_empty_list():
    missing = '{"sub_questions": ["Is a gull calling?", "What preys on gulls?"]}'
    assert run(Alg6(Alg6Config(**RELEASE)), llm=llm_with(gate=missing))[1].startswith("gate/no-step-by-step")
    padded = '{"require_step_by_step": 1, "sub_questions": [" Is a gull calling? ", "What preys on gulls?"]}'
    _, _, ctx, _ = run(Alg6(Alg6Config(**RELEASE)), llm=llm_with(gate=padded))
    assert " Is a gull calling? " in [c.prompt for c in ctx.trace if c.role == "alm"]  # sent as written


@pytest.mark.parametrize("value, yes", [
    ("1", True), ('"1"', True), ("true", True), ('"true"', True), ('"True"', True), ("1.0", True),
    ('"yes"', False), ('" 1"', False), ('"TRUE"', False), ("0", False), ("2", False),
])
def test_release_validation_counts_only_its_listed_values(value, yes):
    _, _, _, evidence = run(Alg6(Alg6Config(**RELEASE)), llm=llm_with(validate=f'{{"validation": {value}}}'))
    assert evidence.judge is yes
    if value == '"yes"':  # afcot counts "yes" too (the departure)
        assert run(Alg6(Alg6Config()), llm=llm_with(validate='{"validation": "yes"}'))[3].judge is True


def test_release_alg7_stops_on_any_answer_that_is_not_exactly_unsure():
    followups = ['{"answer": "Unsure", "followup": "Is a gull calling?"}', '{"answer": "a hawk"}']
    _, _, ctx, evidence = run(Alg7(Alg7Config(**RELEASE)), llm=llm_with(followup=list(followups)))
    assert evidence.prediction == "Unsure" and len(prompts_of(ctx, "'followup'")) == 1
    _, _, ctx, evidence = run(Alg7(Alg7Config()), llm=llm_with(followup=list(followups)))
    assert evidence.prediction == "a hawk" and len(prompts_of(ctx, '"followup"')) == 2


def test_release_alg7_rejects_an_unsure_reply_without_a_followup_key_and_a_missing_answer():
    no_key = ['{"answer": "unsure"}']
    assert run(Alg7(Alg7Config(**RELEASE)), llm=llm_with(followup=no_key))[1].startswith("followup/missing")
    no_answer = ['{"followup": "Is a gull calling?"}']
    assert run(Alg7(Alg7Config(**RELEASE)), llm=llm_with(followup=no_answer))[1].startswith("followup/no-answer")


def test_release_accept_rule_is_the_released_expression():
    # the prediction is not stripped: a trailing space misses the answer (afcot strips it)
    spaced = '{"answer": "a hawk "}'
    assert run(Alg6(Alg6Config()), llm=llm_with(predict=spaced))[1] is None
    assert run(Alg6(Alg6Config(**RELEASE)), llm=llm_with(predict=spaced))[1].startswith("paper-accept")
    # the released remove_option drops a first word holding "x." for a letter a-h: "dog." leaves "", which every
    # prediction ends with (afcot keeps "dog.")
    item = Item(id="q2", audio=AudioRef(path="unused.flac"), question="Which animal calls?", answer="dog.",
                kind="aqa")
    fox = llm_with(predict='{"answer": "a fox"}')
    assert run(Alg6(Alg6Config(**RELEASE)), item, llm=fox)[1] is None
    assert run(Alg6(Alg6Config()), item, llm=fox)[1].startswith("paper-accept")


def test_release_non_text_prediction_is_rejected_and_a_missing_answer_is_unsure():
    _, reason, _, _ = run(Alg6(Alg6Config(**RELEASE)), llm=llm_with(predict='{"answer": 5}'))
    assert reason.startswith("predict/not-text")
    _, _, ctx, evidence = run(Alg6(Alg6Config(**RELEASE)), llm=llm_with(predict='{"guess": "a hawk"}'))
    assert evidence.prediction == "unsure" and "predict/fallback" in ctx.codes


def test_release_alg8_sends_the_released_describe_and_fit_queries_and_alg9_refuses_release():
    item = Item(id="c1", audio=AudioRef(path="unused.flac"), question="Classify the sound.", answer="gull",
                kind="classification", choices=["gull", "crow"])
    _, _, ctx, evidence = run(Alg8(Alg8Config(**RELEASE)), item)
    asked = [(c.prompt, c.with_audio) for c in ctx.trace if c.role == "alm"]
    assert ("Describe the acoustic properties of 'crow' in one or two sentences. Just focus on the information "
            "in terms of sound.", False) in asked
    assert ("How does this sound fit with the label 'crow'?", True) in asked
    assert evidence.notes["fidelity"] == "release"
    with pytest.raises(ValueError, match="not released"):
        Alg9Config(**RELEASE)
    with pytest.raises(ValueError, match="contradicts"):
        Alg6Config(fidelity="release", prompts="strict-perception")


def test_the_released_distractor_prompt_is_kept_verbatim():
    text = Prompts("release").text("create_options")
    assert "Create three other options for the question such that they also make sense to the question and can " \
           "be clearly distinguished from the ground truth answer." in text
    assert text.endswith("Return a json output with key 'choices', and the value is the list of other options in "
                         "choices.")


@pytest.mark.parametrize("answer, left", [
    ("(b) a hawk", "a hawk"), ("b) a hawk", "a hawk"), ("b: a hawk", "a hawk"), ("B. A hawk", "a hawk"),
    ("hawk", "hawk"), ("a hawk", "a hawk"),  # no tag in the first word: the answer as it is, lower-cased
    ("a hawk (b)", "a hawk (b)"),  # a tag past the first word stays
    (" (b) hawk", " (b) hawk"),  # split on single spaces: a leading space makes the first word empty
    ("(b)  hawk", " hawk"), ("(b)\thawk", ""),  # the rest joined as split, a tab is no separator
])
def test_the_released_remove_option_drops_only_a_tagged_first_word(answer, left):
    assert release.remove_option(answer) == left


def test_release_validation_is_asked_only_of_a_chain_with_a_question():
    # Algorithm 7 answering at once: the chain holds only the caption, so no validation (0), as released
    _, _, ctx, evidence = run(Alg7(Alg7Config(**RELEASE)), llm=llm_with(followup=['{"answer": "a hawk"}']))
    assert prompts_of(ctx, "'validation'") == [] and evidence.judge is False
    one = '{"require_step_by_step": 1, "sub_questions": ["Is a gull calling?"]}'
    _, _, ctx, evidence = run(Alg6(Alg6Config(**RELEASE)), llm=llm_with(gate=one, validate='{"validation": 1}'))
    assert len(prompts_of(ctx, "'validation'")) == 1 and evidence.judge is True


def test_release_validation_that_will_not_parse_counts_as_no_and_notes_its_fallback():
    _, reason, ctx, evidence = run(Alg6(Alg6Config(**RELEASE)), llm=llm_with(validate="{broken"))
    assert reason is None and evidence.judge is False and ctx.codes == ["validate/fallback"]
    assert len(prompts_of(ctx, "'validation'")) == 1


def test_release_rejections_name_what_the_released_script_stops_on():
    assert run(Alg6(Alg6Config(**RELEASE)), llm=llm_with(predict='{"answer": 5}'))[1] == \
        "predict/not-text: the answer 5 is not text (the released script stops on it)"
    no_answer = ['{"followup": "Is a gull calling?"}']
    assert run(Alg7(Alg7Config(**RELEASE)), llm=llm_with(followup=no_answer))[1] == \
        "followup/no-answer: the reply's answer is UNSET, not text (the released script stops on it)"
    not_text = ['{"answer": "unsure", "followup": 5}']  # a follow-up that is not text is none
    assert run(Alg7(Alg7Config(**RELEASE)), llm=llm_with(followup=not_text))[1] == \
        "followup/missing: the LLM was unsure and asked no follow-up question"


def test_release_round_that_will_not_parse_is_unsure_without_a_followup():
    _, reason, ctx, _ = run(Alg7(Alg7Config(**RELEASE)), llm=llm_with(followup=["not json"]))
    assert reason.startswith("followup/missing") and ctx.codes == ["followup/fallback"]


def test_release_rounds_each_sample_with_a_seed_of_their_own():
    llm = llm_with(followup=['{"answer": "unsure", "followup": "Is a gull calling?"}',
                             '{"answer": "unsure", "followup": "Is a gull calling?"}', '{"answer": "a hawk"}'])
    llm.sampled, seen, generate = True, [], llm.generate
    llm.generate = lambda requests: (seen.extend(r for r in requests if "'followup'" in r.prompt),
                                     generate(requests))[1]
    run(Alg7(Alg7Config(**RELEASE)), llm=llm)
    assert len(seen) == 3 and len({r.seed for r in seen}) == 3


def test_release_summary_and_reasoning_are_read_as_released():
    assert run(Alg6(Alg6Config(**RELEASE)), llm=llm_with(summary="{broken"))[1].startswith("summary/malformed-json")
    assert run(Alg6(Alg6Config(**RELEASE)), llm=llm_with(summary='{"text": "x"}'))[1] == \
        "summary/missing-key: the reply has no 'summary'"
    cot, reason, _, _ = run(Alg6(Alg6Config(**RELEASE)), llm=llm_with(summary='{"summary": 5}'))
    assert reason is None and cot.summary == "5"  # any value, as text


def test_records_keep_formatted_question_and_sub_questions(tmp_path):
    from afcot_core.shards import iter_samples

    out = tmp_path / "run"
    result = afcot("recipe", "run", "compare_bfs_dfs", "--out", str(out), "--quiet",
                   "--set", "generate.source.items=12", "--set", "generate.strategies.aqa.fidelity=release")
    assert result.returncode == 0, result.stderr
    records = [json.loads(parts["json"]) for shard in sorted((out / "bfs" / "generate").glob("shard-*.tar"))
               for _, parts in iter_samples(shard)]
    assert records
    for record in records:
        item = record["item"]
        assert record["formatted_question"] == format_question(item["question"], item["choices"])
        assert record["sub_questions"] and record["sub_questions"] == [q for q, _ in record["chain"][1:]]


def test_release_accept_takes_the_judges_yes_unless_use_judge_is_off():
    from afcot_core.protocols import Evidence

    evidence = Evidence([("c", "A gull calls.")], prediction="a fox", judge=True, notes={"fidelity": "release"})
    assert PaperAccept(AcceptConfig()).check(AQA, evidence, None) is None
    assert PaperAccept(AcceptConfig(use_judge=False)).check(AQA, evidence, None).startswith("prediction 'a fox'")
