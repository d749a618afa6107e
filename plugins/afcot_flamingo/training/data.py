"""The training data path: sources → per-slot split → seeded shuffle → weighted blend → encode → batches.

A *slot* is one DataLoader worker of one rank (``rank * workers + worker`` of ``world * workers``).
Each source's samples are numbered in a seeded per-epoch order and sample ``i`` belongs to slot
``i % slots``, so ranks and workers get an even split of samples (not of shards) and every slot
sees a different part. Sources repeat epoch after epoch (a new order and shuffle each time), so the
stream never ends: the loop decides how many steps to take, and every rank agrees on it.

Two choices belong to the student that owns the plan's ``encode`` (:func:`student_reading`): how its audio is
read (declared on ``encode`` with :func:`reads_audio`; default :func:`read_wave`, the mean of the channels) and
the options' layout of shard samples' prompts (its config's ``prompt_layout``, docs/interop.md).
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from afcot_io.formats import Conversation, read_af2_manifest, read_afthink

from afcot_core.api import BadInput, expand, inline_prompt, iter_samples, options_of, plain_answer
from afcot_flamingo.config import DataSource
from afcot_flamingo.training.student import IGNORE, SAMPLE_RATE, SEQUENCE_KEYS, Example

#: a sample before decoding: cheap to keep in a shuffle buffer (bytes or a path, no decoded audio)
Raw = Any
#: ``read(encoded bytes or file, where)``: the 16 kHz mono float32 wave a student trains on
WaveReader = Callable[[bytes | Path, str], np.ndarray]
F = TypeVar("F", bound=Callable[..., Any])


def read_wave(data: bytes | Path, where: str) -> np.ndarray:
    """16 kHz mono float32 from encoded bytes or a file; :class:`BadInput` names ``where``."""
    import soundfile as sf

    from afcot_core.api import resample

    try:
        wave, sr = sf.read(io.BytesIO(data) if isinstance(data, bytes) else str(data), dtype="float32",
                           always_2d=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise BadInput(f"{where}: audio is unreadable ({exc})") from None
    return resample(wave.mean(axis=1), sr, SAMPLE_RATE).astype(np.float32)


def reads_audio(reader: WaveReader) -> Callable[[F], F]:
    """Declares on a student's ``encode`` how the data path reads its examples' audio (instead of :func:`read_wave`)."""
    def mark(encode: F) -> F:
        encode.wave_reader = reader  # type: ignore[attr-defined]
        return encode
    return mark


def student_reading(encode: Callable[..., Any]) -> tuple[WaveReader, str]:
    """The wave reader declared on ``encode`` and the ``prompt_layout`` of its student's config (every student
    keeps its settings as ``config``); :func:`read_wave` and ``inline`` when they declare none."""
    config = getattr(getattr(encode, "__self__", None), "config", None)
    return getattr(encode, "wave_reader", read_wave), getattr(config, "prompt_layout", "inline")


#: the prompt of a caption target (``plain_target = "caption"``, the perception stage)
CAPTION_PROMPT = "Describe the sound."


class ShardSource:
    """A folder of WebDataset shards written by the generate stage (``shard-*.tar``)."""

    def __init__(self, folder: Path, name: str, cot: bool, plain: str = "answer") -> None:
        self.folder, self.name, self.cot, self.plain = folder, name, cot, plain
        self.shards = sorted(folder.glob("shard-*.tar"))
        if not self.shards:
            raise BadInput(f"[train] no shards in {folder} (run the generate stage first, or set train.data)")
        self._size: int | None = None

    def __len__(self) -> int:
        """The samples in the shards, counted once (the loop, ``rank_share`` and every worker ask for it)."""
        if self._size is None:
            total = 0
            for shard in self.shards:
                with tarfile.open(shard, mode="r:") as tar:
                    total += sum(1 for m in tar.getmembers() if m.name.endswith(".json"))
            self._size = total
        return self._size

    def raws(self, rng: np.random.Generator) -> Iterator[Raw]:
        for i in rng.permutation(len(self.shards)):
            for key, parts in iter_samples(self.shards[i]):
                yield self.shards[i], key, parts

    def decode(self, raw: Raw, read: WaveReader = read_wave, layout: str = "inline") -> Example:
        """The sample with its audio read by ``read`` and its options laid out in ``layout``."""
        shard, key, parts = raw
        where = f"{shard}: sample '{key}'"
        try:
            doc = json.loads(parts["json"])
            item, audio = doc["item"], parts["flac"]
            if self.cot:
                target = parts["txt"].decode("utf-8")
            elif self.plain == "caption":
                target = doc["cot"]["caption"]
            else:
                target = plain_answer(item.get("choices"), item["answer"], self.plain == "lettered")
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInput(f"{where} is unreadable ({type(exc).__name__}: {exc})") from None
        if not self.cot and self.plain == "caption":
            return Example(read(audio, where), ((CAPTION_PROMPT, target),), self.name, key)
        prompt = inline_prompt(item["question"], options_of(item.get("choices"), item["answer"]), self.cot, layout)
        return Example(read(audio, where), ((prompt, target),), self.name, key)


class ConversationSource:
    """AF-Think / AF3 training JSON or an AF2 manifest: conversations with audio under a root folder."""

    def __init__(self, path: Path, kind: str, audio_root: str, name: str) -> None:
        if not path.is_file():
            raise BadInput(f"[train] {kind} file not found: {path}")
        self.name = name
        if kind == "af2":
            folder, self.items = read_af2_manifest(path)
            # AF2's data root holds the manifest folders ({Name-Task}/{split}.json): the manifest's grandparent
            self.root = (Path(expand(audio_root)).expanduser() if audio_root else path.parent.parent) / folder
        else:
            self.items = read_afthink(path)
            self.root = Path(expand(audio_root)).expanduser() if audio_root else path.parent
        missing = [c.sound for c in self.items if not (self.root / c.sound).is_file()]
        if missing:
            raise BadInput(f"[train] {path}: {len(missing)} audio file(s) not found under {self.root} "
                           f"(first: {missing[0]}; set audio_root)")

    def __len__(self) -> int:
        return len(self.items)

    def raws(self, rng: np.random.Generator) -> Iterator[Raw]:
        return iter(self.items)

    def decode(self, raw: Conversation, read: WaveReader = read_wave, layout: str = "inline") -> Example:
        """The record with its audio read by ``read``; its prompts are the file's own (``layout`` is not used)."""
        return Example(read(self.root / raw.sound, f"{self.name}: record '{raw.id}'"), raw.turns, self.name, raw.id)


Source = ShardSource | ConversationSource


def open_sources(specs: list[DataSource], default: Path, cot: bool,
                 plain: str = "answer") -> list[tuple[Source, float]]:
    """The configured sources with their weights (one shard folder ``default`` when none is configured); shards
    give CoT targets with ``cot`` (a source's own ``cot`` wins), else the ``plain`` target (``train.plain_target``:
    the answer, ``(B) x`` lettered, or the CoT's caption)."""
    if not specs:
        return [(ShardSource(default, default.name or "shards", cot, plain), 1.0)]
    out: list[tuple[Source, float]] = []
    for spec in specs:
        path = Path(expand(spec.path)).expanduser()
        name = spec.name or path.stem
        own = cot if spec.cot is None else spec.cot
        source: Source = (ShardSource(path, name, own, plain) if spec.kind == "shards"
                          else ConversationSource(path, spec.kind, spec.audio_root, name))
        out.append((source, spec.weight))
    return out


def share(n: int, slot: int, slots: int) -> int:
    """How many of ``n`` samples numbered 0.. belong to ``slot`` (sample ``i`` goes to ``i % slots``)."""
    return n // slots + int(slot < n % slots)


def shuffled(items: Iterator[Raw], size: int, rng: np.random.Generator) -> Iterator[Raw]:
    """``items`` through a shuffle buffer of ``size`` (0 or 1: unchanged order)."""
    if size <= 1:
        yield from items
        return
    buffer: list[Raw] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        j = int(rng.integers(size))
        yield buffer[j]
        buffer[j] = item
    rng.shuffle(buffer)  # type: ignore[arg-type]
    yield from buffer


def epochs_of(source: Source, seed: int, index: int, slot: int, slots: int, buffer: int) -> Iterator[Raw]:
    """The raw samples of ``slot``, epoch after epoch, each epoch in a new seeded order."""
    for epoch in count():
        order = np.random.default_rng([seed, index, epoch])  # the same on every slot: the split stays disjoint
        mine = (raw for i, raw in enumerate(source.raws(order)) if i % slots == slot)
        yield from shuffled(mine, buffer, np.random.default_rng([seed, index, epoch, slot, 1]))


def blend(weights: list[float], rng: np.random.Generator) -> Iterator[int]:
    """Source indices drawn with probability proportional to ``weights``, forever."""
    p = np.asarray(weights, dtype=float) / sum(weights)
    while True:
        yield from rng.choice(len(p), size=1024, p=p).tolist()


@dataclass
class DataStats:
    """What the data path did since the last batch: samples used, truncated, dropped; per source."""

    samples: int = 0
    tokens: int = 0
    truncated: int = 0
    dropped: int = 0
    sources: dict[str, int] = field(default_factory=dict)


def fit(encoded: dict[str, Any], max_length: int, overlong: str) -> tuple[dict[str, Any] | None, bool]:
    """``encoded`` within ``max_length`` tokens: unchanged, truncated (True), or None when it must be dropped."""
    n = int(encoded["input_ids"].shape[-1])
    if n <= max_length:
        return encoded, False
    if overlong == "drop":
        return None, False
    cut = {k: (v[:max_length] if k in SEQUENCE_KEYS else v) for k, v in encoded.items()}
    if not bool((cut["labels"] != IGNORE).any()):
        return None, False  # nothing of the target left to learn from
    return cut, True


@dataclass
class StreamPlan:
    """Everything one rank's stream needs; picklable for DataLoader workers."""

    sources: list[tuple[Source, float]]
    encode: Callable[[Example], dict[str, Any]]
    collate: Callable[[list[dict[str, Any]]], dict[str, Any]]
    batch_size: int
    max_length: int
    overlong: str
    seed: int
    rank: int
    world: int
    workers: int
    shuffle_buffer: int
    #: batches of this rank already trained on (resume): they are drawn again but not collated
    skip: int = 0


def worker_batches(plan: StreamPlan, worker: int) -> Iterator[tuple[dict[str, Any], DataStats]]:
    """The batches of one worker of one rank: (collated batch, what the data path did for it)."""
    slots, slot = plan.world * max(1, plan.workers), plan.rank * max(1, plan.workers) + worker
    sizes = [len(s) for s, _ in plan.sources]
    live = [i for i, (_, w) in enumerate(plan.sources) if w > 0 and share(sizes[i], slot, slots) > 0]
    if not live:
        raise BadInput(f"[train] rank {plan.rank} has no training sample: {sum(sizes)} sample(s) in all for "
                       f"{plan.world} rank(s) x {max(1, plan.workers)} worker(s)")
    streams = {i: epochs_of(plan.sources[i][0], plan.seed, i, slot, slots, plan.shuffle_buffer) for i in live}
    picks = blend([plan.sources[i][1] for i in live], np.random.default_rng([plan.seed, slot, 2]))
    stride = max(1, plan.workers)
    skip = (plan.skip - worker + stride - 1) // stride if plan.skip > worker else 0
    read, layout = student_reading(plan.encode)
    stats, batch, tried = DataStats(), [], 0
    for pick in picks:
        source = plan.sources[live[pick]][0]
        example = source.decode(next(streams[live[pick]]), read, layout)
        encoded, truncated = fit(plan.encode(example), plan.max_length, plan.overlong)
        tried += 1
        if encoded is None:
            stats.dropped += 1
            if stats.samples == 0 and tried >= 2 * sum(share(sizes[i], slot, slots) for i in live) + 16:
                raise BadInput(f"[train] rank {plan.rank}: no usable training sample (all longer than max_length "
                               f"{plan.max_length}; raise it or set overlong = \"truncate\")")
            continue
        stats.truncated += int(truncated)
        stats.samples += 1
        stats.tokens += int(encoded["attention_mask"].sum())
        stats.sources[source.name] = stats.sources.get(source.name, 0) + 1
        batch.append(encoded)
        if len(batch) == plan.batch_size:
            if skip:
                skip -= 1
            else:
                yield plan.collate(batch), stats
            stats, batch = DataStats(), []


def rank_share(sources: list[tuple[Source, float]], rank: int, world: int) -> int:
    """The samples of ``rank`` over all weighted sources (0: the rank has nothing to train on)."""
    return sum(share(len(s), rank, world) for s, w in sources if w > 0)
