"""``afcot export``: a run's shards as AF-Think / AF3 training JSON or as AF2 manifests, with the audio files.

AF-Think / AF3: ``<out>/<name>.json`` (a list of ``{id, sound, duration, conversations}``) and
``<out>/audio/<key>.flac``. ``sound`` is the file's absolute path, so NVIDIA's loader (which opens it as
given) finds it from any working directory; ``--relative-to DIR`` writes it relative to ``DIR`` instead, the
folder the training job will run in. ``duration`` is measured from the audio. The human turn holds the question,
the options in ``--layout`` and, with CoT, the CoT suffix (docs/interop.md). AF2: ``<out>/<name>/<split>.json``
(``split_path`` = ``<name>/audio``, relative to ``<out>``, AF2's data root) and ``<out>/<name>/audio/<key>.flac``.
Without ``--cot`` the target is the plain answer: its text (``x``, as the judge reads it), or ``(B) x`` with
``--plain-target lettered``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

from afcot_core.api import (
    LAYOUTS,
    BadInput,
    atomic_write,
    inline_prompt,
    iter_samples,
    options_of,
    out_folder,
    plain_answer,
)
from afcot_io.formats import Conversation, af2_manifest, afthink_record


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
    parser.add_argument("--relative-to", metavar="DIR", default=None,
                        help="afthink: write 'sound' relative to DIR (the training job's working directory) "
                             "instead of absolute")
    parser.add_argument("--plain-target", choices=["answer", "lettered"], default="answer",
                        help="with --no-cot: the answer's text (default) or '(B) text' (train.plain_target)")
    parser.add_argument("--layout", choices=LAYOUTS, default="inline",
                        help="the human turn's layout of the options (docs/interop.md)")


def shards_of(source: Path) -> list[Path]:
    folder = source / "generate" if (source / "generate").is_dir() else source
    shards = sorted(folder.glob("shard-*.tar"))
    if not shards:
        raise BadInput(f"{source}: no shard-*.tar here or in {source}/generate")
    return shards


def duration_of(flac: bytes, where: str) -> float:
    """The length of encoded audio in seconds (read from its header); :class:`BadInput` names ``where``."""
    import soundfile as sf

    try:
        info = sf.info(io.BytesIO(flac))
    except (RuntimeError, ValueError) as exc:
        raise BadInput(f"{where}: the audio is unreadable ({exc})") from None
    return round(info.frames / info.samplerate, 3)


def conversations(shards: list[Path], cot: bool, audio_dir: Path, sound_prefix: str,
                  layout: str = "inline", lettered: bool = False) -> Iterator[Conversation]:
    """Every sample as a conversation; its audio is written to ``audio_dir/<key>.flac``."""
    audio_dir.mkdir(parents=True, exist_ok=True)
    for shard in shards:
        for key, parts in iter_samples(shard):
            where = f"{shard}: sample '{key}'"
            try:
                item = json.loads(parts["json"])["item"]
                target = (parts["txt"].decode("utf-8") if cot
                          else plain_answer(item.get("choices"), item["answer"], lettered))
                audio = parts["flac"]
            except (KeyError, ValueError) as exc:
                raise BadInput(f"{where} is unreadable ({exc})") from None
            (audio_dir / f"{key}.flac").write_bytes(audio)
            prompt = inline_prompt(item["question"], options_of(item.get("choices"), item["answer"]), cot, layout)
            yield Conversation(id=item["id"], sound=f"{sound_prefix}{key}.flac", turns=((prompt, target),),
                               duration=duration_of(audio, where))


def run(args: argparse.Namespace) -> int:
    out = out_folder(args.out)
    shards = shards_of(Path(args.source))
    doc: object
    if args.format == "afthink":
        audio_dir = (out / "audio").resolve()
        convs = list(conversations(shards, args.cot, audio_dir, "", args.layout, args.plain_target == "lettered"))
        base = Path(args.relative_to).resolve() if args.relative_to else None
        doc = [afthink_record(c, os.path.relpath(audio_dir / c.sound, base) if base else str(audio_dir / c.sound))
               for c in convs]
        path = out / f"{args.name}.json"
    else:
        if args.relative_to:
            raise BadInput("--relative-to: AF2 manifests name audio relative to their split_path")
        convs = list(conversations(shards, args.cot, out / args.name / "audio", "", args.layout,
                                   args.plain_target == "lettered"))
        doc = af2_manifest(convs, args.split, f"{args.name}/audio", args.task)
        path = out / args.name / f"{args.split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n",
                                                  encoding="utf-8"))
    print(json.dumps({"file": str(path), "records": len(convs), "format": args.format}))
    return 0
