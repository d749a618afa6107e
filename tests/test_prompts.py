"""The default prompts carry the content of the released steps (spec/PAPER.md §4), nothing added, nothing dropped."""

import re

import pytest
from afcot_paper.prompts import NAMES, SETS, Prompts, all_prompts, header, source, text

# step → phrases (case-insensitive) and JSON keys the released step has
CONTENT = {
    "gate": ["imagine you are listening to an audio", "requires step-by-step reasoning", "recognizing the source",
             "whether a specific sound exists", "system one", "at least two to three steps", "empty list",
             '"require_step_by_step"', '"sub_questions"', "$question"],
    "gate_only": ["imagine you are listening to an audio", "requires step-by-step reasoning", "system one",
                  "at least two to three steps", '"require_step_by_step"', "$question"],
    "predict": ["imagine you are listening to an audio", "the caption of the audio is", "try your best to answer",
                '"unsure"', "hard to answer", "plain text", "not as an option", "confident prediction", '"answer"',
                "$caption", "$chain", "$question"],
    "validate": ["imagine you are listening to an audio", "the caption of the audio is", "ground truth answer is",
                 "can be inferred from the caption and the reasoning chain", "0 means unable", "1 means able",
                 '"validation"', "$answer", "$chain"],
    "chain": ["reasoning chain containing a few questions and answers", "more information about the audio"],
    "summary": ["imagine you are listening to an audio", "possible reasoning chain", "briefly summarize the question",
                "how to think", "is there only one bird squawking?", "only chirping", "how many birds are squawking",
                "whether there are squawking sounds", '"summary"', "$sub_questions"],
    "summary_interactive": ["how to start thinking", "assume that you do not know the answers",
                            "ignore later questions", "is there only one bird squawking?", '"summary"'],
    "reasoning": ["imagine you are listening to an audio", "possible reasoning chain", "refine the reasoning chain",
                  "logical, precise, and progressive", "disregard useless questions", '"reasoning"', "$chain"],
    "reasoning_interactive": ["ground truth answer is", "briefly describe why the reasoning chain answers the question",
                              '"reasoning"', "$answer", "$chain"],
    "followup": ["almost surely", "not as an option", "follow-up question about the sound aspect",
                 "as concise as possible", "just one thing at a time", "ask more questions",
                 '"answer"', '"followup"', '"unsure"'],
    "caption": ["generate caption for this audio input."],
    "describe": ["describe the acoustic properties of '$label' in one or two sentences",
                 "just focus on the information in terms of sound"],
    "fit": ["how does this sound fit with the label '$label'?"],
    "classification_summary": ["the question is to classify the sound to be one of $choices",
                               "for each choice, i will describe its acoustic properties"],
}
# restrictions and style rules the released steps do not have
ADDED = ["alone", "cannot hear", "first person", "without giving the answer", "do not mention", "at a glance",
         "observations of the audio", "not mention"]


@pytest.mark.parametrize("step", sorted(CONTENT))
def test_each_default_prompt_carries_the_released_content_and_nothing_more(step):
    prompt = Prompts().text(step).lower()
    missing = [phrase for phrase in CONTENT[step] if phrase.lower() not in prompt]
    assert not missing, f"{step} lacks {missing}"
    assert not [phrase for phrase in ADDED if phrase in prompt], step


def test_the_gate_puts_no_limit_on_what_a_sub_question_asks():
    gate = Prompts().text("gate").lower()
    assert "perception" not in gate and "from the audio" not in gate and "listener can answer" not in gate


def test_every_prompt_file_opens_with_a_header_naming_its_step_and_source():
    for prompt_set in SETS:
        for name in NAMES:
            line = header(name, prompt_set)
            assert source(name, prompt_set).startswith("# ") and not text(name, prompt_set).startswith("#")
            assert re.match(r"[a-z -]+ \(", line) and ("AF_CoT_Train/" in line or "ours" in line
                                                         or "strict-perception" in line), line


def test_the_strict_perception_set_keeps_the_earlier_wording_and_falls_back_to_paper():
    strict = Prompts("strict-perception")
    assert "answer from the audio alone" in strict.text("gate") and "You cannot hear" in strict.text("predict")
    assert strict.text("followup") == Prompts().text("followup")
    assert len(all_prompts()) == len(SETS) * len(NAMES)
    with pytest.raises(ValueError, match="unknown prompt set"):
        Prompts("nope")


def test_the_chain_reaches_the_llm_as_question_and_answer_lines():
    evidence = Prompts().evidence([("Is a gull calling?", "Yes.")])
    assert evidence.endswith("\nQuestion: Is a gull calling?\nAnswer: Yes.") and Prompts().evidence([]) == ""


def test_a_recipe_selects_the_prompt_set(plugins):
    from afcot_core import recipe as recipes
    from afcot_core.errors import BadInput

    from .conftest import QUICKSTART

    recipe = recipes.load(QUICKSTART, plugins, ['generate.strategies.aqa.prompts="strict-perception"'])
    assert recipe.stages["generate"].strategies["aqa"].build().prompts.set == "strict-perception"
    with pytest.raises(BadInput, match="prompts"):
        recipes.load(QUICKSTART, plugins, ['generate.strategies.aqa.prompts="mine"'])


def test_prompt_files_are_read_from_the_installed_package_and_a_missing_step_falls_back_to_paper():
    from pathlib import Path

    files = Path(__file__).parents[1] / "plugins" / "afcot_paper" / "prompts"
    source.cache_clear()  # read afresh, not from what an earlier test cached
    try:
        assert source("summary", "release") == (files / "release" / "summary.txt").read_text(encoding="utf-8")
        assert source("causality", "release") == (files / "paper" / "causality.txt").read_text(encoding="utf-8")
    finally:
        source.cache_clear()


def test_a_header_is_the_first_line_without_its_hash_and_each_set_has_its_own():
    assert header("caption") == ("caption (every algorithm, ALM with audio): follows "
                                 "AF_CoT_Train/alg_6_AQA_subquestions.py, generate_CoT")
    assert header("summary", "release").startswith("summary (Algorithm 6, compose): verbatim from")
    prompts = all_prompts()
    assert all(prompts[f"{s}/{name}"] == text(name, s) for s in SETS for name in NAMES)
    assert prompts["release/summary"] != prompts["paper/summary"]


def test_listings_open_on_a_new_line_only_in_the_release_set_and_only_when_there_is_one():
    chain = [("Is a gull calling?", "Yes.")]
    assert Prompts().listing(chain) == "  - Is a gull calling? Answer: Yes."
    assert Prompts("release").listing(chain) == "\n  - Is a gull calling? Answer: Yes."
    assert Prompts("release").listing([]) == "" and Prompts().listing([]) == ""


def test_the_chain_opens_on_a_new_line_only_in_the_release_set_and_strict_perception_lists_it():
    chain = [("Is a gull calling?", "Yes.")]
    assert not Prompts().evidence(chain).startswith("\n") and Prompts("release").evidence(chain).startswith("\n")
    assert Prompts("strict-perception").evidence(chain) == "  - Is a gull calling? Answer: Yes."
