"""The recipe reference is generated from the config types, complete, and never stale."""

import enum
from typing import Annotated, Literal

import msgspec
from afcot_devtools import reference

from afcot_core import cli
from afcot_core.teacher import Batching

from .conftest import ROOT

PAGE = ROOT / "docs" / "recipe-reference.md"


class _Base(msgspec.Struct):
    #: inherited meaning
    depth: int = 2


class _Example(_Base):
    #: a meaning written
    #: over two lines
    mode: Literal["a", "b"] = "a"
    plain: str | None = None
    listed: list[str] = msgspec.field(default_factory=lambda: ["x"])
    described: Annotated[float, msgspec.Meta(description="from Meta")] = 0.5
    needed: bool = msgspec.field(default=False)
    sub: Batching = Batching()


def test_fields_read_types_defaults_and_hash_colon_comments():
    rows = {f.name: f for f in reference.fields(_Example)}
    assert rows["mode"] == reference.Field("mode", '"a" | "b"', '"a"', "a meaning written over two lines")
    assert rows["depth"].meaning == "inherited meaning"
    assert (rows["plain"].type, rows["plain"].default, rows["plain"].meaning) == ("str | None", "unset", "")
    assert rows["listed"].default == '["x"]'
    assert (rows["described"].type, rows["described"].meaning) == ("float", "from Meta")
    assert rows["sub"].type == "table (Batching)"
    assert rows["sub"].default == "{max_batch = 16, max_wait_ms = 5.0, max_concurrency = 1}"
    assert reference.nested([_Example]) == [Batching]


def test_every_built_in_config_field_has_a_meaning(plugins):
    assert reference.missing_meanings(plugins) == []


def test_every_role_and_built_in_component_is_documented(plugins):
    text = reference.render(plugins)
    for registration in reference.builtin_registrations(plugins):
        assert f"### `{registration.name}`" in text
    assert "### `[run]`" in text and "### `[generate]`" in text and "### `Batching`" in text


def test_the_committed_page_is_current(plugins):
    """Regenerate with: afcot docs recipes"""
    assert PAGE.read_text(encoding="utf-8") == reference.render(plugins), "stale: run `afcot docs recipes`"


def test_cli_writes_the_page_and_refuses_a_folder(tmp_path, capsys):
    out = tmp_path / "ref.md"
    assert cli.main(["docs", "recipes", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == PAGE.read_text(encoding="utf-8")
    assert cli.main(["docs", "recipes", "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


class _Empty(msgspec.Struct):
    pass


class _Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class _Odd(msgspec.Struct):
    #: a | b, over ``two``
    level: Literal[1, 2] = 1
    colour: _Colour = _Colour.RED


def test_a_table_of_no_keys_enums_number_literals_and_escaped_meanings():
    assert reference._table(_Empty) == ["No keys besides `use`.", ""]
    assert reference._table(_Odd) == ["| key | type | default | meaning |", "|---|---|---|---|",
                                      "| `level` | `1 \\| 2` | `1` | a \\| b, over `two` |",
                                      '| `colour` | `"red" \\| "blue"` | `"red"` |  |', ""]
    assert reference.type_name(Literal["x", 3]) == '"x" | 3'
    assert reference._escape("one\ntwo") == "one two"


def test_the_page_says_which_components_it_documents(plugins):
    assert "from the config types of the built-in components; do not edit by" in reference.render(plugins)
    everything = reference.render(plugins, everything=True)
    assert "from the config types of every loaded component; do not edit by" in everything
    for registration in reference.builtin_registrations(plugins, True):
        assert f"### `{registration.name}`" in everything
