"""Plugins installed next to the built-ins: name clashes, plugins that exit, allow-lists that match nothing."""

import importlib
import textwrap

import pytest

from afcot_core import plugins as loader
from afcot_core.hookspecs import hookimpl

from .conftest import afcot


def _install(tmp_path, monkeypatch, name, source):
    """A distribution with an ``afcot`` entry point, first on sys.path (so it is found before the built-ins)."""
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    dist = tmp_path / f"{name}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[afcot]\n{name} = {name}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    return {"PYTHONPATH": str(tmp_path)}


CLASH = """
    from afcot_core.hookspecs import hookimpl
    from afcot_paper.validators import FormatConfig, FormatRules

    @hookimpl(trylast=True)  # pluggy lists trylast implementations first
    def register_validators(register):
        register("format", FormatRules, FormatConfig, "a look-alike of the built-in")
        register("strict-format", FormatRules, FormatConfig, "a validator of its own")
"""


def test_a_clashing_name_is_refused_naming_both_plugins_and_the_builtin_stays(tmp_path, monkeypatch):
    _install(tmp_path, monkeypatch, "aaa_clash", CLASH)
    plugins = loader.load()
    validators = plugins.registry("validator")
    assert validators.get("format").plugin == "paper"
    assert validators.get("format").description.startswith("four tags")
    assert validators.get("strict-format").plugin == "aaa_clash"  # the plugin's other names still register
    assert validators.get("paper-accept").plugin == "paper"
    [warning] = [w for w in plugins.warnings() if "aaa_clash" in w]
    assert "'format'" in warning and "'paper'" in warning and "refused" in warning
    assert "format" not in plugins.failures.get("paper", "")


def test_a_clashing_command_is_refused_and_the_first_stays():
    class Twice:
        @hookimpl
        def register_commands(self, register):
            register("inspect-more", "first", lambda parser: None, lambda args: 0)

    plugins = loader.load(extra={"one": Twice(), "two": Twice()})
    assert plugins.commands["inspect-more"].plugin == "one"
    assert "command 'inspect-more' refused" in plugins.failures["two"] and "'one'" in plugins.failures["two"]


@pytest.mark.parametrize("body", ["import sys\nsys.exit(3)\n", "raise SystemExit('bye')\n",
                                  "raise ImportError('no such thing')\n"])
def test_a_plugin_that_exits_while_importing_is_skipped_with_a_warning(tmp_path, monkeypatch, body):
    _install(tmp_path, monkeypatch, "aaa_exits", body)
    plugins = loader.load()
    assert "aaa_exits" in plugins.failures and "skipped" in plugins.failures["aaa_exits"]
    assert "embedded" in plugins.registry("source").names()


def test_a_plugin_that_exits_while_registering_is_reported(tmp_path, monkeypatch):
    _install(tmp_path, monkeypatch, "aaa_exits_late", """
        import sys
        from afcot_core.hookspecs import hookimpl

        @hookimpl
        def register_sources(register):
            sys.exit(4)
    """)
    plugins = loader.load()
    assert "SystemExit while registering" in plugins.failures["aaa_exits_late"]


def test_plugins_list_survives_a_plugin_calling_sys_exit(tmp_path, monkeypatch):
    env = _install(tmp_path, monkeypatch, "aaa_exits", "import sys\nsys.exit(3)\n")
    result = afcot("plugins", "list", env=env)
    assert result.returncode == 0, result.stderr
    assert "manifest" in result.stdout
    assert "warning: plugin 'aaa_exits': skipped: SystemExit: 3" in result.stderr


def test_an_allow_list_name_that_matches_nothing_is_warned_about(monkeypatch):
    monkeypatch.setenv("AFCOT_PLUGINS", "io,embeded")
    plugins = loader.load()
    assert "manifest" in plugins.registry("source").names() and "embedded" not in plugins.registry("source").names()
    [warning] = plugins.warnings()
    assert "AFCOT_PLUGINS: 'embeded' matches no installed plugin (did you mean 'embedded'?)" in warning
    monkeypatch.delenv("AFCOT_PLUGINS")
    monkeypatch.setenv("AFCOT_DISABLE_PLUGINS", "nonexistent")
    assert any("AFCOT_DISABLE_PLUGINS: 'nonexistent'" in w for w in loader.load().warnings())
    monkeypatch.delenv("AFCOT_DISABLE_PLUGINS")
    monkeypatch.setenv("AFCOT_PLUGINS", " ")
    assert loader.load().warnings() == ["AFCOT_PLUGINS is set but names no plugin: none is loaded"]


def test_the_cli_prints_the_unmatched_name():
    result = afcot("plugins", "list", "--json", env={"AFCOT_PLUGINS": "nonexistent"})
    assert result.returncode == 0
    assert "warning: AFCOT_PLUGINS: 'nonexistent' matches no installed plugin" in result.stderr


def test_unusable_registrations_are_refused_naming_the_plugin():
    class Sloppy:
        @hookimpl
        def register_validators(self, register):
            from afcot_paper.validators import FormatConfig, FormatRules

            register("", FormatRules, FormatConfig)
            register("two words", FormatRules, FormatConfig)
            register("no-factory", None, FormatConfig)
            register("dict-config", FormatRules, dict)
            register("fine", FormatRules, FormatConfig)

    plugins = loader.load(extra={"sloppy": Sloppy()})
    names = plugins.registry("validator").names()
    assert "fine" in names and not {"", "two words", "no-factory", "dict-config"} & set(names)
    message = plugins.failures["sloppy"]
    assert all(f"validator {n!r} refused" in message for n in ("", "two words", "no-factory", "dict-config"))


def test_a_command_that_clashes_or_fails_to_configure_leaves_the_others_working(monkeypatch, capsys):
    from afcot_core import cli

    def broken(parser):
        raise SystemExit("configure gave up")

    class Commands:
        @hookimpl
        def register_commands(self, register):
            register("inspect", "a look-alike", lambda parser: parser.add_argument("x"), lambda args: 7)
            register("broken", "fails to configure", broken, lambda args: 7)
            register("works", "fine", lambda parser: None, lambda args: 5)

    plugins = loader.load(extra={"cmds": Commands()})
    monkeypatch.setattr(cli, "_plugins", lambda: plugins)
    assert cli.main(["works"]) == 5
    err = capsys.readouterr().err
    assert "plugin 'cmds': command 'inspect' refused" in err
    assert "plugin 'cmds': command 'broken' left out: SystemExit while configuring: configure gave up" in err
    assert cli.main(["inspect", "/no/such/run"]) == 2  # the built-in inspect, not the plugin's
