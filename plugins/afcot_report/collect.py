"""What a run directory says about itself, read for the report: lock, yields, samples, losses, benchmarks."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from afcot_core.api import BadInput, Record, collect_stats, iter_samples


@dataclass
class Sample:
    """A record to show, with its audio (encoded bytes) when the shard holds it."""

    record: Record
    audio: bytes | None = None
    audio_type: str = "audio/flac"


@dataclass
class Benchmark:
    """One evaluated benchmark: its Markdown report and its plots (PNG bytes by name)."""

    name: str
    markdown: str
    plots: dict[str, bytes] = field(default_factory=dict)


@dataclass
class RunView:
    """Everything the report page shows; ``stats`` is :func:`afcot_core.stats.collect` of the generate folder."""

    root: Path
    name: str
    fingerprint: str
    lock: str
    stats: dict[str, Any] | None
    accepted: list[Sample]
    rejected: list[Sample]
    losses: list[tuple[int, float]]
    benchmarks: list[Benchmark]


def _samples(generate: Path, count: int) -> tuple[list[Sample], list[Sample]]:
    """The first ``count`` accepted records (with their audio) and the first ``count`` rejected or failed ones."""
    accepted: list[Sample] = []
    rejected: list[Sample] = []
    for shard in sorted(generate.glob("shard-*.tar")):
        if len(accepted) >= count:
            break
        for _, parts in iter_samples(shard):
            if len(accepted) >= count:
                break
            if "json" in parts:
                ext = next((e for e in ("flac", "wav", "mp3") if e in parts), None)
                record = msgspec.json.decode(parts["json"], type=Record)
                accepted.append(Sample(record, parts.get(ext) if ext else None, f"audio/{ext or 'flac'}"))
    for rejects in sorted(generate.glob("rejects-*.jsonl")):
        for n, line in enumerate(rejects.read_text(encoding="utf-8").splitlines(), 1):
            if len(rejected) >= count:
                return accepted, rejected
            if line.strip():
                try:
                    rejected.append(Sample(msgspec.json.decode(line, type=Record)))
                except msgspec.DecodeError as exc:
                    raise BadInput(f"{rejects}:{n}: not a record: {exc}") from None
    return accepted, rejected


def _losses(root: Path) -> list[tuple[int, float]]:
    """Training loss by step: ``train/metrics.jsonl`` (one line per optimiser step), else the run log's
    ``train step`` events; the last value of a step wins (a resumed run logs its steps again)."""
    metrics = root / "train" / "metrics.jsonl"
    log = root / "logs" / "run.jsonl"
    source, wanted = (metrics, None) if metrics.is_file() else (log, "train step")
    by_step: dict[int, float] = {}
    if source.is_file():
        for line in source.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line of a killed run
            if isinstance(row, dict) and (wanted is None or row.get("event") == wanted) and "loss" in row:
                by_step[int(row["step"])] = float(row["loss"])
    return sorted(by_step.items())


def _benchmarks(root: Path) -> list[Benchmark]:
    found = []
    for folder in sorted(p for p in (root / "evaluate").glob("*") if p.is_dir()):
        report = folder / "report.md"
        if not report.is_file():
            continue
        plots = {p.stem: p.read_bytes() for p in sorted(folder.glob("plots/*.png"))}
        found.append(Benchmark(folder.name, report.read_text(encoding="utf-8"), plots))
    return found


def collect(root: Path, samples: int = 3) -> RunView:
    """Read the run directory ``root``; :class:`BadInput` if it is not one."""
    lock_path = root / "recipe.lock.toml"
    if not root.is_dir():
        raise BadInput(f"{root}: no such run directory")
    if not lock_path.is_file():
        raise BadInput(f"{root}: not a run directory (no recipe.lock.toml)")
    lock = lock_path.read_text(encoding="utf-8")
    try:
        doc: dict[str, Any] = tomllib.loads(lock)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{lock_path}: not valid TOML: {exc}") from None
    name = str(doc.get("recipe", {}).get("run", {}).get("name", root.name))
    generate = root / "generate"
    has_records = any(generate.glob("shard-*.tar")) or any(generate.glob("rejects-*.jsonl"))
    try:
        stats = collect_stats(generate) if has_records else None
    except (ValueError, KeyError, TypeError) as exc:
        raise BadInput(f"{generate}: unreadable records: {exc}") from None
    accepted, rejected = _samples(generate, samples)
    return RunView(root, name, str(doc.get("fingerprint", "")), lock, stats, accepted, rejected, _losses(root),
                   _benchmarks(root))
