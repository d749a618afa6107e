"""``afcot inspect``: counts and a sample record for a run directory or a single shard."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

from afcot_core.api import BadInput, collect_stats, decode_record, iter_samples, read_markers


def read_shard(path: Path) -> dict[str, dict[str, bytes]]:
    """The samples of a WebDataset tar: key → {extension: bytes}, in file order."""
    try:
        return dict(iter_samples(path))
    except (tarfile.TarError, OSError) as exc:
        raise BadInput(f"{path}: not a readable tar shard ({exc})") from None


def _sample(shard: Path, samples: dict[str, dict[str, bytes]]) -> dict[str, Any] | None:
    if not samples:
        return None
    key, parts = next(iter(samples.items()))
    record = decode_record(parts.get("json", b"{}"), f"{shard}: {key}.json")
    return {"key": key, "files": sorted(parts), "text": parts.get("txt", b"").decode(errors="replace"),
            "question": record.get("item", {}).get("question"), "answer": record.get("item", {}).get("answer"),
            "strategy": record.get("strategy")}


def describe(path: Path) -> dict[str, Any]:
    if path.is_file():
        samples = read_shard(path)
        return {"shard": str(path), "samples": len(samples), "sample": _sample(path, samples)}
    if not path.is_dir():
        raise BadInput(f"{path}: no such run directory or shard")
    out: dict[str, Any] = {"run": str(path)}
    if (path / "compare.json").is_file() and not (path / "recipe.lock.toml").is_file():  # a recipe's variants
        import json

        doc = json.loads((path / "compare.json").read_text(encoding="utf-8"))
        return {**out, "variants": [row["variant"] for row in doc["variants"]], "compare": doc}
    lock = path / "recipe.lock.toml"
    if lock.exists():
        import tomllib

        out["fingerprint"] = tomllib.loads(lock.read_text()).get("fingerprint")
    gen = path / "generate" if (path / "generate").is_dir() else path
    markers = read_markers(gen)
    if not markers and not list(gen.glob("*.tar")):
        raise BadInput(f"{path}: no shards found (expected {gen}/shard-*.tar)")
    totals = {"accepted": 0, "rejected": 0, "failed": 0}
    for marker in markers:
        for key in totals:
            totals[key] += getattr(marker.counts, key)
    shards = sorted(gen.glob("shard-*.tar"))
    stats = collect_stats(gen)
    out.update(shards_done=len(markers), shards=len(shards), items=sum(totals.values()), **totals,
               reject_reasons=stats["total"]["reject_reasons"],
               sample=_sample(shards[0], read_shard(shards[0])) if shards else None, stats=stats)
    return out
