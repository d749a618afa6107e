"""The ``ontology`` and ``random`` negative samplers, through the registry and directly."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import msgspec
import pytest
from afcot_negatives.samplers import OntologyConfig, OntologySampler, PoolSampler, RandomConfig, preflight
from afcot_negatives.vocabulary import load_ontology
from hypothesis import given, settings
from hypothesis import strategies as st

from afcot_core import plugins
from afcot_core.errors import BadInput
from afcot_core.negatives import NegativeSampler

FIX = Path(__file__).parent / "fixtures" / "negatives"
ONTO = str(FIX / "ontology.json")
VOCAB = str(FIX / "vocabulary.csv")


def ontology_sampler(**kw) -> OntologySampler:
    return OntologySampler(OntologyConfig(ontology=ONTO, **kw))


def test_registered_and_built_through_the_registry():
    reg = plugins.default().registry("negative_sampler")
    assert {"ontology", "random", "llm"} <= set(reg.names())
    sampler = reg.get("ontology").build(msgspec.convert({"ontology": ONTO}, reg.get("ontology").config))
    assert isinstance(sampler, NegativeSampler)
    assert set(sampler.sample("Bark", 1)) == {"Growling"}
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"fallback": "nearest"}, reg.get("random").config)


def test_siblings_first_then_cousins():
    s = ontology_sampler()
    assert set(s.sample("Electric guitar", 2)) == {"Acoustic guitar", "Bass guitar"}
    three = s.sample("Electric guitar", 3)
    assert set(three[:2]) == {"Acoustic guitar", "Bass guitar"} and three[2] in {"Drum", "Cymbal", "Percussion"}
    assert set(s.sample("Electric guitar", 5)) == {"Acoustic guitar", "Bass guitar", "Drum", "Cymbal", "Percussion"}


def test_fallbacks():
    assert len(ontology_sampler(fallback="none").sample("Electric guitar", 8)) == 5
    nearest = ontology_sampler(fallback="nearest").sample("Electric guitar", 6)
    assert nearest[5] == "Hi-hat"  # the only class at degree 3
    anything = ontology_sampler(fallback="random").sample("Electric guitar", 30)
    assert "Car" in anything and len(anything) == len(set(anything))


def test_pooled_draws_siblings_and_cousins_together():
    s = ontology_sampler(close="pooled")
    seen = {x for seed in range(40) for x in s.sample("Electric guitar", 2, seed=seed)}
    assert seen == {"Acoustic guitar", "Bass guitar", "Drum", "Cymbal", "Percussion"}
    assert s.reachable("Electric guitar") == ["Acoustic guitar", "Bass guitar", "Percussion", "Drum", "Cymbal"]
    assert ontology_sampler().reachable("Bark") == ["Growling", "Cat", "Meow", "Purr"]
    assert ontology_sampler().reachable("Electric guitar", k=2) == ["Acoustic guitar", "Bass guitar"]


def test_never_the_clips_positive_labels_nor_their_ancestors():
    s = ontology_sampler(fallback="none")
    got = s.sample("Bark", 9, exclude=["Meow"])
    assert "Meow" not in got and "Cat" not in got and set(got) == {"Growling", "Purr"}
    assert "Theremin" not in ontology_sampler(vocabulary=["Bark", "Growling", "Car"]).sample("Bark", 3)
    assert "Car" not in ontology_sampler(vocabulary=["Bark", "Growling", "Car"]).sample("Bark", 3,
                                                                                          exclude=["car"])


def test_restricted_classes_only_when_listed():
    s = ontology_sampler(fallback="random")
    every = s.sample("Hi-hat", 40)
    assert "Crash cymbal" not in every and "Sounds" not in every
    assert "Crash cymbal" in OntologySampler(OntologyConfig(ontology=ONTO, include_restricted=True)).sample(
        "Hi-hat", 1)
    vocab = ontology_sampler(vocabulary=VOCAB)
    assert vocab.sample("Hi-hat", 1) == ["Crash_cymbal"]  # listed, so allowed; spelled as the vocabulary


def test_vocabulary_restricts_and_keeps_spelling():
    s = ontology_sampler(vocabulary=VOCAB, fallback="random")
    got = s.sample("electric guitar", 9)
    assert set(got[:2]) == {"Acoustic_guitar", "Bass_guitar"}
    assert got[2] == "Drum"
    assert set(got) <= {"Acoustic_guitar", "Bass_guitar", "Drum", "Hi-hat", "Crash_cymbal", "Bark", "Meow", "Purr",
                        "Car"}
    assert len(got) == 9 and "Electric_guitar" not in got


def test_vocabulary_formats(tmp_path):
    onto = load_ontology(ONTO)
    (tmp_path / "v.json").write_text('["Bark", "Meow"]', encoding="utf-8")
    (tmp_path / "v.txt").write_text("Bark\n\nmeow\n", encoding="utf-8")
    for name in ("v.json", "v.txt"):
        s = OntologySampler(OntologyConfig(ontology=ONTO, vocabulary=str(tmp_path / name)))
        assert [e.class_id for e in s.pool] == [onto.require("Bark").id, onto.require("Meow").id]
    (tmp_path / "bad.txt").write_text("Bark\nTheremin\n", encoding="utf-8")
    with pytest.raises(BadInput, match=r"bad.txt:2: label 'Theremin'"):
        OntologySampler(OntologyConfig(ontology=ONTO, vocabulary=str(tmp_path / "bad.txt")))
    assert preflight(OntologyConfig(ontology=ONTO, vocabulary=str(tmp_path / "bad.txt")))
    assert preflight(OntologyConfig(ontology=str(tmp_path / "none.json")))
    assert preflight(OntologyConfig(ontology=ONTO, vocabulary=VOCAB)) == []


def test_unknown_answer_is_bad_input():
    with pytest.raises(BadInput, match="answer: label 'Theremin'"):
        ontology_sampler().sample("Theremin", 3)
    with pytest.raises(BadInput, match="k must be"):
        ontology_sampler().sample("Bark", -1)


def test_seeds():
    s = ontology_sampler(fallback="random")
    assert s.sample("Bark", 6, seed=3) == s.sample("Bark", 6, seed=3)
    assert len({tuple(s.sample("Bark", 6, seed=i)) for i in range(10)}) > 1
    assert s.sample("Bark", 6, rng=random.Random(5)) == s.sample("Bark", 6, rng=random.Random(5))
    same_config_seed = ontology_sampler(fallback="random", seed=3)
    assert same_config_seed.sample("Bark", 6) == s.sample("Bark", 6, seed=3)


def test_random_sampler_is_uniform_over_the_pool():
    s = PoolSampler(RandomConfig(ontology=ONTO, vocabulary=VOCAB))
    counts: dict[str, int] = {}
    for seed in range(600):
        for x in s.sample("Bark", 3, seed=seed):
            counts[x] = counts.get(x, 0) + 1
    assert set(counts) == {"Electric_guitar", "Acoustic_guitar", "Bass_guitar", "Drum", "Hi-hat", "Crash_cymbal",
                           "Meow", "Purr", "Car"}
    assert max(counts.values()) < 2 * min(counts.values())


# --- properties ------------------------------------------------------------------------------------

_ONTO = load_ontology(ONTO)
_LABELS = sorted(c.name for c in _ONTO)
_SAMPLERS = [ontology_sampler(fallback=f, close=c) for f in ("random", "nearest", "none")
             for c in ("tiered", "pooled")] + [PoolSampler(RandomConfig(ontology=ONTO)),
                                               ontology_sampler(vocabulary=VOCAB)]


@settings(max_examples=150, deadline=None)
@given(sampler=st.sampled_from(_SAMPLERS), answer=st.sampled_from(_LABELS), k=st.integers(0, 8),
       exclude=st.lists(st.sampled_from(_LABELS), max_size=3), seed=st.integers(0, 2**32))
def test_negatives_properties(sampler, answer, k, exclude, seed):
    got = sampler.sample(answer, k, exclude=exclude, seed=seed)
    assert len(got) <= k
    ids = [_ONTO.require(x).id for x in got]
    assert len(set(ids)) == len(ids), "distinct"
    assert not set(ids) & _ONTO.lineage(answer), "never the answer, an ancestor or a descendant"
    for positive in exclude:
        assert _ONTO.require(positive).id not in ids
    if sampler.config.vocabulary is None:
        assert not any(_ONTO.get(i).restricted for i in ids)
    assert got == sampler.sample(answer, k, exclude=exclude, seed=seed), "stable under a seed"


# --- a small hand-made ontology: exact tiers, seeds and messages --------------------------------------
#
#   Top (abstract) ── Fam ── Gone ── X, Sa, Sb, Sc     X: siblings Sa Sb Sc (1), Gtwo Ca Cb (2),
#                 │      └─ Gtwo ── Ca, Cb                Other Oa Ob (3), Lone (unrelated)
#                 └─ Other ── Oa, Ob
#   Lone (no parent)

_TINY = [{"id": "/top", "name": "Top", "child_ids": ["/fam", "/other"], "restrictions": ["abstract"]},
         {"id": "/fam", "name": "Fam", "child_ids": ["/gone", "/gtwo"]},
         {"id": "/gone", "name": "Gone", "child_ids": ["/x", "/sa", "/sb", "/sc"]},
         {"id": "/gtwo", "name": "Gtwo", "child_ids": ["/ca", "/cb"]},
         {"id": "/x", "name": "X"}, {"id": "/sa", "name": "Sa"}, {"id": "/sb", "name": "Sb"},
         {"id": "/sc", "name": "Sc"}, {"id": "/ca", "name": "Ca"}, {"id": "/cb", "name": "Cb"},
         {"id": "/other", "name": "Other", "child_ids": ["/oa", "/ob"]}, {"id": "/oa", "name": "Oa"},
         {"id": "/ob", "name": "Ob"}, {"id": "/lone", "name": "Lone"}]
#: what X may be offered, in pool (file) order
_FOR_X = ["Gtwo", "Sa", "Sb", "Sc", "Ca", "Cb", "Other", "Oa", "Ob", "Lone"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("onto") / "tiny.json"
    path.write_text(json.dumps(_TINY), encoding="utf-8")
    return str(path)


def labelled(tiers) -> list[tuple[float, list[str]]]:
    return [(d, [e.label for e in group]) for d, group in tiers]


def test_tiers_group_candidates_by_degree_with_unrelated_classes_last(tiny):
    s = OntologySampler(OntologyConfig(ontology=tiny))
    assert labelled(s.tiers("X")) == [(1, ["Sa", "Sb", "Sc"]), (2, ["Gtwo", "Ca", "Cb"]), (3, ["Other", "Oa", "Ob"]),
                                      (math.inf, ["Lone"])]


def test_pooled_close_tiers_merge_siblings_and_cousins_and_keep_the_farther_tiers(tiny):
    pooled = OntologySampler(OntologyConfig(ontology=tiny, close="pooled"))
    assert labelled(pooled.close_tiers("X")) == [(2.0, ["Sa", "Sb", "Sc", "Gtwo", "Ca", "Cb"]),
                                                 (3, ["Other", "Oa", "Ob"]), (math.inf, ["Lone"])]
    far = OntologySampler(OntologyConfig(ontology=tiny, close="pooled", vocabulary=["Oa", "Lone", "X"]))
    assert labelled(far.close_tiers("Oa")) == [(3, ["X"]), (math.inf, ["Lone"])]  # no empty close tier


def test_reachable_labels_stop_at_k_and_never_go_past_cousins(tiny):
    s = OntologySampler(OntologyConfig(ontology=tiny))
    assert s.reachable("X") == ["Sa", "Sb", "Sc"]
    assert s.reachable("X", k=4) == ["Sa", "Sb", "Sc", "Gtwo", "Ca", "Cb"]
    assert s.reachable("X", exclude=["Sa"]) == ["Sb", "Sc", "Gtwo", "Ca", "Cb"]
    assert OntologySampler(OntologyConfig(ontology=tiny, vocabulary=["Oa", "Ob", "X"])).reachable("Oa") == ["Ob"]


def test_both_samplers_offer_three_negatives_by_default(tiny):
    assert sorted(OntologySampler(OntologyConfig(ontology=tiny)).sample("X")) == ["Sa", "Sb", "Sc"]
    assert len(PoolSampler(RandomConfig(ontology=tiny)).sample("X")) == 3


def test_a_draw_is_seeded_by_the_seed_and_the_answers_key(tiny):
    pool = PoolSampler(RandomConfig(ontology=tiny))
    expected = random.Random("7:x").sample(_FOR_X, 4)
    assert pool.sample("X", 4, seed=7) == pool.sample("x", 4, seed=7) == expected
    assert PoolSampler(RandomConfig(ontology=tiny, seed=7)).sample("X", 4) == expected
    close = OntologySampler(OntologyConfig(ontology=tiny))
    assert close.sample("X", 2, seed=7) == random.Random("7:x").sample(["Sa", "Sb", "Sc"], 2)


def test_an_explicit_rng_drives_the_draw(tiny):
    for r in range(3):
        assert PoolSampler(RandomConfig(ontology=tiny)).sample("X", 4, rng=random.Random(r)) == random.Random(
            r).sample(_FOR_X, 4)
        assert OntologySampler(OntologyConfig(ontology=tiny)).sample("X", 2, rng=random.Random(r)) == random.Random(
            r).sample(["Sa", "Sb", "Sc"], 2)


def test_random_sampler_errors_name_the_answer_and_k(tiny):
    pool = PoolSampler(RandomConfig(ontology=tiny))
    with pytest.raises(BadInput) as info:
        pool.sample("Zzz", 3)
    assert str(info.value) == f"answer: label 'Zzz' is not in {tiny}"
    with pytest.raises(BadInput) as info:
        pool.sample("X", -1)
    assert str(info.value) == "k must be >= 0, got -1"


def test_an_excluded_label_unknown_to_the_ontology_removes_the_vocabulary_entry_spelled_so(tiny, tmp_path):
    vocab = tmp_path / "vocabulary.csv"
    vocab.write_text("0,Thingy,/sa\n1,Sb,/sb\n2,Sc,/sc\n3,Ca,/ca\n", encoding="utf-8")
    pool = PoolSampler(RandomConfig(ontology=tiny, vocabulary=str(vocab)))
    assert sorted(pool.sample("X", 9, exclude=["thingy", "Nowhere"])) == ["Ca", "Sb", "Sc"]
    assert sorted(pool.sample("X", 9, exclude=["Nowhere"])) == ["Ca", "Sb", "Sc", "Thingy"]


def test_preflight_reports_the_vocabulary_problem(tiny):
    assert preflight(RandomConfig(ontology=tiny, vocabulary=["X", "Zzz"])) == [
        f"vocabulary[1]: label 'Zzz' is not in {tiny}"]
