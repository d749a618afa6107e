from pathlib import Path

import pytest

from afcot_core import recipe
from afcot_core.errors import BadInput

from .conftest import QUICKSTART, afcot


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(text)
    return path


def _quickstart_with(tmp_path: Path, old: str, new: str) -> Path:
    text = QUICKSTART.read_text()
    assert old in text
    return _write(tmp_path, text.replace(old, new))


def test_quickstart_validates(plugins):
    parsed = recipe.load(QUICKSTART, plugins)
    assert parsed.run.name == "quickstart"
    assert parsed.stages["generate"].settings.shard_size == 50


@pytest.mark.parametrize("old, new, message", [
    ('use = "embedded-alm"', 'use = "embeded-alm"',
     "generate.alm.use: unknown teacher_alm 'embeded-alm' (did you mean 'embedded-alm'?)"),
    ("items = 200", 'items = "many"', "generate.source.items: Expected `int`, got `str`"),
    ("items = 200", "itmes = 200", "[generate.source] unknown key 'itmes' (did you mean 'items'?)"),
    ("shard_size = 50", "shard_sise = 50", "(did you mean 'shard_size'?)"),
    ("[generate.sink]", "[generate.snk]", "missing table [generate.sink]"),
    ('"generate", "train"', '"generat", "train"', "unknown stage 'generat' (did you mean 'generate'?)"),
])
def test_bad_recipes_exit_2_with_key_path_and_suggestion(tmp_path, old, new, message):
    path = _quickstart_with(tmp_path, old, new)
    out = tmp_path / "out"
    result = afcot("recipe", "run", str(path), "--out", str(out))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert not out.exists()


def test_missing_input_file_exits_2_and_creates_nothing(tmp_path):
    path = _write(tmp_path, QUICKSTART.read_text().replace('use = "embedded"\nitems = 200\nseed = 0\n'
                                                           "classification_fraction = 0.5",
                                                           'use = "manifest"\npath = "nope/items.jsonl"'))
    result = afcot("recipe", "validate", str(path))
    assert result.returncode == 2
    assert "generate.source.path: file not found: nope/items.jsonl" in result.stderr


def test_unknown_section_and_bad_toml(tmp_path):
    result = afcot("recipe", "validate", str(_write(tmp_path, "[genrate]\n")))
    assert result.returncode == 2 and "unknown section [genrate] (did you mean 'generate'?)" in result.stderr
    result = afcot("recipe", "validate", str(_write(tmp_path, "[run\n")))
    assert result.returncode == 2 and "not valid TOML" in result.stderr
    assert afcot("recipe", "validate", str(tmp_path / "absent.toml")).returncode == 2


def test_overrides_are_typed_and_checked(plugins):
    parsed = recipe.load(QUICKSTART, plugins, ["generate.source.items=7", "run.name=x"])
    assert parsed.stages["generate"].source.config.items == 7 and parsed.run.name == "x"
    with pytest.raises(BadInput, match=r"KEY\.PATH=VALUE"):
        recipe.load(QUICKSTART, plugins, ["novalue"])
    with pytest.raises(BadInput, match="unknown key 'itemz'"):
        recipe.load(QUICKSTART, plugins, ["generate.source.itemz=3"])


def test_plan_lists_components_and_stages_must_exist(tmp_path):
    result = afcot("recipe", "plan", str(QUICKSTART))
    assert result.returncode == 0 and "alg6-aqa-subquestions" in result.stdout and "all inputs present" in result.stdout
    no_train = _write(tmp_path, QUICKSTART.read_text().split("\n[train]")[0].replace(
        'stages = ["generate", "train", "evaluate"]', 'stages = ["generate"]'))
    result = afcot("recipe", "run", str(no_train), "--stages", "train", "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "has no [train] section" in result.stderr
    assert not (tmp_path / "o").exists()


def test_paper_recipes_validate_and_stop_before_work_without_weights(tmp_path):
    root = QUICKSTART.parent.parent
    students = {"af2_sound_cot": "nvidia/audio-flamingo-2", "af3_sound_cot": "nvidia/audio-flamingo-3-hf"}
    for name, student in students.items():
        path = QUICKSTART.parent / f"{name}.toml"
        assert afcot("recipe", "validate", str(path), cwd=root).returncode == 0
        out = tmp_path / name
        result = afcot("recipe", "run", str(path), "--out", str(out), cwd=root,
                       env={"HF_HUB_CACHE": str(tmp_path / "empty-cache")})
        assert result.returncode == 2
        for model in ("Qwen/Qwen3-8B", "Qwen/Qwen2.5-Omni-7B", student):
            assert f"`hf download {model}" in result.stderr and "huggingface-cli" not in result.stderr
        assert not out.exists()
