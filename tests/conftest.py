"""Shared fixtures: a small brand config and realistic input files with every kind of bad record."""

from __future__ import annotations

import json
import pathlib

import pytest

BRANDS_YAML = """\
brands:
  - id: sprite
    names: [Sprite, Спрайт]
    handles: [Sprite]
    hashtags: [Sprite]
    exclude: ["fairy sprite"]
    competitors: [cocacola]
  - id: cocacola
    names: [Coca-Cola, Coke, Кока-Кола, Koka-Kola]
    handles: [CocaCola]
    hashtags: [CocaCola]
    competitors: [sprite]
  - id: fanta
    names: [Fanta, Фанта]
"""

GOOD_RECORDS = [
    {"id": "g1", "text": "I love Sprite, best drink of the summer", "created_at": "2026-09-07T10:00:00Z",
     "platform": "x", "author_id": "u1", "author_followers": 100, "likes": 3, "reposts": 1, "replies": 0,
     "quotes": 0, "impressions": 200, "lang": "en"},
    {"id": "g2", "text": "@Sprite your can arrived broken, awful", "created_at": "2026-09-07T11:30:00Z",
     "platform": "x", "author_id": "u2", "author_followers": 10, "likes": 0, "replies": 1, "lang": "en"},
    {"id": "g3", "text": "Спрайт или Кока-Кола? Кока-Кола лучше", "created_at": "2026-09-08T02:00:00+03:00",
     "platform": "x", "author_id": "u3", "lang": "ru"},
    {"id": "g4", "text": "a fairy sprite lives in the forest", "created_at": "2026-09-08T10:00:00Z",
     "platform": "mastodon", "author_id": "u4"},
    {"id": "g5", "text": "Koka-kola je loš izbor, Fanta je super", "created_at": "2026-09-09T10:00:00Z",
     "platform": "reddit", "author_id": "u5", "likes": 4, "lang": "hr"},
    {"id": "g6", "text": "nothing about drinks here", "created_at": "2026-09-09T12:00:00Z", "platform": "x"},
]

# Each bad line, and the dead-letter reason it must produce (a substring).
BAD_LINES = [
    (b"this is not json", "malformed JSON"),
    (b'["a", "list"]', "expected a JSON object"),
    (b'{"text": "no id", "created_at": "2026-09-07T10:00:00Z"}', "missing required field(s): id"),
    (b'{"id": "b1", "created_at": "2026-09-07T10:00:00Z"}', "missing required field(s): text"),
    (b'{"id": "b2", "text": "no time"}', "missing required field(s): created_at"),
    (b'{"id": "b3", "text": "bad time", "created_at": "yesterday"}', "not an ISO 8601 timestamp"),
    (b'{"id": "b4", "text": "future", "created_at": "2999-01-01T00:00:00Z"}', "outside the plausible range"),
    (b'{"id": "b5", "text": "   ", "created_at": "2026-09-07T10:00:00Z"}', "text: empty"),
    (b'{"id": "b6", "text": "' + b"Sprite " * 6000 + b'", "created_at": "2026-09-07T10:00:00Z"}',
     "more than the limit"),
    (b'{"id": "b7", "text": "bytes \xff\xfe Sprite", "created_at": "2026-09-07T10:00:00Z"}', "invalid UTF-8"),
    (b'{"id": "b8", "text": "neg likes Sprite", "created_at": "2026-09-07T10:00:00Z", "likes": -3}',
     "likes: -3 is negative"),
    (b'{"id": "b9", "text": "bad count Sprite", "created_at": "2026-09-07T10:00:00Z", "likes": "many"}',
     "likes: 'many' is not a number"),
    (b'{"id": {"x": 1}, "text": "obj id", "created_at": "2026-09-07T10:00:00Z"}', "id: expected a string"),
    (b'{"id": "b10", "text": 42, "created_at": "2026-09-07T10:00:00Z"}', "text: expected a string"),
    (b'{"id": "b11", "text": "flag Sprite", "created_at": "2026-09-07T10:00:00Z", "is_reply": "maybe"}',
     "is_reply: 'maybe' is not a boolean"),
]


@pytest.fixture
def brands_file(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "brands.yaml"
    path.write_text(BRANDS_YAML, encoding="utf-8")
    return path


@pytest.fixture
def mixed_jsonl(tmp_path: pathlib.Path) -> pathlib.Path:
    """Good records, one exact duplicate, a blank line and every kind of bad record."""
    lines = [json.dumps(r, ensure_ascii=False).encode("utf-8") for r in GOOD_RECORDS]
    lines.append(json.dumps(GOOD_RECORDS[0]).encode("utf-8"))  # duplicate (platform, id)
    lines.append(b"")
    lines.extend(line for line, _ in BAD_LINES)
    path = tmp_path / "in" / "mixed.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path
