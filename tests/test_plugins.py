import inspect
import json
import textwrap

import pytest

from afcot_core import hookspecs
from afcot_core import plugins as loader
from afcot_core.errors import BadInput
from afcot_core.hookspecs import hookimpl
from afcot_core.registry import ROLES

from .conftest import afcot


def _fake_dist(tmp_path, name, module_source):
    """An installed distribution with an ``afcot`` entry point, made of files on sys.path."""
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(module_source))
    dist = tmp_path / f"{name}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[afcot]\n{name} = {name}\n")
    return {"PYTHONPATH": str(tmp_path)}


def test_every_hook_is_documented():
    specs = [f for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith(("register_", "stage_"))]
    assert len(specs) == len(ROLES) + 3  # one per role, plus commands, stages and stage_finished
    for spec in specs:
        assert spec.__doc__ and len(spec.__doc__.strip()) > 20, spec.__name__


def test_builtins_register_through_entry_points(plugins):
    assert {"embedded-alm"} <= set(plugins.registry("teacher_alm").names())
    assert {"alg6-aqa-subquestions", "alg8-classification-mcq"} <= set(plugins.registry("strategy").names())
    assert {"embedded", "manifest"} <= set(plugins.registry("source").names())
    assert plugins.registry("sink").get("webdataset").plugin == "io"


def test_plugins_list_json_maps_roles_to_names():
    result = afcot("plugins", "list", "--json")
    assert result.returncode == 0
    listing = json.loads(result.stdout)
    assert set(listing) == set(ROLES)
    assert "embedded" in listing["source"]


def test_a_plugin_that_raises_on_import_is_reported_and_skipped(tmp_path):
    env = _fake_dist(tmp_path, "afcot_broken", "raise RuntimeError('boom at import')\n")
    result = afcot("plugins", "list", "--json", env=env)
    assert result.returncode == 0
    assert "embedded" in json.loads(result.stdout)["source"]
    assert "afcot_broken" in result.stderr and "boom at import" in result.stderr


def test_a_misspelled_hook_is_rejected_by_name(tmp_path):
    env = _fake_dist(tmp_path, "afcot_typo", """
        from afcot_core.hookspecs import hookimpl
        @hookimpl
        def register_sourcez(register):
            pass
    """)
    result = afcot("plugins", "list", env=env)
    assert result.returncode == 0
    assert "afcot_typo" in result.stderr and "register_sourcez" in result.stderr


def test_allow_and_deny_lists(monkeypatch):
    monkeypatch.setenv("AFCOT_PLUGINS", "io")
    only_io = loader.load()
    assert "manifest" in only_io.registry("source").names() and "embedded" not in only_io.registry("source").names()
    monkeypatch.delenv("AFCOT_PLUGINS")
    monkeypatch.setenv("AFCOT_DISABLE_PLUGINS", "embedded")
    assert "embedded" not in loader.load().registry("source").names()


class ThirdParty:
    """A plugin object registered the way an installed one would be."""

    @hookimpl
    def register_sources(self, register):
        from afcot_embedded.source import EmbeddedSource, EmbeddedSourceConfig

        register("embedded", EmbeddedSource, EmbeddedSourceConfig, "a clash")


def test_duplicate_names_are_reported_not_fatal():
    plugins = loader.load(extra={"clash": ThirdParty()})
    assert "clash" in plugins.failures and "registered twice" in plugins.failures["clash"]
    assert plugins.registry("source").get("embedded").plugin == "embedded"


def test_unknown_name_suggests_the_closest(plugins):
    with pytest.raises(BadInput, match="did you mean 'embedded-alm'"):
        plugins.registry("teacher_alm").get("embeded-alm")


def test_help_is_fast_and_imports_no_torch():
    import subprocess
    import sys
    import time

    code = "import sys, afcot_core.cli as c; c.build_parser(c._plugins()); print('torch' in sys.modules)"
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    result = afcot("--help")
    assert result.returncode == 0 and "recipe" in result.stdout
    assert time.perf_counter() - started < 3.0  # two interpreter starts; each well under 1.5 s
