"""The core's plumbing pinned exactly: plugin loading and its order, what a registration records, the registry's and
the catalog's messages, the CLI's commands, output and exit codes in process, the run log's JSON lines, and what a
progress bar shows in a terminal and leaves on a stream that is not one."""

from __future__ import annotations

import importlib.metadata
import io
import json
import logging
import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import msgspec
import pytest
import structlog
from structlog.testing import LogCapture, capture_logs

import afcot_core
from afcot_core import catalog, cli, log, progress, recipe
from afcot_core import plugins as loader
from afcot_core.errors import BadInput
from afcot_core.hookspecs import hookimpl
from afcot_core.plugins import Command, Stage
from afcot_core.progress import Bar
from afcot_core.registry import ROLES, NoConfig, Registration, Registry, suggest
from afcot_core.shards import ShardCounts

from .conftest import run_cli


class ToneConfig(msgspec.Struct):
    hz: int = 440


def tone(config):
    return ("tone", config)


def tone_preflight(config):
    return []


def tone_plan(config):
    return [{"text": "one tone", "ok": True}]


def _parser(table, plugins):
    return table


class BarePlugin:
    """The object of an entry point that has no distribution (``ep.dist`` is None)."""

    @hookimpl
    def register_sources(self, register):
        register("bare-source", tone, ToneConfig)


BARE = BarePlugin()  # what the entry point names (an object, as a module is)


def _real_entry_point(name: str):
    return next(ep for ep in importlib.metadata.entry_points(group="afcot") if ep.name == name)


# --- loading: order, versions, the plugins that are skipped -----------------------------------------------------------


def test_built_in_plugins_load_first_whatever_order_they_are_found_in(monkeypatch):
    io_ep = _real_entry_point("io")
    bare = importlib.metadata.EntryPoint(name="bare", value=f"{__name__}:BARE", group="afcot")
    assert bare.dist is None and loader.is_builtin(io_ep) and not loader.is_builtin(bare)
    monkeypatch.setattr(loader, "md", SimpleNamespace(entry_points=lambda group: [bare, io_ep]))
    monkeypatch.delenv("AFCOT_PLUGINS", raising=False)
    monkeypatch.delenv("AFCOT_DISABLE_PLUGINS", raising=False)

    plugins = loader.load(extra={"mine": BarePlugin()})

    # the core's own stages, then built-ins, then the others as found, then the ``extra`` objects (tests')
    assert list(plugins.versions) == ["core", "io", "bare", "mine"]
    assert plugins.versions == {"core": afcot_core.__version__, "io": io_ep.dist.version, "bare": "?",
                                "mine": "local"}
    assert plugins.registry("source").get("bare-source").plugin == "bare"
    assert plugins.failures == {"mine": "source 'bare-source' registered twice: refused, the one of plugin "
                                        "'bare' stays"}


def test_an_env_name_matching_no_plugin_is_warned_about_listing_the_installed_ones(monkeypatch):
    eps = [_real_entry_point("io"), importlib.metadata.EntryPoint(name="bare", value=f"{__name__}:BARE",
                                                                  group="afcot")]
    monkeypatch.setattr(loader, "md", SimpleNamespace(entry_points=lambda group: eps))
    monkeypatch.setenv("AFCOT_PLUGINS", "zeta, io,bar")
    monkeypatch.setenv("AFCOT_DISABLE_PLUGINS", "nope")
    plugins = loader.load()
    # allow-list first, then the deny-list; each list's names sorted
    assert plugins.warnings() == [
        "AFCOT_PLUGINS: 'bar' matches no installed plugin (did you mean 'bare'?); installed: bare, io",
        "AFCOT_PLUGINS: 'zeta' matches no installed plugin; installed: bare, io",
        "AFCOT_DISABLE_PLUGINS: 'nope' matches no installed plugin; installed: bare, io",
    ]
    assert list(plugins.versions) == ["core", "io"]

    monkeypatch.setattr(loader, "md", SimpleNamespace(entry_points=lambda group: []))
    monkeypatch.setenv("AFCOT_PLUGINS", "io")
    monkeypatch.delenv("AFCOT_DISABLE_PLUGINS")
    assert loader.load().warnings() == ["AFCOT_PLUGINS: 'io' matches no installed plugin; installed: none"]


class Misspelled:
    @hookimpl
    def register_sources(self, register):
        register("typo-source", tone, ToneConfig)

    @hookimpl
    def register_sourcez(self, register):
        pass


class After:
    @hookimpl
    def register_sources(self, register):
        register("after-source", tone, ToneConfig)


def test_a_plugin_with_a_misspelled_hook_is_skipped_whole_and_the_next_still_loads(monkeypatch):
    monkeypatch.setenv("AFCOT_PLUGINS", "io")
    plugins = loader.load(extra={"typo": Misspelled(), "after": After()})
    assert plugins.failures == {"typo": "skipped: PluginValidationError: unknown hook 'register_sourcez' (misspelled?)"}
    assert plugins.warnings() == ["plugin 'typo': skipped: PluginValidationError: unknown hook 'register_sourcez' "
                                  "(misspelled?)"]
    # its correctly spelled hook registers nothing either: the plugin is taken out, not half loaded
    assert "typo-source" not in plugins.registry("source").names()
    assert not plugins.manager.has_plugin("typo") and "typo" not in plugins.versions
    assert plugins.registry("source").get("after-source").plugin == "after"
    assert plugins.versions["after"] == "local"


# --- registrations ----------------------------------------------------------------------------------------------------


class Complete:
    @hookimpl
    def register_sources(self, register):
        register("full", tone, ToneConfig, "a tone with everything", tone_preflight, {"ask": "which pitch?"},
                 tone_plan)
        register("plain", tone)


def test_a_registration_records_every_field_it_was_given_and_the_defaults_of_the_rest(monkeypatch):
    monkeypatch.setenv("AFCOT_PLUGINS", "io")
    sources = loader.load(extra={"complete": Complete()}).registry("source")
    assert sources.get("full") == Registration("source", "full", tone, ToneConfig, "a tone with everything",
                                               "complete", tone_preflight, {"ask": "which pitch?"}, tone_plan)
    assert sources.get("plain") == Registration("source", "plain", tone, NoConfig, "", "complete", None, {}, None)
    assert sources.get("full").build(ToneConfig(hz=220)) == ("tone", ToneConfig(hz=220))
    with pytest.raises(BadInput, match=r"^unknown source 'ful' \(did you mean 'full'\?\); registered: .*\bfull\b"):
        sources.get("ful")


class Sloppy:
    @hookimpl
    def register_validators(self, register):
        register("-dash-first", tone, ToneConfig)
        register(7, tone, ToneConfig)
        register("no-factory", "not callable", ToneConfig)
        register("an-instance", tone, ToneConfig())
        register("a", tone, ToneConfig)  # one character is a name
        register("v1.2_beta-3", tone, ToneConfig)


def test_unusable_registrations_are_refused_each_with_its_reason_in_order(monkeypatch):
    monkeypatch.setenv("AFCOT_PLUGINS", "io")
    plugins = loader.load(extra={"sloppy": Sloppy()})
    naming = "a name is letters, digits and . _ - (starting with a letter or digit)"
    assert plugins.failures["sloppy"].split("; ") == [
        f"validator '-dash-first' refused: {naming}",
        f"validator 7 refused: {naming}",
        "validator 'no-factory' refused: its factory is not callable",
        "validator 'an-instance' refused: its config is not a msgspec.Struct type",
    ]
    assert {"a", "v1.2_beta-3"} <= set(plugins.registry("validator").names())


class Stages:
    @hookimpl
    def register_stages(self, register):
        register("generate", _parser, 5)
        register("run", _parser, 5)  # the name of a whole run, never a stage's
        register("polish", _parser)
        register("early", _parser, 15)
        register("also-early", _parser, 15)  # an order shared: by name


class LaterStages:
    @hookimpl
    def register_stages(self, register):
        register("polish", _parser, 1)


class Broken:
    @hookimpl
    def register_stages(self, register):
        raise RuntimeError("no stage today")

    @hookimpl
    def register_commands(self, register):
        raise SystemExit("no command either")


def test_stages_clash_with_whoever_registered_first_and_run_in_their_order(monkeypatch):
    monkeypatch.setenv("AFCOT_PLUGINS", " ")  # the core's generate stage alone
    plugins = loader.load(extra={"stages": Stages(), "later": LaterStages(), "broken": Broken()})
    assert plugins.failures == {
        "stages": "stage 'generate' refused: plugin 'core' registered it first; "
                  "stage 'run' refused: plugin 'core' registered it first",
        "later": "stage 'polish' refused: plugin 'stages' registered it first",
        "broken": "RuntimeError while registering: no stage today; SystemExit while registering: no command either",
    }
    assert plugins.stages["polish"] == Stage("polish", _parser, 100, "stages")  # no order: after the built-ins
    assert plugins.stages["early"] == Stage("early", _parser, 15, "stages")
    assert plugins.stage_names() == ("generate", "also-early", "early", "polish")


def test_the_core_registers_generate_at_order_10_and_hands_its_table_to_the_generate_stage(plugins):
    generate = plugins.stages["generate"]
    assert (generate.plugin, generate.order) == ("core", 10)
    assert plugins.stage_names() == ("generate", "train", "evaluate")
    from afcot_core.stages.generate import GenerateStage

    assert generate.stage.settings is GenerateStage().settings
    with pytest.raises(BadInput, match=r"^\[generate\] missing table \[generate.source\]$"):
        generate.stage.parse({}, plugins)


def _hello(args):
    print(f"hello {args.who}")
    return 4


class Hello:
    @hookimpl
    def register_commands(self, register):
        register("hello", "says hello", _who, _hello)
        register("recipe hello", "says hello from the recipe group", _who, _hello)
        register("nosuch thing", "in a group afcot has not", _who, _hello)
        register("plugins list", "a look-alike of afcot's own", _who, _hello)

    @hookimpl
    def register_sources(self, register):
        register("tone", tone, ToneConfig, "a test tone")


def _who(parser):
    parser.add_argument("who")


def _hello_plugins(monkeypatch):
    monkeypatch.setenv("AFCOT_PLUGINS", " ")
    plugins = loader.load(extra={"mine": Hello()})
    monkeypatch.setattr(cli, "_plugins", lambda: plugins)
    return plugins


def test_a_command_records_its_help_and_joins_the_group_its_first_word_names(monkeypatch, capsys):
    plugins = _hello_plugins(monkeypatch)
    assert plugins.commands["hello"] == Command("hello", "says hello", _who, _hello, "mine")
    code, out, err = run_cli(capsys, "recipe", "hello", "world")
    assert (code, out) == (4, "hello world\n")
    assert err.splitlines() == [
        "warning: AFCOT_PLUGINS is set but names no plugin: none is loaded",
        "warning: plugin 'mine': command 'nosuch thing' left out: afcot has no command group 'nosuch' "
        "(groups: plugins, recipe)",
        "warning: plugin 'mine': command 'plugins list' refused: afcot has its own",
    ]
    assert run_cli(capsys, "hello", "you")[:2] == (4, "hello you\n")


def test_plugins_list_prints_each_role_its_components_and_the_commands(monkeypatch, capsys):
    _hello_plugins(monkeypatch)
    code, out, _ = run_cli(capsys, "plugins", "list")
    assert code == 0
    expected = []
    for role in ROLES:
        expected.append(f"{role}:")
        if role == "source":
            expected.append(f"  {'tone':<28} a test tone  [mine]")
    expected += ["commands:", f"  {'hello':<28} says hello  [mine]",
                 f"  {'nosuch thing':<28} in a group afcot has not  [mine]",
                 f"  {'plugins list':<28} a look-alike of afcot's own  [mine]",
                 f"  {'recipe hello':<28} says hello from the recipe group  [mine]"]
    assert out.splitlines() == expected
    code, out, _ = run_cli(capsys, "plugins", "list", "--json")
    assert code == 0
    assert out == json.dumps({role: ["tone"] if role == "source" else [] for role in ROLES}, indent=2) + "\n"


def test_plugins_list_without_commands_prints_no_commands_heading(monkeypatch, capsys):
    monkeypatch.setenv("AFCOT_PLUGINS", " ")
    plugins = loader.load()
    monkeypatch.setattr(cli, "_plugins", lambda: plugins)
    code, out, _ = run_cli(capsys, "plugins", "list")
    assert (code, out.splitlines()) == (0, [f"{role}:" for role in ROLES])


def _raising(exc: BaseException):
    class Raises:
        @hookimpl
        def register_commands(self, register):
            def run(args):
                raise exc

            register("fail", "raises", lambda parser: None, run)

    return Raises()


@pytest.mark.parametrize(("exc", "code", "message"), [
    (BadInput("the input is wrong"), 2, "error: the input is wrong"),
    (FileExistsError(17, "File exists", "/some/run"), 2, "error: /some/run: File exists"),
    (NotADirectoryError(20, "Not a directory", "/a/file"), 2, "error: /a/file: Not a directory"),
    (IsADirectoryError(21, "Is a directory", "/a/folder"), 2, "error: /a/folder: Is a directory"),
    (KeyboardInterrupt(), 130, "interrupted: finished shards are kept, the next run goes on from there"),
    (RuntimeError("it broke"), 1, "failed: RuntimeError: it broke"),
])
def test_a_command_failing_exits_with_the_code_of_its_kind_of_failure(monkeypatch, capsys, exc, code, message):
    monkeypatch.setenv("AFCOT_PLUGINS", "io")
    plugins = loader.load(extra={"raises": _raising(exc)})
    monkeypatch.setattr(cli, "_plugins", lambda: plugins)
    assert run_cli(capsys, "fail") == (code, "", message + "\n")


def test_no_command_prints_the_help_and_version_loads_no_plugin(monkeypatch, capsys):
    code, out, _ = run_cli(capsys)
    assert code == 0 and out.startswith("usage: afcot") and "recipe" in out

    def no_plugins():
        raise AssertionError("--version must not load the plugins")

    monkeypatch.setattr(cli, "_plugins", no_plugins)
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out == f"afcot {afcot_core.__version__}\n"


def test_main_without_arguments_runs_the_command_line_it_was_started_with(monkeypatch, capsys):
    _hello_plugins(monkeypatch)
    monkeypatch.setattr(sys, "argv", ["afcot", "hello", "argv"])
    assert cli.main() == 4
    assert capsys.readouterr().out == "hello argv\n"


# --- recipe validate, plan and run ------------------------------------------------------------------------------------


def _components(name: str, plugins) -> int:
    return sum(len(section.components()) for section in recipe.load(name, plugins).stages.values())


def test_recipe_validate_names_the_stages_the_components_and_the_variants(capsys, plugins):
    count = _components("quickstart", plugins)
    assert count > 0
    assert run_cli(capsys, "recipe", "validate", "quickstart") == (
        0, f"quickstart: ok (generate, train, evaluate; {count} components)\n", "")
    code, out, _ = run_cli(capsys, "recipe", "validate", "learn")
    assert (code, out) == (0, f"learn: ok (generate, train, evaluate; {_components('learn', plugins)} components; "
                              "variants cot, plain)\n")
    code, out, _ = run_cli(capsys, "recipe", "validate", "compare_bfs_dfs")
    assert (code, out) == (0, f"compare_bfs_dfs: ok (generate; {_components('compare_bfs_dfs', plugins)} "
                              "components; variants bfs, dfs)\n")


def test_recipe_plan_prints_the_plan_document_as_json_or_as_text(tmp_path, capsys, plugins):
    from afcot_core import runner

    loaded = recipe.load("quickstart", plugins)
    for out in (None, tmp_path / "run"):
        doc = runner.plan_document(loaded, ["generate"], out)
        where = ["--out", str(out)] if out else []
        assert run_cli(capsys, "recipe", "plan", "quickstart", "--stages", "generate", "--json", *where) == (
            0, json.dumps(doc, indent=2) + "\n", "")
        assert run_cli(capsys, "recipe", "plan", "quickstart", "--stages", "generate", *where) == (
            0, runner.plan(doc) + "\n", "")
    assert not (tmp_path / "run").exists()  # a plan writes nothing


def test_recipe_run_tells_people_its_statistics_unless_quiet_and_prints_its_result(tmp_path, capsys):
    small = ["--stages", "generate", "--set", "generate.source.items=4", "--set", "generate.shard_size=2"]
    code, out, err = run_cli(capsys, "recipe", "run", "quickstart", *small, "--out", str(tmp_path / "told"))
    assert code == 0, err
    result = json.loads(out)
    assert result["out"] == str(tmp_path / "told") and set(result["generate"]) == {"accepted", "rejected", "failed"}
    stats = (tmp_path / "told" / "generate" / "stats.md").read_text(encoding="utf-8")
    assert stats.strip() and err.endswith(stats + "\n")
    code, out, err = run_cli(capsys, "recipe", "run", "quickstart", *small, "--out", str(tmp_path / "quiet"),
                             "--quiet")
    assert code == 0 and json.loads(out)["generate"] == result["generate"]
    assert err == ""  # no statistics, no progress, no console log


def test_a_run_out_in_the_recipe_that_is_a_file_is_refused_naming_the_recipe_unless_out_is_given(tmp_path, capsys):
    taken = tmp_path / "taken.txt"
    taken.write_text("not a folder")
    named = ["--set", f"run.out={taken}"]
    assert run_cli(capsys, "recipe", "run", "quickstart", *named) == (
        2, "", f"error: {catalog.folder() / 'quickstart.toml'}: [run] out = {taken}: is a file, not a folder\n")
    # --out wins over [run] out, which is then never looked at: the run goes on (to the next check, here)
    code, _, err = run_cli(capsys, "recipe", "run", "quickstart", *named, "--out", str(tmp_path / "run"),
                           "--stages", "nosuch")
    assert (code, err) == (2, "error: --stages: unknown stage 'nosuch'; stages: generate, train, evaluate\n")
    assert taken.read_text() == "not a folder" and not (tmp_path / "run").exists()


def test_a_run_of_variants_ends_with_their_comparison_unless_quiet(tmp_path, capsys):
    small = ["--set", "generate.source.items=2"]
    code, out, err = run_cli(capsys, "recipe", "run", "compare_bfs_dfs", *small, "--out", str(tmp_path / "told"))
    assert code == 0, err
    assert sorted(json.loads(out)["variants"]) == ["bfs", "dfs"]
    compare = (tmp_path / "told" / "compare.md").read_text(encoding="utf-8")
    assert compare.strip() and err.endswith(compare + "\n")
    code, _, err = run_cli(capsys, "recipe", "run", "compare_bfs_dfs", *small, "--out", str(tmp_path / "quiet"),
                           "--quiet")
    assert (code, err) == (0, "")


# --- the registry and the catalog -------------------------------------------------------------------------------------


def _registration(name: str, plugin: str) -> Registration:
    return Registration("validator", name, tone, NoConfig, "", plugin)


def test_a_registry_refuses_a_second_registration_of_a_name_naming_both_plugins():
    validators = Registry("validator")
    validators.add(_registration("format", "paper"))
    with pytest.raises(ValueError) as refused:
        validators.add(_registration("format", "mine"))
    assert str(refused.value) == "validator 'format' registered twice (plugins 'paper' and 'mine')"
    assert validators.get("format").plugin == "paper"


def test_an_unknown_name_is_answered_with_the_closest_name_and_every_registered_one():
    validators = Registry("validator")
    for name in ("paper-accept", "format"):
        validators.add(_registration(name, "paper"))
    with pytest.raises(BadInput) as unknown:
        validators.get("paper", where="recipe.toml [generate]")
    assert str(unknown.value) == ("recipe.toml [generate]: unknown validator 'paper' (did you mean 'paper-accept'?); "
                                  "registered: format, paper-accept")
    with pytest.raises(BadInput) as unknown:
        Registry("sink").get("webdataset")
    assert str(unknown.value) == "unknown sink 'webdataset'; registered: none"


def test_a_suggestion_needs_half_the_letters_in_common():
    assert suggest("emb", ["embedded", "io"]) == " (did you mean 'embedded'?)"  # a ratio of 0.55
    assert suggest("abcd", ["abxy"]) == " (did you mean 'abxy'?)"  # exactly 0.5
    assert suggest("web", ["webdataset"]) == ""  # 0.46
    assert suggest("anything", []) == ""


def test_a_built_in_recipe_name_holding_a_path_separator_is_refused_even_when_the_file_exists(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    for name in ("alpha", "beta", "sub/inner", "back\\slash"):  # a backslash is a plain character on POSIX
        (tmp_path / f"{name}.toml").write_text("")
    monkeypatch.setattr(catalog, "folder", lambda: tmp_path)
    assert catalog.path("alpha") == tmp_path / "alpha.toml"
    known = "alpha, back\\slash, beta"
    for name in ("sub/inner", "sub/../alpha", "back\\slash"):
        with pytest.raises(BadInput) as refused:
            catalog.path(name)
        assert str(refused.value).startswith(f"unknown built-in recipe '{name}'")
        assert str(refused.value).endswith(f"; built-in recipes: {known} (or give the path to a recipe file)")
    with pytest.raises(BadInput) as refused:
        catalog.path("alpah")
    assert str(refused.value) == (f"unknown built-in recipe 'alpah' (did you mean 'alpha'?); built-in recipes: {known}"
                                  " (or give the path to a recipe file)")


def test_with_no_built_in_recipe_the_message_says_none(tmp_path, monkeypatch):
    monkeypatch.setattr(catalog, "folder", lambda: tmp_path)
    with pytest.raises(BadInput) as refused:
        catalog.path("quickstart")
    assert str(refused.value) == ("unknown built-in recipe 'quickstart'; built-in recipes: none "
                                  "(or give the path to a recipe file)")


def test_a_recipe_reference_is_a_file_first_then_a_built_in_name_with_or_without_toml(tmp_path, monkeypatch):
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    for name in ("alpha", "beta"):
        (shipped / f"{name}.toml").write_text("")
    monkeypatch.setattr(catalog, "folder", lambda: shipped)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "beta.toml").write_text("")  # a file here wins over the built-in of that name
    assert catalog.resolve("beta.toml") == Path("beta.toml")
    assert catalog.resolve("alpha") == catalog.resolve("alpha.toml") == shipped / "alpha.toml"
    for ref, hint in (("alpah", " (did you mean 'alpha'?)"), ("alpah.toml", " (did you mean 'alpha'?)"),
                      ("some/dir/alpha.toml", ""), ("zzz", "")):
        with pytest.raises(BadInput) as missing:
            catalog.resolve(ref)
        assert str(missing.value) == f"{ref}: recipe file not found{hint}; built-in recipes: alpha, beta"


def test_the_recipes_placeholder_is_replaced_in_every_string_of_nested_data(tmp_path, monkeypatch):
    monkeypatch.setattr(catalog, "folder", lambda: tmp_path)
    data = {"path": "{recipes}/data/items.jsonl", "list": ["{recipes}", 3, {"deep": "a {recipes} b"}], "on": True}
    assert catalog.expand(data) == {"path": f"{tmp_path}/data/items.jsonl",
                                    "list": [str(tmp_path), 3, {"deep": f"a {tmp_path} b"}], "on": True}
    assert catalog.portable(catalog.expand(data))["list"][:2] == ["{recipes}", 3]
    assert catalog.strings(("{recipes}",), str.upper) == ("{recipes}",)  # a tuple is not TOML data: left alone


# --- the run log ------------------------------------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class BrokenStream(io.StringIO):
    """A stream whose reader has gone: every write breaks, and each try is counted."""

    def __init__(self, terminal: bool) -> None:
        super().__init__()
        self.terminal, self.tries = terminal, 0

    def isatty(self) -> bool:
        return self.terminal

    def write(self, text: str) -> int:
        self.tries += 1
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


@pytest.fixture
def stderr_as(monkeypatch):
    """Swap stderr for a stream; the shared console and the logging configuration are put back afterwards."""
    before = structlog.get_config()

    def swap(stream, columns: int = 200):
        monkeypatch.setattr(sys, "stderr", stream)
        monkeypatch.setenv("TERM", "xterm-256color")
        monkeypatch.setenv("COLUMNS", str(columns))
        for var in ("NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "FORCE_COLOR"):
            monkeypatch.delenv(var, raising=False)
        log.console.cache_clear()
        return stream

    yield swap
    log.close()
    log.console.cache_clear()
    log._ConsoleLogger.gone = False
    structlog.configure(**before)


def _events(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_run_log_writes_each_event_as_a_json_line_and_stops_after_the_block(tmp_path, stderr_as):
    err = stderr_as(io.StringIO())
    earlier = LogCapture()
    structlog.configure(processors=[earlier])  # the logging of whoever opened the run
    path = tmp_path / "run" / "logs" / "run.jsonl"  # its folders are made
    with log.run_log(path):
        log.get().info("shard written", shard=3, path=tmp_path)
        log.get("afcot", stage="generate").warning("slow teacher")
    log.get().info("after the run")  # logging as it was before the block: neither the file nor the console
    assert earlier.entries == [{"event": "after the run", "log_level": "info"}]
    events = _events(path)
    assert [{k: v for k, v in e.items() if k != "timestamp"} for e in events] == [
        {"shard": 3, "path": str(tmp_path), "event": "shard written", "level": "info"},
        {"stage": "generate", "event": "slow teacher", "level": "warning"},
    ]
    assert all(e["timestamp"].endswith("Z") and "T" in e["timestamp"] for e in events)  # ISO, UTC
    lines = err.getvalue().splitlines(keepends=True)  # the console: one plain line per event
    assert len(lines) == 2 and all(line.endswith("\n") and "\x1b" not in line for line in lines)
    assert "shard written" in lines[0] and "shard=3" in lines[0] and "slow teacher" in lines[1]


def test_a_quiet_run_log_keeps_the_console_silent_and_appends_to_the_file(tmp_path, stderr_as):
    err = stderr_as(io.StringIO())
    path = tmp_path / "run.jsonl"
    path.write_text('{"event": "an earlier run"}\n')
    with log.run_log(path, quiet=True):
        log.get().info("quiet event")
    assert err.getvalue() == ""
    assert [e["event"] for e in _events(path)] == ["an earlier run", "quiet event"]


def test_library_warnings_through_python_logging_become_run_events_at_their_level(tmp_path, stderr_as):
    stderr_as(io.StringIO())
    path = tmp_path / "run.jsonl"
    with log.run_log(path):
        library = logging.getLogger("accelerate.utils")
        library.info("not routed: below warnings")
        library.warning("[RANK 0] Removed shared tensor %s", "lm_head")
        library.log(logging.ERROR, "exactly an error")
        library.critical("beyond an error")
    assert [(e["event"], e["level"]) for e in _events(path)] == [
        ("[RANK 0] Removed shared tensor lm_head", "warning"),
        ("exactly an error", "error"),
        ("beyond an error", "error"),
    ]


def test_a_console_whose_reader_left_is_given_up_while_the_file_gets_every_event(tmp_path, stderr_as):
    gone = stderr_as(BrokenStream(terminal=False))
    path = tmp_path / "run.jsonl"
    with log.run_log(path):
        for n in range(3):
            log.get().info("event", n=n)
    assert gone.tries == 1  # tried once, then given up
    assert [e["n"] for e in _events(path)] == [0, 1, 2]
    log.configure()  # a new configuration tries the console again
    log.get().info("again")
    assert gone.tries == 2


def test_a_terminal_whose_reader_left_is_silenced_not_exited(tmp_path, stderr_as):
    gone = stderr_as(BrokenStream(terminal=True))
    path = tmp_path / "run.jsonl"
    with log.run_log(path):  # rich's own console would raise SystemExit here
        for n in range(3):
            log.get().info("event", n=n)
    assert gone.tries == 1 and log.console().quiet
    assert [e["n"] for e in _events(path)] == [0, 1, 2]


def test_a_long_log_line_in_a_terminal_is_not_wrapped_to_its_width(stderr_as):
    term = stderr_as(Terminal(), columns=40)
    log.configure()
    log.get().info("a long event " + "x" * 60, detail="y" * 30)
    lines = [line for line in term.getvalue().split("\n") if line]
    assert len(lines) == 1 and "x" * 60 in lines[0] and "y" * 30 in lines[0]
    assert "\x1b[" in lines[0]  # a terminal gets colours (a file or a pipe does not, see above)


def test_a_logger_made_before_a_run_takes_the_logging_current_when_it_logs(tmp_path, stderr_as):
    stderr_as(io.StringIO())
    earlier = LogCapture()
    structlog.configure(processors=[earlier])
    logger = log.get("afcot", stage="generate")
    path = tmp_path / "run.jsonl"
    with log.run_log(path):
        logger.info("inside")
    logger.info("outside")
    assert [e["event"] for e in _events(path)] == ["inside"]
    assert earlier.entries == [{"stage": "generate", "event": "outside", "log_level": "info"}]


def test_configuring_the_log_turns_off_the_libraries_bars_and_routes_their_warnings_once(monkeypatch, stderr_as):
    stderr_as(io.StringIO())
    calls = []
    hub = SimpleNamespace(disable_progress_bars=lambda: calls.append("hub bars"))
    transformers = SimpleNamespace(disable_progress_bar=lambda: calls.append("transformers bars"),
                                   set_verbosity_error=lambda: calls.append("transformers errors only"))
    monkeypatch.setitem(sys.modules, "huggingface_hub.utils", hub)
    monkeypatch.setitem(sys.modules, "transformers.utils.logging", transformers)
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "info")  # a user's own choice stays
    log.configure()
    log.configure()
    assert calls == ["hub bars", "transformers bars", "transformers errors only"] * 2
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1" and os.environ["TRANSFORMERS_VERBOSITY"] == "info"
    monkeypatch.delenv("TRANSFORMERS_VERBOSITY")
    log.configure()
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "error"  # for transformers imported later
    assert sum(isinstance(h, log._Routed) for h in logging.getLogger().handlers) == 1


# --- progress ---------------------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_a_bar_on_a_stream_that_is_not_a_terminal_prints_one_plain_line_at_the_end(stderr_as):
    err = stderr_as(io.StringIO(), columns=30)  # narrower than the line: it is not wrapped
    with capture_logs() as events, Bar("generate", 1010, enabled=True) as bar:
        bar.advance(ShardCounts(accepted=90, rejected=10))
        bar.advance(ShardCounts(accepted=5, failed=1), shards=2)
        assert err.getvalue() == ""  # nothing while it works
        assert bar._progress.tasks[0].completed == 106  # resumed shards move the bar
    assert err.getvalue() == "generate 106/1010  ✓95 ✗10 !1 (3 shards done before)\n"  # no rate: no work here
    assert [(e["event"], e["stage"], e["shards_skipped"], e["items_skipped"], e["items_done"]) for e in events] == [
        ("resumed", "generate", 3, 106, 0)]


def test_a_plain_bar_with_no_work_prints_its_name_as_given_and_zero_counts(stderr_as):
    err = stderr_as(io.StringIO())
    with Bar("mmau[test-mini]", 5, enabled=True) as bar:  # brackets are text, not rich markup
        assert dict(bar._progress.tasks[0].fields) == {"accepted": 0, "rejected": 0, "failed": 0, "rate": "",
                                                        "eta": "-:--:--", "resumed": ""}
    assert err.getvalue() == "mmau[test-mini] 0/5  ✓0 ✗0 !0\n"


def test_a_bar_in_a_terminal_shows_counts_rate_eta_verdicts_and_resumed_shards(monkeypatch, stderr_as):
    from .test_progress import Terminal as Screen  # replays what a terminal shows

    clock = Clock()
    monkeypatch.setattr(progress, "time", clock)
    term = stderr_as(Screen(), columns=140)
    with capture_logs(), Bar("generate", 4, enabled=True) as bar:
        clock.now += 1
        bar.record("accepted")
        bar.record("rejected")
        bar.advance(ShardCounts(accepted=1, failed=1))
    [line] = [line for line in term.screen() if line]
    assert re.fullmatch(r"generate ━{20,} 4/4 100% 2\.0 it/s \d:\d\d:\d\d ETA 0:00:00 ✓2 ✗1 !1 "
                        r"\(1 shards done before\)", line), line


def test_a_plain_bar_of_unknown_total_shows_a_question_mark_and_its_rate(stderr_as, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(progress, "time", clock)
    err = stderr_as(io.StringIO())
    with capture_logs() as events, Bar("train", None, enabled=True) as bar:
        clock.now += 2
        bar.record("accepted")
        bar.record("rejected")
        bar.record("failed")
    assert err.getvalue() == "train 3/? 1.5 it/s ✓1 ✗1 !1\n"
    assert events == []  # nothing resumed, nothing to say


def test_a_disabled_bar_prints_nothing(stderr_as):
    err = stderr_as(io.StringIO())
    with Bar("generate", 3, enabled=False) as bar:
        bar.record("accepted")
    assert err.getvalue() == ""


def _eta(clock, total: int | None, items: int, seconds: float) -> tuple[str, str, str]:
    """A bar of ``total`` that did ``items`` in ``seconds``: its eta, and the eta and rate fields it shows."""
    with Bar("generate", total, enabled=False) as bar:
        assert bar.eta() == "-:--:--" and bar.rate is None  # before the first item
        clock.now += seconds
        for _ in range(items):
            bar.record("accepted")
        fields = bar._progress.tasks[0].fields
        return bar.eta(), fields["eta"], fields["rate"]


def test_the_eta_is_the_work_left_at_this_process_rate_as_hours_minutes_seconds(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(progress, "time", clock)
    assert _eta(clock, 3725, 2, 2) == ("1:02:03", "1:02:03", "1.0 it/s")  # 3723 s left at 1 it/s
    assert _eta(clock, 14404, 2, 1) == ("2:00:01", "2:00:01", "2.0 it/s")  # 7201 s left at 2 it/s
    assert _eta(clock, 1, 1, 2) == ("0:00:00", "0:00:00", "0.5 it/s")  # done: nothing left, however slow
    assert _eta(clock, 1, 2, 4) == ("0:00:00", "0:00:00", "0.5 it/s")  # past the total: still nothing left
    assert _eta(clock, None, 1, 1) == ("-:--:--", "-:--:--", "1.0 it/s")  # no total, no eta
