"""The dataset card of a generate folder, word for word: its YAML metadata (read back by a YAML parser), its
counts table, its size category at each bound, and a folder without a run lock."""

import pytest
import yaml
from afcot_devtools import datacard

LOCK = """fingerprint = "abc123"
[afcot]
version = "9.9.9"
[prompts]
"alg6/summary" = "sha-1"
[recipe.run]
name = "cards"
[recipe.generate.alm]
use = "qwen-omni"
model = "Qwen/Qwen2.5-Omni-7B"
[recipe.generate.llm]
use = "embedded-llm"
"""

STATS = {"rows": [{"source": "audioset", "strategy": "alg6", "items": 10, "accepted": 7},
                  {"source": "", "strategy": "alg8", "items": 5, "accepted": 3}],
         "total": {"items": 15, "accepted": 10}}

CARD = """---
license: "cc-by-4.0"
task_categories:
  - "audio-text-to-text"
tags:
  - "audio"
  - "chain-of-thought"
  - "afcot"
size_categories:
  - "n<1K"
configs:
  - config_name: "default"
    data_files:
      - split: "train"
        path: "shard-*.tar"
afcot:
  recipe: "cards"
  fingerprint: "abc123"
  version: "9.9.9"
  accepted: 10
  items: 15
  counts:
    - source: "audioset"
      algorithm: "alg6"
      items: 10
      accepted: 7
    - source: "unknown"
      algorithm: "alg8"
      items: 5
      accepted: 3
  teachers:
    alm: "qwen-omni (Qwen/Qwen2.5-Omni-7B)"
    llm: "embedded-llm"
  prompts:
    alg6/summary: "sha-1"
---

# cards: chain-of-thought audio QA

Chain-of-thought answers (`<SUMMARY>`, `<CAPTION>`, `<REASONING>`, `<CONCLUSION>`) to audio questions, made by afcot
9.9.9 with alm: qwen-omni (Qwen/Qwen2.5-Omni-7B), llm: embedded-llm. 10 of 15 items were
accepted.

| source | algorithm | items | accepted |
|---|---|---:|---:|
| audioset | alg6 | 10 | 7 |
| unknown | alg8 | 5 | 3 |

## Files

WebDataset shards `shard-*.tar`: per sample `<key>.flac` (audio), `<key>.json` (the record: item, CoT, teacher
calls) and `<key>.txt` (the CoT target). `afcot export` writes AF-Think / AF3 training JSON and AF2 manifests.

```python
from datasets import load_dataset
ds = load_dataset("webdataset", data_files={"train": "shard-*.tar"}, split="train")
```

## License

`cc-by-4.0`: the audio and the questions come from the sources named above; their terms apply.
"""


@pytest.fixture
def generate_dir(tmp_path):
    (tmp_path / "recipe.lock.toml").write_text(LOCK)
    (tmp_path / "generate").mkdir()
    return tmp_path / "generate"


def test_the_card_names_the_recipe_teachers_prompts_and_counts_word_for_word(generate_dir):
    assert datacard.card(generate_dir, "cc-by-4.0", STATS) == CARD
    path = datacard.write(generate_dir, "cc-by-4.0", STATS)
    assert path == generate_dir / "README.md" and path.read_text(encoding="utf-8") == CARD
    assert [p.name for p in generate_dir.iterdir()] == ["README.md"]  # no temporary file left


def test_the_card_metadata_is_yaml_a_hub_reads(generate_dir):
    meta = yaml.safe_load(datacard.card(generate_dir, "cc-by-4.0", STATS).split("---\n")[1])
    assert meta["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "shard-*.tar"}]}]
    assert meta["afcot"]["counts"][1] == {"source": "unknown", "algorithm": "alg8", "items": 5, "accepted": 3}
    assert meta["afcot"]["teachers"] == {"alm": "qwen-omni (Qwen/Qwen2.5-Omni-7B)", "llm": "embedded-llm"}
    assert meta["afcot"]["prompts"] == {"alg6/summary": "sha-1"} and meta["license"] == "cc-by-4.0"


def test_a_card_without_a_run_lock_is_named_after_its_folder_and_says_the_teachers_are_not_recorded(tmp_path):
    text = datacard.card(tmp_path, stats=STATS)
    assert text.startswith('---\nlicense: "other"\n')
    assert f"\n# {tmp_path.name}: chain-of-thought audio QA\n" in text
    assert "made by afcot\n with not recorded. 10 of 15" in text and '  recipe: ""\n  fingerprint: ""\n' in text
    assert "  teachers:\n  prompts:\n---" in text


@pytest.mark.parametrize("accepted, category", [
    (999, "n<1K"), (1_000, "1K<n<10K"), (9_999, "1K<n<10K"), (10_000, "10K<n<100K"), (99_999, "10K<n<100K"),
    (100_000, "100K<n<1M"), (999_999, "100K<n<1M"), (1_000_000, "1M<n<10M"),
])
def test_the_size_category_changes_at_each_power_of_ten(generate_dir, accepted, category):
    stats = {**STATS, "total": {"items": accepted, "accepted": accepted}}
    assert yaml.safe_load(datacard.card(generate_dir, stats=stats).split("---\n")[1])["size_categories"] == [category]


def test_text_beyond_ascii_is_written_as_it_is_and_a_teacher_without_use_is_a_question_mark(tmp_path):
    (tmp_path / "recipe.lock.toml").write_text('[recipe.run]\nname = "cartes-été"\n[recipe.generate.alm]\n'
                                               'model = "qwen/é"\n')
    stats = {"rows": [{"source": "écoute", "strategy": "alg6", "items": 1, "accepted": 1}],
             "total": {"items": 1, "accepted": 1}}
    text = datacard.card(tmp_path / "generate", stats=stats)
    assert '  recipe: "cartes-été"\n' in text and '    - source: "écoute"\n' in text
    assert '  teachers:\n    alm: "? (qwen/é)"\n  prompts:\n' in text and "with alm: ? (qwen/é)." in text
    assert '  - "audio"\n' in text and "\\u" not in text


def test_a_card_without_statistics_collects_them_from_the_folder(generate_dir):
    text = datacard.card(generate_dir)
    assert "llm: embedded-llm. 0 of 0 items were\naccepted.\n" in text
