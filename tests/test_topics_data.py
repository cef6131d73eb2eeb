"""The hand-written topic sets: well-formed, big enough per language, and no text in two of them.

The default taxonomy's examples are the classifier's training data, `validation.jsonl` chose its
settings, `test.jsonl` was never tuned on: a text (normalised as the model reads it, lower case,
whitespace folded) in two of them would let a figure measure memory instead of generalisation.
"""

from __future__ import annotations

import collections
import json
import pathlib

import pytest

from models.text import model_text
from models.taxonomy import DEFAULT_TOPICS, OTHER

DATA = pathlib.Path(__file__).resolve().parents[1] / "data" / "handwritten" / "topics"
LANGUAGES = {"en", "ru", "uk", "hr", "sr"}
NAMES = {t.name for t in DEFAULT_TOPICS}


def _read(split: str) -> list[dict]:
    with open(DATA / f"{split}.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _key(text: str) -> str:
    return " ".join(model_text(text).lower().split())


@pytest.mark.parametrize("split, per_language", [("validation", 30), ("test", 60)])
def test_splits_are_well_formed_and_cover_every_language_and_topic(split, per_language):
    posts = _read(split)
    assert len({p["id"] for p in posts}) == len(posts)
    by_language = collections.Counter(p["lang"] for p in posts)
    assert set(by_language) == LANGUAGES and min(by_language.values()) >= per_language, by_language
    for post in posts:
        assert post["topic"] in NAMES, post
        assert post["secondary"] is None or (post["secondary"] in NAMES - {OTHER, post["topic"]}), post
        assert post["script"] in ("Latn", "Cyrl") and post["text"].strip(), post
    for lang in LANGUAGES:
        topics = collections.Counter(p["topic"] for p in posts if p["lang"] == lang)
        assert set(topics) == NAMES and topics[OTHER] >= 4, (lang, topics)
    scripts = {p["script"] for p in posts if p["lang"] == "sr"}
    assert scripts == {"Latn", "Cyrl"}  # Serbian is written both ways


def test_no_text_occurs_in_two_sets():
    sets = {"taxonomy": [p for t in DEFAULT_TOPICS for p in t.phrases],
            "validation": [p["text"] for p in _read("validation")], "test": [p["text"] for p in _read("test")]}
    seen: dict[str, str] = {}
    repeated = []
    for name, texts in sets.items():
        for text in texts:
            key = _key(text)
            if key in seen:
                repeated.append((seen[key], name, text))
            seen[key] = name
    assert not repeated
    assert len(seen) == sum(len(texts) for texts in sets.values())
