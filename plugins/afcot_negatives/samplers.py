"""The ``ontology`` sampler (close negatives) and the ``random`` sampler (the ablation control).

Both offer labels from a candidate pool (a vocabulary, else the ontology's unrestricted classes) and
never offer the answer, its ancestors or descendants, a positive label of the clip (``exclude``) or
an ancestor of one. The ``ontology`` sampler takes siblings first, then cousins (or, with
``close = "pooled"``, siblings and cousins together), then its fallback: ``random`` (uniform over the
rest of the pool), ``nearest`` (the rest, closest first) or ``none``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Literal

import msgspec

from afcot_core.api import BadInput, NegativeSampler, Seed, make_rng
from afcot_negatives.ontology import Ontology, label_key
from afcot_negatives.vocabulary import Entry, load_ontology, load_vocabulary

Fallback = Literal["random", "nearest", "none"]
Close = Literal["tiered", "pooled"]


class RandomConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Options of the ``random`` sampler."""

    #: AudioSet-format ontology file (unset: the bundled AudioSet ontology)
    ontology: str | None = None
    #: label file or list of labels the options are drawn from (unset: every unrestricted class)
    vocabulary: str | list[str] | None = None
    #: offer "abstract" / "blacklist" classes when no vocabulary is given
    include_restricted: bool = False
    #: seed of a draw that is given none
    seed: int = 0


class OntologyConfig(RandomConfig, forbid_unknown_fields=True):
    """Options of the ``ontology`` sampler."""

    #: after the close classes: "random" (uniform over the rest of the pool), "nearest" (closest first) or "none"
    fallback: Fallback = "random"
    #: "tiered": siblings first, then cousins; "pooled": siblings and cousins drawn together as one tier
    close: Close = "tiered"


class PoolSampler(NegativeSampler):
    """Shared part: the ontology, the candidate pool and the labels that must never be offered."""

    name = "random"

    def __init__(self, config: RandomConfig) -> None:
        self.config = config
        self.ontology: Ontology = load_ontology(config.ontology)
        self.pool: list[Entry] = load_vocabulary(config.vocabulary, self.ontology, config.include_restricted)

    def banned(self, answer_id: str, exclude: Iterable[str]) -> set[str]:
        """Class ids never offered: the answer's lineage, each positive label and its ancestors."""
        out = set(self.ontology.lineage(answer_id))
        for label in exclude:
            cls = self.ontology.resolve(label)
            if cls is not None:
                out |= self.ontology.ancestors(cls.id) | {cls.id}
        return out

    def candidates(self, answer: str, exclude: Iterable[str]) -> list[Entry]:
        exclude = list(exclude)
        answer_id = self.ontology.require(answer, "answer").id
        banned = self.banned(answer_id, exclude)
        unresolved = {label_key(x) for x in exclude if self.ontology.resolve(x) is None}
        return [e for e in self.pool if e.class_id not in banned and label_key(e.label) not in unresolved]

    def rng_for(self, answer: str, seed: Seed, rng: random.Random | None) -> random.Random:
        return rng or make_rng(self.config.seed if seed is None else seed, label_key(answer))

    def sample(self, answer: str, k: int = 3, *, exclude: Iterable[str] = (), question: str = "",
               seed: Seed = None, rng: random.Random | None = None) -> list[str]:
        if k < 0:
            raise BadInput(f"k must be >= 0, got {k}")
        pool = self.candidates(answer, exclude)
        picked = self.rng_for(answer, seed, rng).sample(pool, min(k, len(pool)))
        return [e.label for e in picked]


class OntologySampler(PoolSampler):
    """Close negatives: siblings, then cousins, then the configured fallback."""

    name = "ontology"
    config: OntologyConfig

    def __init__(self, config: OntologyConfig) -> None:
        super().__init__(config)
        self._degrees: dict[str, dict[str, float]] = {}

    def tiers(self, answer: str, exclude: Iterable[str] = ()) -> list[tuple[float, list[Entry]]]:
        """Candidates grouped by kinship degree (1 siblings, 2 cousins, inf unrelated), closest first."""
        answer_id = self.ontology.require(answer, "answer").id
        if answer_id not in self._degrees:
            degrees = {e.class_id: self.ontology.degree(answer_id, e.class_id) for e in self.pool}
            self._degrees[answer_id] = {cid: float("inf") if d is None else d for cid, d in degrees.items()}
        groups: dict[float, list[Entry]] = {}
        for e in self.candidates(answer_id, exclude):
            groups.setdefault(self._degrees[answer_id][e.class_id], []).append(e)
        return sorted(groups.items())

    def close_tiers(self, answer: str, exclude: Iterable[str] = ()) -> list[tuple[float, list[Entry]]]:
        """:meth:`tiers`, with siblings and cousins merged into one tier when ``close`` is "pooled"."""
        tiers = self.tiers(answer, exclude)
        if self.config.close == "tiered":
            return tiers
        merged = [e for d, group in tiers if d <= 2 for e in group]
        return ([(2.0, merged)] if merged else []) + [(d, g) for d, g in tiers if d > 2]

    def sample(self, answer: str, k: int = 3, *, exclude: Iterable[str] = (), question: str = "",
               seed: Seed = None, rng: random.Random | None = None) -> list[str]:
        if k < 0:
            raise BadInput(f"k must be >= 0, got {k}")
        r = self.rng_for(answer, seed, rng)
        tiers = self.close_tiers(answer, exclude)
        steps = [group for d, group in tiers if d <= 2]
        rest = [group for d, group in tiers if d > 2]
        if self.config.fallback == "random":
            steps.append([e for group in rest for e in group])
        elif self.config.fallback == "nearest":
            steps += rest
        picked: list[Entry] = []
        for group in steps:
            if len(picked) >= k:
                break
            picked += r.sample(group, min(k - len(picked), len(group)))
        return [e.label for e in picked]

    def reachable(self, answer: str, k: int = 3, exclude: Iterable[str] = ()) -> list[str]:
        """Every label this sampler can return for ``answer`` from its close tiers (fallback aside)."""
        out: list[str] = []
        for d, group in self.close_tiers(answer, exclude):
            if len(out) >= k or d > 2:
                break
            out += [e.label for e in group]
        return out


def preflight(config: RandomConfig) -> list[str]:
    """Problems with the ontology or vocabulary, found before a run starts."""
    try:
        load_vocabulary(config.vocabulary, load_ontology(config.ontology), config.include_restricted)
    except BadInput as exc:
        return [str(exc)]
    return []
