"""The embedded world's classification choices come from the registered ``ontology`` sampler."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest
from afcot_negatives.ontology import Ontology

from afcot_core import plugins

embedded = pytest.importorskip("afcot_embedded.world")


def test_embedded_ontology_is_a_real_ontology():
    onto = Ontology.from_json(str(resources.files("afcot_embedded").joinpath("ontology.json")))
    leaves = sorted(embedded.leaf_classes())
    assert len(leaves) == 14 and all(onto.resolve(leaf) is not None for leaf in leaves)
    for leaf in leaves:
        assert onto.siblings(leaf) and onto.cousins(leaf)


def test_classification_choices_are_close_negatives_from_the_sampler():
    if "ontology" not in plugins.default().registry("negative_sampler").names():
        pytest.skip("the negatives plugin is not loaded")
    path = str(resources.files("afcot_embedded").joinpath("ontology.json"))
    onto = Ontology.from_json(path)
    reg = plugins.default().registry("negative_sampler").get("ontology")
    sampler = reg.build(reg.config(ontology=path, vocabulary=sorted(embedded.leaf_classes())))
    for i, label in enumerate(sorted(embedded.leaf_classes())):
        clip = embedded.Clip(label, np.zeros(1), {})
        q = embedded.classification_question(clip, np.random.default_rng([5, i]))
        assert q.answer == label and label in q.choices and len(set(q.choices)) == 4
        distractors = [c for c in q.choices if c != label]
        relations = [onto.relation(label, d) for d in distractors]
        assert set(relations) <= {"sibling", "cousin"}
        seed = int(np.random.default_rng([5, i]).integers(2**32))  # the first draw seeds the sampler
        assert set(distractors) == set(sampler.sample(label, 3, seed=seed))
        siblings = {onto.get(s).name.lower() for s in onto.siblings(label)}
        assert siblings <= set(distractors)  # every sibling is taken before any cousin (at most 2 siblings)
        again = embedded.classification_question(clip, np.random.default_rng([5, i]))
        assert again == q
