"""Hugging Face ``datasets`` features of the WebDataset shards, derived from the :class:`Record` type.

``load_dataset("webdataset", data_files=..., features=shard_features())`` reads the shards with every
column typed (a field that is null in the first samples is still known), and leaves the audio as FLAC
bytes, so no audio codec is needed to load them; ``shard_features(audio_decoded=True)`` asks ``datasets``
to decode it (that needs its audio extra).
"""

from __future__ import annotations

import types
import typing
from typing import Any

import msgspec

from afcot_core.api import Record

_SCALARS = {str: "string", int: "int64", float: "float64", bool: "bool", bytes: "binary"}


def feature(hint: Any) -> Any:
    """The ``datasets`` feature of a type hint of the records."""
    import datasets

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        present = [a for a in args if a is not type(None)]
        if len(present) != 1:
            raise TypeError(f"no feature for the union {hint}")
        return feature(present[0])
    if origin is typing.Literal:
        return feature(type(args[0]))
    if origin is list:
        return datasets.List(feature(args[0]))
    if origin is tuple:
        if len(set(args)) != 1:
            raise TypeError(f"no feature for the mixed tuple {hint}")
        return datasets.List(feature(args[0]), length=len(args))
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        hints = typing.get_type_hints(hint)
        return {f.encode_name: feature(hints[f.name]) for f in msgspec.structs.fields(hint)}
    if hint in _SCALARS:
        return datasets.Value(_SCALARS[hint])
    raise TypeError(f"no feature for {hint}")


def shard_features(audio_decoded: bool = False) -> Any:
    """The columns of our shards: ``flac`` (audio), ``json`` (the Record), ``txt`` (the CoT target)."""
    import datasets

    return datasets.Features({
        "__key__": datasets.Value("string"),
        "__url__": datasets.Value("string"),
        "flac": datasets.Audio() if audio_decoded else datasets.Value("binary"),
        "json": feature(Record),
        "txt": datasets.Value("string"),
    })
