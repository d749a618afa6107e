"""``afcot export``: a run's shards as AF-Think / AF3 training JSON or as AF2 manifests, with the audio files.

AF-Think / AF3: ``<out>/<name>.json`` (a list of ``{id, sound, duration, conversations}``; the human turn
holds the question, the options inline and, with CoT, the CoT suffix) and ``<out>/audio/<key>.flac``.
AF2: ``<out>/<name>/<split>.json`` (``split_path`` = ``<name>/audio``, relative to ``<out>``, AF2's data
root) and ``<out>/<name>/audio/<key>.flac``. Without ``--cot`` the target is the plain answer (``(B) x``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

from afcot_core.benchmark import inline_prompt, options_of, plain_answer
from afcot_core.errors import BadInput
from afcot_core.formats import Conversation, af2_manifest, afthink_record
from afcot_core.shards import atomic_write, iter_samples


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="a run folder (its generate/ shards) or a folder of shard-*.tar")
    parser.add_argument("--format", choices=["afthink", "af2"], default="afthink",
                        help="afthink: AF-Think / AF3 training JSON; af2: an AF2 manifest")
    parser.add_argument("--out", required=True, help="the folder to write into")
    parser.add_argument("--name", default="afcot", help="file (afthink) or dataset folder (af2) name")
    parser.add_argument("--split", default="train", help="AF2 split name")
    parser.add_argument("--task", default="AF-CoT", help="AF2 flamingo_task")
    parser.add_argument("--cot", action=argparse.BooleanOptionalAction, default=True,
                        help="CoT targets with the CoT suffix in the prompt (default), or plain answers")


def shards_of(source: Path) -> list[Path]:
    folder = source / "generate" if (source / "generate").is_dir() else source
    shards = sorted(folder.glob("shard-*.tar"))
    if not shards:
        raise BadInput(f"{source}: no shard-*.tar here or in {source}/generate")
    return shards


def conversations(shards: list[Path], cot: bool, audio_dir: Path, sound_prefix: str) -> Iterator[Conversation]:
    """Every sample as a conversation; its audio is written to ``audio_dir/<key>.flac``."""
    audio_dir.mkdir(parents=True, exist_ok=True)
    for shard in shards:
        for key, parts in iter_samples(shard):
            try:
                item = json.loads(parts["json"])["item"]
                target = parts["txt"].decode("utf-8") if cot else plain_answer(item.get("choices"), item["answer"])
                audio = parts["flac"]
            except (KeyError, ValueError) as exc:
                raise BadInput(f"{shard}: sample '{key}' is unreadable ({exc})") from None
            (audio_dir / f"{key}.flac").write_bytes(audio)
            prompt = inline_prompt(item["question"], options_of(item.get("choices"), item["answer"]), cot)
            yield Conversation(id=item["id"], sound=f"{sound_prefix}{key}.flac", turns=((prompt, target),),
                               duration=float(item.get("audio", {}).get("duration") or 0.0))


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    shards = shards_of(Path(args.source))
    doc: object
    if args.format == "afthink":
        convs = list(conversations(shards, args.cot, out / "audio", "audio/"))
        doc = [afthink_record(c) for c in convs]
        path = out / f"{args.name}.json"
    else:
        convs = list(conversations(shards, args.cot, out / args.name / "audio", ""))
        doc = af2_manifest(convs, args.split, f"{args.name}/audio", args.task)
        path = out / args.name / f"{args.split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n",
                                                  encoding="utf-8"))
    print(json.dumps({"file": str(path), "records": len(convs), "format": args.format}))
    return 0
