"""Run statistics of the generate stage: ``generate/stats.json`` (``stats.md``, the same as a table for people, is
written from it by the devtools plugin when the stage has finished).

Computed from what the shards hold (accepted records in the shards, rejected and failed ones in the ``rejects-*.jsonl``
files), so the figures are those of every item done so far, by every rank, and stay right after a resume. Per strategy
and source: items, accepted, each reject reason code, the codes noted on the way (fallbacks), mean sub-questions or
rounds of the accepted chains, teacher calls and tokens per accepted sample, and the causality rejection rate (rejects
per check made). Tokens are estimated as characters / 4 of every prompt and reply (teachers do not report token counts
to the records). Cache hits are not part of a record; the ones of the run that wrote the files are given as ``run``.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from afcot_core.errors import BadInput
from afcot_core.shards import atomic_write, iter_samples

#: how tokens are counted when the teacher does not say
TOKEN_ESTIMATE = "characters / 4 of every prompt and reply"


def reason_code(reason: str | None) -> str:
    """The code of a reject reason: the text before its first colon (``gate/no-step-by-step: ...``)."""
    return (reason or "unknown").split(":", 1)[0].strip() or "unknown"


def _records(generate_dir: Path) -> Iterator[dict[str, Any]]:
    for shard in sorted(generate_dir.glob("shard-*.tar")):
        try:
            for key, parts in iter_samples(shard):
                if "json" in parts:
                    yield decode_record(parts["json"], f"{shard}: sample {key}")
        except (tarfile.TarError, OSError) as exc:
            raise BadInput(f"{shard}: not a readable tar shard ({exc})") from None
    for rejects in sorted(generate_dir.glob("rejects-*.jsonl")):
        for number, line in enumerate(rejects.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                yield decode_record(line, f"{rejects}:{number}")


def decode_record(text: str | bytes, where: str) -> dict[str, Any]:
    """A stored record (a JSON object); :class:`BadInput` naming ``where`` otherwise."""
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        raise BadInput(f"{where}: not a JSON record")
    for key, kind, name in (("item", dict, "object"), ("chain", list, "array"), ("codes", list, "array"),
                            ("trace", list, "array of objects")):
        value = record.get(key) or kind()
        if not isinstance(value, kind) or (key == "trace" and not all(isinstance(call, dict) for call in value)):
            raise BadInput(f"{where}: '{key}' is not a JSON {name}")
    return record


class _Group:
    def __init__(self) -> None:
        self.items = self.accepted = self.rejected = self.failed = 0
        self.reasons: Counter[str] = Counter()
        self.codes: Counter[str] = Counter()
        self.steps = 0  # sub-questions or rounds of accepted chains
        self.calls: Counter[str] = Counter()
        self.chars = 0

    def add(self, record: dict[str, Any]) -> None:
        self.items += 1
        verdict = record.get("verdict")
        if verdict == "accepted":
            self.accepted += 1
            self.steps += max(len(record.get("chain") or []) - 1, 0)
        elif verdict == "failed":
            self.failed += 1
        else:
            self.rejected += 1
            self.reasons[reason_code(record.get("reason"))] += 1
        self.codes.update(record.get("codes") or [])
        for call in record.get("trace") or []:
            self.calls[call.get("role", "?")] += 1
            self.chars += len(call.get("prompt", "")) + len(call.get("reply", ""))

    def summary(self) -> dict[str, Any]:
        per = self.accepted or None

        def ratio(n: float) -> float | None:
            return round(n / per, 2) if per else None

        causality, checked = self.reasons.get("causality", 0), self.codes.get("causality/checked", 0)
        return {
            "items": self.items, "accepted": self.accepted, "rejected": self.rejected, "failed": self.failed,
            "yield": round(self.accepted / self.items, 4) if self.items else 0.0,
            "reject_reasons": dict(self.reasons.most_common()),
            "codes": dict(self.codes.most_common()),
            "mean_steps": ratio(self.steps),
            "calls_per_accepted": {"alm": ratio(self.calls["alm"]), "llm": ratio(self.calls["llm"]),
                                   "all": ratio(sum(self.calls.values()))},
            "tokens_per_accepted": ratio(self.chars / 4),
            "causality_rejection_rate": round(causality / checked, 4) if checked else None,
        }


def collect(generate_dir: Path | str) -> dict[str, Any]:
    """The statistics of the records under ``generate_dir``: totals and one row per (strategy, source)."""
    root = Path(generate_dir)
    groups: dict[tuple[str, str], _Group] = defaultdict(_Group)
    total = _Group()
    for record in _records(root):
        key = (record.get("strategy") or "none", (record.get("item") or {}).get("source") or "")
        groups[key].add(record)
        total.add(record)
    rows = [{"strategy": s, "source": src, **g.summary()} for (s, src), g in sorted(groups.items())]
    return {"total": total.summary(), "rows": rows, "token_estimate": TOKEN_ESTIMATE}


def write(generate_dir: Path | str, run: dict[str, int] | None = None) -> dict[str, Any]:
    """Collect the statistics and write ``stats.json`` next to the shards."""
    root = Path(generate_dir)
    stats = collect(root) | ({} if run is None else {"run": run})
    suffix = f".{os.getpid()}.tmp"  # ranks may write at the same time: each its own temporary file
    atomic_write(root / "stats.json", lambda tmp: tmp.write_text(json.dumps(stats, indent=2) + "\n"), suffix)
    return stats
