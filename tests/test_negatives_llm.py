"""The ``llm`` sampler (the paper's LLM_create_options) with a scripted fake teacher."""

from __future__ import annotations

import asyncio
import json

import msgspec
import pytest
from afcot_negatives.llm import LlmConfig, LlmSampler, preflight, render_prompt

from afcot_core import plugins
from afcot_core.errors import Rejected
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
