"""The public face of afcot for plugin authors: everything a plugin may import, from this one module.

``from afcot_core.api import hookimpl, Teacher, Request, BadInput`` ... Names are resolved on first use, so
importing this module stays as cheap as importing the hook marker (``afcot --help`` loads every plugin).
Within one ``HOOK_API`` these names keep their meaning; a change that breaks them bumps ``HOOK_API``
(docs/writing-a-plugin.md). Every other module of ``afcot_core`` is internal and may move.
"""

# ruff: noqa: F401  (the imports for type checkers below are the re-exports)
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from afcot_core import HOOK_API, __version__
from afcot_core.hookspecs import hookimpl

#: module → the names it provides here (``public:internal`` where the name differs)
_EXPORTS: dict[str, tuple[str, ...]] = {
    "errors": ("AfcotError", "BadInput", "Rejected", "TeacherError", "RunIncomplete"),
    "records": ("AudioRef", "CoT", "Item", "Kind", "Record", "SampleKeys", "Verdict", "item_without_audio_bytes",
                "sample_key"),
    "template": ("COT_SUFFIX", "LAYOUTS", "OPTION_LETTERS", "YES_NO", "TemplateError", "answer_in_choices",
                 "extract_conclusion", "format_question", "inline_prompt", "options_of", "parse_strict",
                 "plain_answer", "remove_option", "render", "repair_prefix"),
    "teacher": ("Batching", "Reply", "Request", "RetryPolicy", "Sampling", "Teacher"),
    "batcher": ("EngineDead",),
    "protocols": ("Evidence", "ItemContext", "Sink", "Source", "Strategy", "Validator", "reject_reason"),
    "negatives": ("AsyncNegativeSampler", "NegativeSampler", "Seed", "make_rng"),
    "audio": ("AudioError", "audio_ref_from_path", "audio_ref_from_wave", "flac_bytes", "load_audio:load",
              "load_audio_at:load_at", "resample"),
    "weights": ("expand", "hf_cache_dir", "is_hub_id", "missing_packages", "missing_run_output", "missing_weights",
                "resolve"),
    "jsonreply": ("ReplyError", "parse_json_reply"),
    "files": ("json_objects", "read_json"),
    "shards": ("ShardCounts", "atomic_write", "iter_samples", "read_markers"),
    "stats": ("collect_stats:collect", "decode_record"),
    "digest": ("digest",),
    "recipe": ("Component", "MustExist", "RunSection", "apply_overrides", "component", "convert"),
    "registry": ("ROLES", "NoConfig", "Registration", "suggest"),
    "plugins": ("GROUP", "HOOK_OF_ROLE", "Plugins", "is_builtin", "load_plugins:load"),
    "catalog": ("recipe_names:names", "recipe_path:path"),
    "cli": ("build_parser", "out_folder"),
    "progress": ("Bar",),
    "log": ("get_logger:get", "configure_log:configure"),
}
_WHERE: dict[str, tuple[str, str]] = {}
for _module, _names in _EXPORTS.items():
    for _name in _names:
        _public, _, _internal = _name.partition(":")
        _WHERE[_public] = (_module, _internal or _public)

__all__ = ["HOOK_API", "__version__", "default_plugins", "hookimpl", *_WHERE]


def default_plugins() -> Plugins:
    """The plugins of this process (loaded once): reach another plugin's component by name through
    ``default_plugins().registry(role).get(name)``, never by importing it."""
    from afcot_core import plugins

    return plugins.default()


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'afcot_core.api' has no attribute '{name}'")
    module, internal = _WHERE[name]
    value = getattr(importlib.import_module(f"afcot_core.{module}"), internal)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # the same names, for type checkers
    from afcot_core.audio import AudioError, audio_ref_from_path, audio_ref_from_wave, flac_bytes, resample
    from afcot_core.audio import load as load_audio
    from afcot_core.audio import load_at as load_audio_at
    from afcot_core.batcher import EngineDead
    from afcot_core.catalog import names as recipe_names
    from afcot_core.catalog import path as recipe_path
    from afcot_core.cli import build_parser, out_folder
    from afcot_core.digest import digest
    from afcot_core.errors import AfcotError, BadInput, Rejected, RunIncomplete, TeacherError
    from afcot_core.files import json_objects, read_json
    from afcot_core.jsonreply import ReplyError, parse_json_reply
    from afcot_core.log import configure as configure_log
    from afcot_core.log import get as get_logger
    from afcot_core.negatives import AsyncNegativeSampler, NegativeSampler, Seed, make_rng
    from afcot_core.plugins import GROUP, HOOK_OF_ROLE, Plugins, is_builtin
    from afcot_core.plugins import load as load_plugins
    from afcot_core.progress import Bar
    from afcot_core.protocols import Evidence, ItemContext, Sink, Source, Strategy, Validator, reject_reason
    from afcot_core.recipe import Component, MustExist, RunSection, apply_overrides, component, convert
    from afcot_core.records import (
        AudioRef,
        CoT,
        Item,
        Kind,
        Record,
        SampleKeys,
        Verdict,
        item_without_audio_bytes,
        sample_key,
    )
    from afcot_core.registry import ROLES, NoConfig, Registration, suggest
    from afcot_core.shards import ShardCounts, atomic_write, iter_samples, read_markers
    from afcot_core.stats import collect as collect_stats
    from afcot_core.stats import decode_record
    from afcot_core.teacher import Batching, Reply, Request, RetryPolicy, Sampling, Teacher
    from afcot_core.template import (
        COT_SUFFIX,
        LAYOUTS,
        OPTION_LETTERS,
        YES_NO,
        TemplateError,
        answer_in_choices,
        extract_conclusion,
        format_question,
        inline_prompt,
        options_of,
        parse_strict,
        plain_answer,
        remove_option,
        render,
        repair_prefix,
    )
    from afcot_core.weights import (
        expand,
        hf_cache_dir,
        is_hub_id,
        missing_packages,
        missing_run_output,
        missing_weights,
        resolve,
    )
