"""The embedded sound world: a class hierarchy (``ontology.json``), a synthesiser per leaf class,
and AQA and classification items whose answers come from the synthesis parameters."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

import numpy as np

from afcot_core.api import NegativeSampler
from afcot_embedded.grammar import VALUES, Clause, join_clauses, join_statements

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class ClassInfo:
    name: str
    parent: str
    grandparent: str
    description: str
    acoustics: dict[str, str]


@functools.cache
def ontology() -> list[dict]:
    """The embedded hierarchy in the AudioSet ontology JSON format."""
    return json.loads(resources.files("afcot_embedded").joinpath("ontology.json").read_text(encoding="utf-8"))


@functools.cache
def leaf_classes() -> dict[str, ClassInfo]:
    """Leaf classes by lower-case name, with their family (parent) and category (grandparent)."""
    by_id = {n["id"]: n for n in ontology()}
    parent = {c: n["id"] for n in ontology() for c in n["child_ids"]}
    leaves = {}
    for n in ontology():
        if n["child_ids"]:
            continue
        fam = by_id[parent[n["id"]]]
        cat = by_id[parent[fam["id"]]]
        leaves[n["name"].lower()] = ClassInfo(n["name"].lower(), fam["name"].lower(), cat["name"].lower(),
                                              n["description"], n.get("acoustics", {}))
    return leaves


# --- synthesis -------------------------------------------------------------------------------------

def _smooth_noise(rng: np.random.Generator, n: int, cutoff: float) -> np.ndarray:
    """Noise low-passed by FFT masking (fast and exact enough for synthesis)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spec[freqs > cutoff] = 0
    out = np.fft.irfft(spec, n)
    return out / (np.std(out) + 1e-12)


def _tone(freqs: np.ndarray, partials: list[tuple[float, float]]) -> np.ndarray:
    phase = 2 * np.pi * np.cumsum(freqs) / SAMPLE_RATE
    return sum(a * np.sin(k * phase) for k, a in partials)


def _events(rng: np.random.Generator, n: int, times: np.ndarray, make) -> np.ndarray:
    out = np.zeros(n)
    for t in times:
        burst = make(rng)
        start = int(t * SAMPLE_RATE)
        end = min(n, start + len(burst))
        out[start:end] += burst[: end - start]
    return out


def _click(rng: np.random.Generator) -> np.ndarray:
    m = int(0.006 * SAMPLE_RATE)
    return np.diff(rng.standard_normal(m + 1)) * np.exp(-np.arange(m) / (0.0015 * SAMPLE_RATE))


def _thud(freq: float):
    def make(rng: np.random.Generator) -> np.ndarray:
        t = np.arange(int(0.12 * SAMPLE_RATE)) / SAMPLE_RATE
        return np.sin(2 * np.pi * freq * t) * np.exp(-t / 0.03)
    return make


def _blip(freq: float):
    def make(rng: np.random.Generator) -> np.ndarray:
        t = np.arange(int(0.08 * SAMPLE_RATE)) / SAMPLE_RATE
        return np.sin(2 * np.pi * freq * rng.uniform(0.95, 1.05) * t) * np.exp(-t / 0.02)
    return make


def _poisson_times(rng: np.random.Generator, rate: float, duration: float, min_gap: float) -> np.ndarray:
    times, t = [], rng.uniform(0.05, 0.2)
    while t < duration - 0.1:
        times.append(t)
        t += max(min_gap, rng.exponential(1 / rate))
    return np.asarray(times)


@dataclass
class Clip:
    """A synthesised clip and the ground truth of its properties."""

    label: str
    wave: np.ndarray
    truth: dict[str, str | float]


def synthesize(label: str, rng: np.random.Generator) -> Clip:
    """A random clip of class ``label``; its properties are known from the parameters drawn."""
    info = leaf_classes()[label]
    truth: dict[str, str | float] = dict(info.acoustics)
    impulsive = info.grandparent == "impulsive sound"
    duration = float(rng.uniform(1.6, 3.4))
    rate = 0.0
    if impulsive:
        rate = {"ticking": rng.uniform(5, 8), "knocking": rng.uniform(1.6, 3.0), "crackle": rng.uniform(8, 14),
                "dripping": rng.uniform(1.8, 3.2)}[label]
        duration = max(duration, 4.2 / rate + 0.3)
    n = int(duration * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    ones = np.ones(n)
    if label == "hum":
        wave = _tone(ones * rng.uniform(90, 220), [(1, 1.0), (2, 0.5), (3, 0.25)])
    elif label == "whistle":
        wave = _tone(rng.uniform(1300, 2600) * (1 + 0.003 * np.sin(2 * np.pi * 5 * t)), [(1, 1.0)])
    elif label in ("rising chirp", "falling chirp"):
        lo, ratio = rng.uniform(350, 600), rng.uniform(2.0, 2.8)
        sweep = lo * ratio ** (t / duration)
        wave = _tone(sweep if label == "rising chirp" else sweep[::-1], [(1, 1.0), (2, 0.2)])
    elif label == "chime":
        f0 = rng.uniform(1200, 2000)
        wave = _tone(ones * f0, [(1, 1.0), (2.76, 0.4), (5.4, 0.2)]) * np.exp(-t / rng.uniform(0.25, 0.45))
    elif label == "pluck":
        f0 = rng.uniform(110, 260)
        wave = _tone(ones * f0, [(k, 1 / k) for k in range(1, 6)]) * np.exp(-t / rng.uniform(0.15, 0.3))
    elif label == "hiss":
        wave = np.diff(rng.standard_normal(n + 2), n=2)
    elif label == "rumble":
        wave = _smooth_noise(rng, n, rng.uniform(300, 500))
    elif label == "wind":
        knots = rng.uniform(0.15, 1.0, size=int(duration / 0.35) + 3)
        env = np.interp(t, np.linspace(0, duration, len(knots)), knots)
        wave = _smooth_noise(rng, n, 1500) * env
    elif label == "surf":
        wave = _smooth_noise(rng, n, 2000) * (0.55 + 0.45 * np.sin(2 * np.pi * rng.uniform(1.2, 2.2) * t))
    elif label == "ticking":
        times = np.arange(rng.uniform(0.05, 0.15), duration - 0.05, 1 / rate)
        wave = _events(rng, n, times, _click)
    elif label == "knocking":
        times = np.arange(rng.uniform(0.05, 0.15), duration - 0.1, 1 / rate)
        wave = _events(rng, n, times, _thud(rng.uniform(90, 150)))
    elif label == "crackle":
        times = _poisson_times(rng, rate, duration, 0.06)
        wave = _events(rng, n, times, lambda r: _click(r) * r.uniform(0.5, 1.0))
    elif label == "dripping":
        times = _poisson_times(rng, rate, duration, 0.15)
        wave = _events(rng, n, times, _blip(rng.uniform(900, 1800)))
    else:
        raise KeyError(label)

    if impulsive:
        count = len(times)
        truth.update(event_count=float(count), tempo="fast" if count / duration > 4 else "slow")
        wave = wave / (np.abs(wave).max() + 1e-12) * 10 ** (rng.uniform(-12, -3) / 20)
    else:
        level = rng.choice(VALUES["loudness_level"])
        db = {"loud": rng.uniform(-16, -12), "moderate": rng.uniform(-27, -24), "quiet": rng.uniform(-40, -36)}[level]
        wave = wave / (np.sqrt(np.mean(wave**2)) + 1e-12) * 10 ** (db / 20)
        trend = "quieter" if info.acoustics.get("envelope") == "decays" else str(rng.choice(VALUES["loudness_trend"]))
        if info.acoustics.get("envelope") != "decays" and trend != "same level":
            ramp_db = rng.uniform(6, 12) * (1 if trend == "louder" else -1)
            wave = wave * 10 ** ((np.linspace(-0.5, 0.5, n) * ramp_db) / 20)
        truth.update(loudness_trend=trend)
        if trend == "same level" and info.acoustics.get("envelope") != "decays":
            truth["loudness_level"] = level
    truth["duration"] = round(duration, 2)
    return Clip(label, wave.astype(np.float32), truth)


# --- questions -------------------------------------------------------------------------------------

_NUMERIC = ("duration", "event_count")


def _true_clause(prop: str, truth: dict, rng: np.random.Generator) -> Clause | None:
    value = truth.get(prop)
    if value is None:
        return None
    if prop == "duration":
        edge = 2.0 if abs(float(value) - 2.0) > 0.35 else 3.0 if abs(float(value) - 3.0) > 0.35 else None
        return None if edge is None else Clause(prop, op=">" if float(value) > edge else "<", number=edge)
    if prop == "event_count":
        gap = int(rng.integers(2, 5))
        if rng.random() < 0.5 and value > 1:  # "more than 1" at least: a clip of one event is asked "fewer"
            return Clause(prop, op=">", number=max(1, value - gap))
        return Clause(prop, op="<", number=value + gap)
    return Clause(prop, str(value))


def _negate(clause: Clause, rng: np.random.Generator) -> Clause:
    if clause.op:
        return Clause(clause.prop, op="<" if clause.op == ">" else ">", number=clause.number)
    others = [v for v in VALUES[clause.prop] if v != clause.value]
    return Clause(clause.prop, str(rng.choice(others)))


@dataclass(frozen=True)
class Question:
    question: str
    answer: str
    choices: list[str] | None


def aqa_question(clip: Clip, rng: np.random.Generator) -> Question:
    """A yes/no question over 2–3 properties (sometimes 1, which the gate discards) or a 4-way MCQ."""
    truth = clip.truth
    mcq_pairs = [("pitch_direction", "loudness_trend"), ("tempo", "regularity")]
    pair = next((p for p in mcq_pairs if all(truth.get(k) in VALUES[k][:2] for k in p)
                 and truth.get("envelope") != "decays"), None)
    if pair and rng.random() < 0.35:
        a, b = pair
        options = [join_statements([Clause(a, va).statement(), Clause(b, vb).statement()])
                   for va in VALUES[a][:2] for vb in VALUES[b][:2]]
        answer = join_statements([Clause(a, str(truth[a])).statement(), Clause(b, str(truth[b])).statement()])
        order = rng.permutation(len(options))
        return Question("How does the sound change over time?", answer, [options[i] for i in order])
    props = [p for p in truth if p in VALUES]
    rng.shuffle(props)
    clauses = [c for p in props if (c := _true_clause(p, truth, rng)) is not None]
    size = 1 if rng.random() < 0.1 else int(rng.integers(2, 4))
    clauses = clauses[:size]
    yes = rng.random() < 0.5
    if not yes:
        k = int(rng.integers(len(clauses)))
        clauses[k] = _negate(clauses[k], rng)
    return Question(join_clauses([c.question() for c in clauses]), "yes" if yes else "no", None)


def close_negatives(label: str, rng: np.random.Generator, k: int = 3) -> list[str]:
    """Siblings first, then cousins, then any other class; never the label itself."""
    info = leaf_classes()[label]
    pools = [
        [c.name for c in leaf_classes().values() if c.parent == info.parent and c.name != label],
        [c.name for c in leaf_classes().values() if c.grandparent == info.grandparent and c.parent != info.parent],
        [c.name for c in leaf_classes().values() if c.grandparent != info.grandparent],
    ]
    chosen: list[str] = []
    for pool in pools:
        pool = list(rng.permutation(pool)) if pool else []
        chosen += [str(c) for c in pool[: k - len(chosen)]]
        if len(chosen) == k:
            break
    return chosen


@functools.cache
def _ontology_sampler(name: str = "ontology") -> NegativeSampler | None:
    """The registered negative sampler ``name`` (``ontology`` or ``random``) over this world's classes, built once;
    None if it is not loaded."""
    import msgspec

    from afcot_core.api import default_plugins

    samplers = default_plugins().registry("negative_sampler")
    if name not in samplers.names():
        return None
    reg = samplers.get(name)
    path = str(resources.files("afcot_embedded").joinpath("ontology.json"))
    return reg.build(msgspec.convert({"ontology": path, "vocabulary": sorted(leaf_classes())}, reg.config))


def classification_question(clip: Clip, rng: np.random.Generator, negatives: str = "ontology") -> Question:
    """The label and three close negatives from the registered ``ontology`` negative sampler over this
    world's ``ontology.json`` (siblings, then cousins; :func:`close_negatives` if it is not loaded), or with
    ``negatives = "random"`` three drawn by the ``random`` sampler from every class of this world (the control)."""
    seed = int(rng.integers(2**32))
    sampler = _ontology_sampler(negatives)
    if sampler is not None:
        negatives = sampler.sample(clip.label, 3, seed=seed) or []
    else:
        negatives = close_negatives(clip.label, np.random.default_rng(seed))
    choices = [clip.label, *negatives]
    order = rng.permutation(len(choices))
    return Question("Classify the sound.", clip.label, [choices[i] for i in order])
