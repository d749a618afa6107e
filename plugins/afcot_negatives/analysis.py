"""How the distractors of a released MCQ file relate to the answers, and how much of them we reproduce.

For every item each distractor is classified against the answer in the ontology: ``sibling``,
``cousin``, ``farther``, ``lineal`` (an ancestor or descendant of the answer, a questionable
distractor) or ``unresolved`` (a label, or an answer, that is not in the ontology).

Reproduction is measured against an :class:`OntologySampler` whose vocabulary is, unless given, the
set of labels used in the file:

- ``reachable``: the share of released distractors the sampler can return from its close tiers
  (all siblings when there are at least three, else siblings and cousins);
- ``sampled_overlap``: the share of released distractors that one seeded draw per item returns;
- ``same_set``: the share of items whose seeded draw is exactly the released distractor set;
- ``pool_recall`` / ``pool_precision``: per answer label, the union of released distractors against
  the sampler's reachable set (micro-averaged over labels).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from afcot_core.api import make_rng
from afcot_negatives.evalfile import McqEntry
from afcot_negatives.ontology import Ontology, label_key
from afcot_negatives.samplers import OntologySampler

RELATIONS = ("sibling", "cousin", "farther", "lineal", "unresolved")


def relation(ontology: Ontology, answer: str, distractor: str) -> str:
    """One of :data:`RELATIONS` for ``distractor`` against ``answer``."""
    if ontology.resolve(answer) is None or ontology.resolve(distractor) is None:
        return "unresolved"
    rel = ontology.relation(answer, distractor)
    return "lineal" if rel in ("same", "ancestor", "descendant") else rel


@dataclass
class ItemReport:
    key: str
    name: str
    answer: str
    relations: dict[str, str]
    reachable: int = 0
    sampled: list[str] = field(default_factory=list)
    overlap: int = 0


@dataclass
class Report:
    items: list[ItemReport]
    totals: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"totals": self.totals,
                "items": [{"key": r.key, "name": r.name, "answer": r.answer,
                           "distractors": [{"label": d, "relation": rel} for d, rel in r.relations.items()],
                           "reachable": r.reachable, "sampled": r.sampled, "overlap": r.overlap}
                          for r in self.items]}


def _share(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole else 0.0


def analyze(entries: list[McqEntry], sampler: OntologySampler, seed: int = 0) -> Report:
    """Relations of every distractor and the reproduction measures (see the module docstring)."""
    onto = sampler.ontology
    items: list[ItemReport] = []
    pools: dict[str, set[str]] = defaultdict(set)
    reach_of: dict[str, set[str]] = {}
    for e in entries:
        rels = {d: relation(onto, e.answer, d) for d in e.distractors}
        report = ItemReport(e.key, e.name, e.answer, rels)
        if onto.resolve(e.answer) is not None:
            akey = label_key(e.answer)
            if akey not in reach_of:
                reach_of[akey] = {label_key(x) for x in sampler.reachable(e.answer, len(e.distractors))}
            dkeys = {label_key(d) for d in e.distractors}
            report.reachable = len(dkeys & reach_of[akey])
            report.sampled = sampler.sample(e.answer, len(e.distractors), rng=make_rng(seed, e.key))
            report.overlap = len(dkeys & {label_key(s) for s in report.sampled})
            pools[akey] |= dkeys
        items.append(report)
    return Report(items, _totals(items, pools, reach_of))


def _totals(items: list[ItemReport], pools: dict[str, set[str]],
            reach_of: dict[str, set[str]]) -> dict[str, Any]:
    by_rel = Counter(rel for r in items for rel in r.relations.values())
    n_dist = sum(by_rel.values())
    resolved = [r for r in items if "unresolved" not in r.relations.values()]
    n_res = sum(len(r.relations) for r in resolved)
    hit = sum(len(pools[k] & reach_of[k]) for k in pools)
    return {
        "items": len(items),
        "answer_labels": len({label_key(r.answer) for r in items}),
        "distractors": n_dist,
        "by_relation": {rel: by_rel.get(rel, 0) for rel in RELATIONS},
        "by_relation_share": {rel: _share(by_rel.get(rel, 0), n_dist) for rel in RELATIONS},
        "items_all_close": sum(all(v in ("sibling", "cousin") for v in r.relations.values()) for r in items),
        "reproduction": {
            "items": len(resolved),
            "reachable": _share(sum(r.reachable for r in resolved), n_res),
            "sampled_overlap": _share(sum(r.overlap for r in resolved), n_res),
            "same_set": _share(sum(r.overlap == len(r.relations) for r in resolved), len(resolved)),
            "items_fully_reachable": _share(sum(r.reachable == len(r.relations) for r in resolved),
                                            len(resolved)),
            "pool_recall": _share(hit, sum(len(p) for p in pools.values())),
            "pool_precision": _share(hit, sum(len(reach_of[k]) for k in pools)),
        },
    }
