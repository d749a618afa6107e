"""`afcot plugins new` writes a plugin package that installs, registers through its entry point and passes its test."""

import json
import os
import subprocess
import sys

import pytest
from afcot_devtools import scaffold

from afcot_core import cli
from afcot_core.errors import BadInput

from .conftest import afcot


def test_every_role_installs_lists_and_passes_its_own_test(tmp_path):
    made = []
    for name, role in (("caption-length", "validator"), ("my-llm", "teacher_llm"), ("my-alm", "teacher_alm")):
        assert cli.main(["plugins", "new", name, "--role", role, "--dir", str(tmp_path)]) == 0
        made.append(tmp_path / f"afcot-{name}")
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), *map(str, made)], check=True, capture_output=True)
    env = {"PYTHONPATH": str(site)}
    listing = json.loads(afcot("plugins", "list", "--json", env=env).stdout)
    assert "caption-length" in listing["validator"]
    assert "my-llm" in listing["teacher_llm"] and "my-alm" in listing["teacher_alm"]
    documented = afcot("docs", "recipes", "--all", "--out", "-", env=env).stdout
    assert "| `min_words` | `int` | `5` | fewest words the CAPTION must have |" in documented
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            *(str(p / "tests") for p in made)], capture_output=True, text=True, cwd=tmp_path,
                           env={**os.environ, **env}, timeout=120)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "3 passed" in tests.stdout


def test_the_package_has_what_a_plugin_needs():
    files = scaffold.files("caption-length", "validator")
    assert set(files) == {"pyproject.toml", "README.md", "afcot_caption_length/__init__.py",
                          "afcot_caption_length/plugin.py", "afcot_caption_length/component.py",
                          "tests/test_afcot_caption_length.py"}
    assert '[project.entry-points.afcot]\ncaption-length = "afcot_caption_length.plugin"' in files["pyproject.toml"]
    assert "{{" not in "".join(files.values())
    assert "#: fewest words the CAPTION must have" in files["afcot_caption_length/component.py"]


@pytest.mark.parametrize("name", ["My_Plugin", "-x", "a--b", "", "x/y"])
def test_bad_names_are_refused(name):
    with pytest.raises(BadInput, match="lower-case letters"):
        scaffold.files(name, "validator")


def test_an_existing_folder_is_never_overwritten(tmp_path, capsys):
    (tmp_path / "afcot-taken").mkdir()
    assert cli.main(["plugins", "new", "taken", "--dir", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["plugins", "new", "fine", "--dir", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [tmp_path / "afcot-taken"]


def test_a_hyphenated_name_becomes_one_class_name_and_an_unknown_role_lists_the_roles():
    plugin = scaffold.files("my-own-checks", "validator")["afcot_my_own_checks/plugin.py"]
    assert "import MyOwnChecks, MyOwnChecksConfig" in plugin
    assert 'register("my-own-checks", MyOwnChecks, MyOwnChecksConfig, "rejects a CoT whose caption' in plugin
    with pytest.raises(BadInput) as err:
        scaffold.files("x", "judge")
    assert str(err.value) == "--role judge: choose one of validator, teacher_llm, teacher_alm"
