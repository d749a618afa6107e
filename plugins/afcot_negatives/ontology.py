"""A sound-class ontology in the AudioSet JSON format, with label resolution and kinship queries.

The file is a list of objects ``{"id", "name", "description", "child_ids", "restrictions", ...}``;
a class may have several parents. Restrictions ("abstract", "blacklist") do not change the graph:
they only mark classes that are not offered as labels by default (see :attr:`SoundClass.restricted`).

Labels are matched by :func:`label_key`, so the AudioSet name "Male speech, man speaking", the FSD50K
label "Male_speech_and_man_speaking" and the AF-Reasoning-Eval label "male speech and man speaking"
all name the same class.

Kinship is measured by :meth:`Ontology.degree`: two classes meet at a common ancestor; the degree is
the larger of their two distances to it (minimised over common ancestors). Siblings have degree 1,
cousins degree 2 (first cousins, and a class and its parent's siblings), anything farther more.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from afcot_core.api import BadInput, json_objects, read_json

Relation = Literal["same", "ancestor", "descendant", "sibling", "cousin", "farther"]
RESTRICTIONS = frozenset({"abstract", "blacklist"})

_WORD = re.compile(r"[^0-9a-z]+")


def label_key(label: str) -> str:
    """The matching key of a label: lower-case words, punctuation, ``_`` and the word "and" dropped."""
    words = _WORD.split(label.lower().replace("'", "").replace("’", ""))
    return " ".join(w for w in words if w and w != "and")


def eval_label(label: str) -> str:
    """A label as AF-Reasoning-Eval writes it: lower case, ``_`` as spaces ("chuckle and chortle")."""
    return " ".join(label.replace("_", " ").lower().split())


@dataclass(frozen=True)
class SoundClass:
    """One class of the ontology."""

    id: str
    name: str
    description: str = ""
    child_ids: tuple[str, ...] = ()
    restrictions: frozenset[str] = frozenset()

    @property
    def restricted(self) -> bool:
        """True for "abstract" or "blacklist" classes, which are not offered as labels by default."""
        return bool(self.restrictions & RESTRICTIONS)


class Ontology:
    """A directed acyclic graph of :class:`SoundClass` with label resolution and kinship queries.

    Query methods accept a class id ("/m/09x0r") or any spelling of its name that
    :func:`label_key` maps to the same key; they return class ids.
    """

    def __init__(self, classes: Iterable[SoundClass], source: str = "ontology") -> None:
        self.source = source
        self._classes: dict[str, SoundClass] = {}
        for cls in classes:
            if cls.id in self._classes:
                raise BadInput(f"{source}: duplicate class id '{cls.id}'")
            self._classes[cls.id] = cls
        self._parents: dict[str, list[str]] = {cid: [] for cid in self._classes}
        for cls in self._classes.values():
            for child in cls.child_ids:
                if child not in self._classes:
                    raise BadInput(f"{source}: class '{cls.id}' ({cls.name}) lists unknown child '{child}'")
                if cls.id not in self._parents[child]:
                    self._parents[child].append(cls.id)
        self._by_key: dict[str, str] = {}
        for cls in self._classes.values():
            key = label_key(cls.name)
            if not key:
                raise BadInput(f"{source}: class '{cls.id}' has an empty name")
            if key in self._by_key:
                other = self._classes[self._by_key[key]].name
                raise BadInput(f"{source}: names '{other}' and '{cls.name}' are one label after normalisation")
            self._by_key[key] = cls.id
        self._check_acyclic()
        self._up = functools.cache(self._distances_up)

    # --- loading -------------------------------------------------------------------------------

    @classmethod
    def from_records(cls, records: Any, source: str = "ontology") -> Ontology:
        """Build from the decoded JSON list; :class:`BadInput` names the entry and the problem."""
        classes = []
        for i, rec in enumerate(json_objects(records, source, "classes")):
            where = f"{source}[{i}]"
            for key in ("id", "name"):
                if not isinstance(rec.get(key), str) or not rec[key]:
                    raise BadInput(f"{where}: missing or empty string '{key}'")
            children = rec.get("child_ids", [])
            restrictions = rec.get("restrictions", [])
            if not isinstance(children, list) or not all(isinstance(c, str) for c in children):
                raise BadInput(f"{where}.child_ids: expected a list of ids")
            if not isinstance(restrictions, list) or not all(isinstance(r, str) for r in restrictions):
                raise BadInput(f"{where}.restrictions: expected a list of strings")
            description = str(rec.get("description", ""))
            classes.append(SoundClass(id=rec["id"], name=rec["name"], description=description,
                                      child_ids=tuple(children), restrictions=frozenset(restrictions)))
        return cls(classes, source)

    @classmethod
    def from_json(cls, path: str | Path) -> Ontology:
        """Load an AudioSet-format ontology file."""
        return cls.from_records(read_json(path), str(path))

    def _check_acyclic(self) -> None:
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done
        for start in self._classes:
            if state.get(start):
                continue
            stack: list[tuple[str, Iterator[str]]] = [(start, iter(self._classes[start].child_ids))]
            state[start] = 1
            while stack:
                node, children = stack[-1]
                child = next(children, None)
                if child is None:
                    state[node] = 2
                    stack.pop()
                elif state.get(child) == 1:
                    raise BadInput(f"{self.source}: cycle through '{self._classes[child].name}'")
                elif not state.get(child):
                    state[child] = 1
                    stack.append((child, iter(self._classes[child].child_ids)))

    # --- lookup --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._classes)

    def __iter__(self) -> Iterator[SoundClass]:
        return iter(self._classes.values())

    def __contains__(self, label: object) -> bool:
        return isinstance(label, str) and self.resolve(label) is not None

    def get(self, class_id: str) -> SoundClass:
        """The class with this id (KeyError if none)."""
        return self._classes[class_id]

    def resolve(self, label: str) -> SoundClass | None:
        """The class named by an id or by any spelling of its name, or None."""
        if label in self._classes:
            return self._classes[label]
        cid = self._by_key.get(label_key(label))
        return self._classes[cid] if cid else None

    def require(self, label: str, where: str = "") -> SoundClass:
        """Like :meth:`resolve`, but an unknown label is a :class:`BadInput` with a suggestion."""
        cls = self.resolve(label)
        if cls is None:
            key = label_key(label)
            close = [k for k in self._by_key if key and k.startswith(key)][:1]
            close = close or difflib.get_close_matches(key, list(self._by_key), n=1, cutoff=0.6)
            hint = f" (did you mean '{self._classes[self._by_key[close[0]]].name}'?)" if close else ""
            at = f"{where}: " if where else ""
            raise BadInput(f"{at}label '{label}' is not in {self.source}{hint}")
        return cls

    def _id(self, label: str) -> str:
        return self.require(label).id

    # --- structure -----------------------------------------------------------------------------

    def roots(self) -> list[str]:
        """Classes without a parent, in file order."""
        return [cid for cid, parents in self._parents.items() if not parents]

    def parents(self, label: str) -> tuple[str, ...]:
        return tuple(self._parents[self._id(label)])

    def children(self, label: str) -> tuple[str, ...]:
        return self._classes[self._id(label)].child_ids

    def _distances_up(self, cid: str) -> dict[str, int]:
        """Every ancestor of ``cid`` (and itself at 0) with its shortest distance upwards."""
        dist = {cid: 0}
        frontier = [cid]
        while frontier:
            nxt = []
            for node in frontier:
                for parent in self._parents[node]:
                    if parent not in dist:
                        dist[parent] = dist[node] + 1
                        nxt.append(parent)
            frontier = nxt
        return dist

    def ancestors(self, label: str) -> frozenset[str]:
        cid = self._id(label)
        return frozenset(self._up(cid)) - {cid}

    def descendants(self, label: str) -> frozenset[str]:
        found: set[str] = set()
        stack = list(self.children(label))
        while stack:
            node = stack.pop()
            if node not in found:
                found.add(node)
                stack.extend(self._classes[node].child_ids)
        return frozenset(found)

    def lineage(self, label: str) -> frozenset[str]:
        """The class, its ancestors and its descendants: labels that are never a wrong answer for it."""
        return self.ancestors(label) | self.descendants(label) | {self._id(label)}

    # --- kinship -------------------------------------------------------------------------------

    def degree(self, a: str, b: str) -> int | None:
        """How far ``a`` and ``b`` must climb to meet (see the module docstring); None if never."""
        up_a, up_b = self._up(self._id(a)), self._up(self._id(b))
        common = up_a.keys() & up_b.keys()
        return min((max(up_a[c], up_b[c]) for c in common), default=None)

    def relation(self, a: str, b: str) -> Relation:
        """How ``b`` relates to ``a``: same, ancestor, descendant, sibling, cousin or farther."""
        ida, idb = self._id(a), self._id(b)
        if ida == idb:
            return "same"
        if idb in self._up(ida):
            return "ancestor"
        if ida in self._up(idb):
            return "descendant"
        d = self.degree(ida, idb)
        return "sibling" if d == 1 else "cousin" if d == 2 else "farther"

    def kin(self, label: str, degree: int) -> frozenset[str]:
        """Classes at exactly this degree from ``label``, ancestors and descendants excluded."""
        cid = self._id(label)
        lineage = self.lineage(cid)
        return frozenset(c for c in self._classes if c not in lineage and self.degree(cid, c) == degree)

    def siblings(self, label: str) -> frozenset[str]:
        """Classes sharing a parent with ``label`` (through any of its parents)."""
        return self.kin(label, 1)

    def cousins(self, label: str) -> frozenset[str]:
        """Classes meeting ``label`` two levels up: first cousins, parents' siblings, siblings' children."""
        return self.kin(label, 2)
