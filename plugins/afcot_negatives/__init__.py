"""Negative samplers for multiple-choice items, the MCQ builder and the AF-Reasoning-Eval analysis.

``audioset_ontology.json`` in this package is the AudioSet ontology (CC BY-SA 4.0; see
``AUDIOSET_ONTOLOGY_NOTICE.txt``). It is the default ontology of the ``ontology`` and ``random`` samplers.
"""

from pathlib import Path

HERE = Path(__file__).parent
AUDIOSET_ONTOLOGY = HERE / "audioset_ontology.json"
DISTRACTOR_PROMPT = HERE / "distractors_v1.txt"
