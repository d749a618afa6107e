"""The dataset card of a generate folder: a Hugging Face style ``README.md`` with YAML metadata.

Written next to the shards at the end of the generate stage (and refreshed by every rerun): counts per
source and algorithm, the teachers, the hashes of the prompts that made the data, the license field
and how to load the shards.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

from afcot_core.api import atomic_write, collect_stats

#: the license field of a card when the recipe does not name one (the data inherits its sources' terms)
DEFAULT_LICENSE = "other"


def _lock(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "recipe.lock.toml"
    return tomllib.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _teachers(generate: dict[str, Any]) -> dict[str, str]:
    out = {}
    for role in ("alm", "llm"):
        table = generate.get(role) or {}
        if table:
            out[role] = f"{table.get('use', '?')}" + (f" ({table['model']})" if table.get("model") else "")
    return out


def _yaml(value: Any, indent: int = 0) -> list[str]:
    """A small YAML writer for the card's metadata (strings are JSON-quoted, which YAML reads)."""
    pad = " " * indent
    lines: list[str] = []
    for key, item in value.items():
        if isinstance(item, dict):
            lines += [f"{pad}{key}:", *_yaml(item, indent + 2)]
        elif isinstance(item, list):
            lines.append(f"{pad}{key}:")
            for element in item:
                if isinstance(element, dict):
                    first, *rest = _yaml(element, indent + 4)
                    lines += [f"{pad}  - {first.lstrip()}", *rest]
                else:
                    lines.append(f"{pad}  - {json.dumps(element, ensure_ascii=False)}")
        else:
            lines.append(f"{pad}{key}: {json.dumps(item, ensure_ascii=False)}")
    return lines


def card(generate_dir: Path, license: str = DEFAULT_LICENSE, stats: dict[str, Any] | None = None) -> str:
    """The card's text for ``generate_dir`` (its run's ``recipe.lock.toml`` one folder up, when present);
    ``stats``: the statistics of the folder (``stats.json``) when the caller has them (else collected here)."""
    lock = _lock(generate_dir.parent)
    recipe = lock.get("recipe", {})
    if stats is None:
        stats = collect_stats(generate_dir)
    rows = [{"source": r["source"] or "unknown", "algorithm": r["strategy"], "items": r["items"],
             "accepted": r["accepted"]} for r in stats["rows"]]
    afcot = {"recipe": recipe.get("run", {}).get("name", ""), "fingerprint": lock.get("fingerprint", ""),
             "version": lock.get("afcot", {}).get("version", ""), "accepted": stats["total"]["accepted"],
             "items": stats["total"]["items"], "counts": rows,
             "teachers": _teachers(recipe.get("generate", {})), "prompts": lock.get("prompts", {})}
    meta: dict[str, Any] = {
        "license": license,
        "task_categories": ["audio-text-to-text"],
        "tags": ["audio", "chain-of-thought", "afcot"],
        "size_categories": [_size(stats["total"]["accepted"])],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "shard-*.tar"}]}],
        "afcot": afcot,
    }
    table = ["| source | algorithm | items | accepted |", "|---|---|---:|---:|"]
    table += [f"| {r['source']} | {r['algorithm']} | {r['items']} | {r['accepted']} |" for r in rows]
    teachers = ", ".join(f"{role}: {name}" for role, name in afcot["teachers"].items()) or "not recorded"
    body = f"""# {afcot['recipe'] or generate_dir.name}: chain-of-thought audio QA

Chain-of-thought answers (`<SUMMARY>`, `<CAPTION>`, `<REASONING>`, `<CONCLUSION>`) to audio questions, made by afcot
{afcot['version']} with {teachers}. {stats['total']['accepted']} of {stats['total']['items']} items were
accepted.

{chr(10).join(table)}

## Files

WebDataset shards `shard-*.tar`: per sample `<key>.flac` (audio), `<key>.json` (the record: item, CoT, teacher
calls) and `<key>.txt` (the CoT target). `afcot export` writes AF-Think / AF3 training JSON and AF2 manifests.

```python
from datasets import load_dataset
ds = load_dataset("webdataset", data_files={{"train": "shard-*.tar"}}, split="train")
```

## License

`{license}`: the audio and the questions come from the sources named above; their terms apply.
"""
    return "---\n" + "\n".join(_yaml(meta)) + "\n---\n\n" + body


def _size(n: int) -> str:
    for bound, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < bound:
            return name
    return "1M<n<10M"


def write(generate_dir: Path, license: str = DEFAULT_LICENSE, stats: dict[str, Any] | None = None) -> Path:
    """Write ``generate_dir/README.md`` (atomically); its path. ``stats`` as for :func:`card`."""
    path = generate_dir / "README.md"
    text = card(generate_dir, license, stats)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), f".{os.getpid()}.tmp")  # ranks race
    return path
