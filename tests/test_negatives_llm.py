"""The ``llm`` sampler (the paper's LLM_create_options) with a scripted fake teacher."""

from __future__ import annotations

import asyncio
import functools
import json
from pathlib import Path

import msgspec
import pytest
from afcot_negatives.llm import LlmConfig, LlmSampler, preflight, render_prompt

from afcot_core import plugins
from afcot_core.errors import BadInput, Rejected
from afcot_core.teacher import Reply


class FakeTeacher:
    """Replies with the given texts in turn and records the prompts."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.prompts: list[str] = []

    async def ask(self, prompt: str, audio=None) -> Reply:
        self.prompts.append(prompt)
        return Reply(self.replies.pop(0), 0.0)


def sampler(*replies: str, **config) -> tuple[LlmSampler, FakeTeacher]:
    teacher = FakeTeacher(*replies)
    return LlmSampler(LlmConfig(**config), teacher=teacher), teacher


@pytest.mark.parametrize(("answer", "other"), [("yes", "no"), ("No.", "yes"), (" YES ", "no")])
def test_yes_no_needs_no_teacher(answer, other):
    s, teacher = sampler()
    assert s.sample(answer, question="Is it raining?") == [other]
    assert teacher.prompts == []


def test_long_answers_stay_open():
    s, teacher = sampler()
    assert s.sample("a dog barks twice near the door", question="What happens?") is None
    assert teacher.prompts == []
    assert LlmSampler(LlmConfig(max_words=10), teacher=FakeTeacher('{"distractors": ["a", "b", "c"]}')).sample(
        "a dog barks twice near the door") == ["a", "b", "c"]


def test_three_distractors_from_the_teacher():
    reply = 'Sure.\n```json\n{"distractors": ["in the lake", "in the ocean.", "on the ground", "in a cave"]}\n```'
    s, teacher = sampler(reply)
    assert s.sample("on the tree", question="Where is the bird?") == ["in the lake", "in the ocean", "on the ground"]
    prompt = teacher.prompts[0]
    assert "\nQuestion: Where is the bird?\n" in prompt and "\nAnswer: on the tree\n" in prompt
    assert '{"distractors": [' in prompt


def test_repeats_the_answer_and_excluded_are_dropped_then_retried():
    first = json.dumps({"distractors": ["On the tree", "in the lake", "In the lake", "on the roof"]})
    second = json.dumps({"distractors": ["in the lake", "in the ocean", "on the ground"]})
    s, teacher = sampler(first, second)
    assert s.sample("on the tree", exclude=["on the roof"], question="Where?") == ["in the lake", "in the ocean",
                                                                                  "on the ground"]
    assert len(teacher.prompts) == 2


def test_rejected_after_retries():
    s, teacher = sampler("no json here", '{"distractors": "x"}', '{"other": []}', retries=2)
    with pytest.raises(Rejected, match=r"distractors: .* after 3 tries"):
        s.sample("a bell", question="What rings?")
    assert len(teacher.prompts) == 3


def test_async_use_and_sync_use_inside_a_loop():
    s, _ = sampler('{"distractors": ["a horn", "a drum", "a whistle"]}')

    async def go():
        with pytest.raises(RuntimeError, match="await asample"):
            s.sample("a bell")
        return await s.asample("a bell", question="What rings?")

    assert asyncio.run(go()) == ["a horn", "a drum", "a whistle"]


def test_prompt_file_is_versioned_and_registered():
    reg = plugins.default().registry("negative_sampler").get("llm")
    assert "distractors_v1" in reg.prompts
    assert render_prompt("Q?", "A", 3).count("{") == 1  # only the JSON example keeps braces
    assert preflight(LlmConfig(teacher="no-such-teacher"))
    assert isinstance(reg.build(msgspec.convert({}, reg.config)), LlmSampler)


def test_embedded_llm_answers_the_distractor_prompt():
    names = plugins.default().registry("teacher_llm").names()
    if "embedded-llm" not in names:
        pytest.skip("the embedded plugin is not installed")
    from afcot_embedded.world import leaf_classes

    leaf = sorted(leaf_classes())[0]
    s = LlmSampler(LlmConfig(teacher="embedded-llm"))
    got = s.sample(leaf, question="Classify the sound.")
    assert len(got) == 3 and leaf not in got and set(got) <= set(leaf_classes())


RELEASE_FILE = Path(__file__).parents[1] / "plugins" / "afcot_paper" / "prompts" / "release" / "create_options.txt"


def test_release_fidelity_sends_the_released_prompt_verbatim():
    s, teacher = sampler('<think>\nhmm\n</think>\n\n{"choices": ["in the lake", "in the ocean", "on the ground"]}',
                         fidelity="release")
    assert s.sample("on the tree", question="Where is the bird?") == ["in the lake", "in the ocean", "on the ground"]
    released = RELEASE_FILE.read_text(encoding="utf-8").split("\n", 1)[1].strip()
    assert teacher.prompts == [released.replace("$question", "Where is the bird?").replace("$answer", "on the tree")]
    assert "Return a json output with key 'choices'" in teacher.prompts[0]
    assert plugins.default().registry("negative_sampler").get("llm").prompts["release/create_options"] == released


@pytest.mark.parametrize("reply", [
    '```json\n{"choices": ["in the lake", "in the ocean", "on the ground"]}\n```',  # fenced: json.loads fails
    'Here: {"choices": ["in the lake", "in the ocean", "on the ground"]}',  # an object inside text
    '{"distractors": ["in the lake", "in the ocean", "on the ground"]}',  # our key, not the release's
    '{"choices": ["in the lake", "on the tree", "in the lake"]}',  # too few usable
])
def test_release_fidelity_reads_one_strict_reply_and_never_re_asks(reply):
    good = '{"choices": ["in the lake", "in the ocean", "on the ground"]}'
    s, teacher = sampler(reply, good, good, fidelity="release", retries=2)
    with pytest.raises(Rejected, match=r"distractors: .* after 1 try$"):
        s.sample("on the tree", question="Where is the bird?")
    assert len(teacher.prompts) == 1


def test_the_default_still_repairs_and_re_asks():
    s, teacher = sampler('```json\n{"distractors": ["a horn", "a drum", "a whistle"]}\n```')
    assert s.sample("a bell", question="What rings?") == ["a horn", "a drum", "a whistle"]
    assert "{question}" not in teacher.prompts[0] and '{"distractors": [' in teacher.prompts[0]


def test_release_fidelity_asks_for_three_options_only():
    s, teacher = sampler(fidelity="release")
    assert s.sample("yes", question="Is it raining?") == ["no"]  # yes/no needs no teacher in either mode
    with pytest.raises(BadInput, match=r"fidelity = \"release\" asks for 3 options .*not 4"):
        s.sample("a bell", 4, question="What rings?")
    assert teacher.prompts == []
    with pytest.raises(msgspec.ValidationError, match=r"fidelity"):
        msgspec.convert({"fidelity": "paper"}, LlmConfig)


# --- the prompt, the reply's cleaning and the messages, exactly -----------------------------------------


def test_the_prompt_asks_for_k_distractors_three_by_default():
    assert "write 3 distractors" in render_prompt("Q?", "A")
    assert "write 2 distractors" in render_prompt("Q?", "A", 2)


def test_the_teacher_is_asked_for_k_distractors_and_a_missing_question_is_left_blank():
    s, teacher = sampler('{"distractors": ["a horn", "a drum"]}', '{"distractors": ["a horn", "a drum"]}')
    assert s.sample("a bell", 2) == asyncio.run(s.asample("a bell", 2)) == ["a horn", "a drum"]
    assert "write 2 distractors" in teacher.prompts[0]
    assert all("\nQuestion: \nAnswer: a bell\n" in p for p in teacher.prompts)


def test_an_answer_of_exactly_max_words_words_still_gets_distractors():
    s, teacher = sampler('{"distractors": ["a cat meows very loudly", "a bird", "a car"]}', max_words=5)
    assert s.sample("a dog barks very loudly") == ["a cat meows very loudly", "a bird", "a car"]
    assert len(teacher.prompts) == 1


def test_only_spaces_and_full_stops_are_trimmed_from_a_distractor():
    s, _ = sampler('{"distractors": [" Malcolm X. ", "Model X", "a drum."]}')
    assert s.sample("a bell") == ["Malcolm X", "Model X", "a drum"]


def test_repeats_within_one_reply_count_once():
    s, teacher = sampler('{"distractors": ["a horn", "A horn.", "a drum", "a whistle"]}', retries=0)
    assert s.sample("a bell") == ["a horn", "a drum", "a whistle"]
    assert len(teacher.prompts) == 1


def test_a_rejection_names_the_last_problem_met():
    s, _ = sampler("no json here", retries=0)
    with pytest.raises(Rejected) as info:
        s.sample("a bell")
    assert str(info.value) == "distractors: no JSON object in the reply after 1 try"
    s, _ = sampler("no json here", '{"distractors": ["a bell", "a horn."]}', retries=1)
    with pytest.raises(Rejected) as info:
        s.sample("a bell")
    assert str(info.value) == "distractors: only 1 usable distractors in ['a bell', 'a horn.'] after 2 tries"


def test_preflight_names_the_unknown_teacher_and_the_registered_ones(monkeypatch):
    names = plugins.default().registry("teacher_llm").names()
    assert {"embedded-llm", "qwen3"} <= set(names)
    assert preflight(LlmConfig(teacher="nope")) == [
        f"llm sampler: unknown teacher_llm 'nope'; registered: {', '.join(names)}"]
    assert preflight(LlmConfig(teacher="embedded-llm")) == []
    monkeypatch.setenv("AFCOT_PLUGINS", "negatives")  # a process where no teacher is installed
    monkeypatch.setattr(plugins, "default", functools.cache(plugins.load))
    assert preflight(LlmConfig(teacher="nope")) == ["llm sampler: unknown teacher_llm 'nope'; registered: none"]
