"""The inputs the job tests read: brand configs and posts, hand-written or generated with a fixed seed.

- `BRANDS_YAML`, `GOOD_RECORDS`, `BAD_LINES`: three brands, six good posts in four
  languages and every kind of bad line with the dead-letter reason it must produce
  (the `brands_file` and `mixed_jsonl` fixtures of `tests/conftest.py` write them).
- `six_weeks_of_posts()`: 2026-08-03 .. 2026-09-13 for the windowed, incremental and runner tests.
- `METRICS_BRANDS_YAML`, `metrics_posts()`: five weeks for three brands with the brand
  account's replies and a negative spike on `SPIKE` (the metrics, alerts and report tests).

Every timestamp is fixed: nothing here depends on the clock.
"""

from __future__ import annotations

import datetime
import json
import pathlib
import random
import typing

UTC = datetime.timezone.utc

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


# ---- six weeks of posts -------------------------------------------------------------------------

FIRST_DAY = datetime.date(2026, 8, 3)  # a Monday
DAYS = 42
TEXTS = [
    "I love Sprite, great price this week", "@Sprite my order arrived broken, awful support",
    "Спрайт или Кока-Кола? Кока-Кола лучше", "Coca-Cola delivery was bad again", "Fanta is super with ice",
    "Coke and Fanta at the party", "Sprite discount at the store", "Koka-Kola je loš izbor, Fanta je super",
    "nothing about drinks today", "#CocaCola the best summer drink",
]


def six_weeks_of_posts() -> list:
    """Three to seven posts a day, 2026-08-03 .. 2026-09-13, in the file connector's format (seeded)."""
    rnd = random.Random(7)
    out = []
    for day in range(DAYS):
        date = FIRST_DAY + datetime.timedelta(days=day)
        for i in range(3 + rnd.randrange(5)):
            ts = datetime.datetime.combine(date, datetime.time(rnd.randrange(24), rnd.randrange(60)),
                                           datetime.timezone.utc)
            out.append({"id": f"p{day:02d}{i}", "text": rnd.choice(TEXTS), "created_at": ts.isoformat(),
                        "platform": rnd.choice(["x", "mastodon"]), "author_id": f"u{rnd.randrange(30)}",
                        "lang": rnd.choice(["en", "ru", None]), "likes": rnd.choice([None, 0, 3, 10]),
                        "fetched_at": (ts + datetime.timedelta(hours=2)).isoformat()})
    return out


# ---- the metrics job's five weeks ----------------------------------------------------------------

METRICS_BRANDS_YAML = """\
brands:
  - id: sprite
    names: [Sprite, Спрайт]
    handles: [Sprite]
    competitors: [cocacola]
  - id: cocacola
    names: [Coca-Cola, Кока-Кола]
    handles: [CocaCola]
    competitors: [sprite]
  - id: fanta
    names: [Fanta]
alerts:
  periods: [day, week]
  z_threshold: 3.5
  min_negative_mentions: 10
"""
METRICS_START = datetime.datetime(2026, 9, 1, tzinfo=UTC)  # a Tuesday
SPIKE = datetime.date(2026, 9, 29)
_DAILY = [  # (brand, text, platform, lang): posted every day
    ("sprite", "I love Sprite, great taste", "x", "en"),
    ("sprite", "Sprite at the shop today", "mastodon", "en"),
    ("sprite", "Спрайт купил сегодня", "x", "ru"),
    ("cocacola", "Coca-Cola is the best", "x", "en"),
    ("cocacola", "Coca-Cola with pizza", "reddit", None),
    ("cocacola", "Кока-Кола отлично", "x", "ru"),
    ("fanta", "Fanta orange, super", "x", "hr"),
]
_ODD_DAYS = [
    ("sprite", "Sprite price is bad lately", "x", "en"),  # negative, price_promotion
    ("cocacola", "Coca-Cola delivery was awful", "x", "en"),  # negative, purchase_delivery
    ("cocacola", "Coca-Cola or Sprite? both fine", "mastodon", "en"),
]


def metrics_posts() -> list:
    """Five weeks for three brands with a negative spike, in the file connector's format."""
    out, n = [], 0

    def add(ts, text, platform, lang, **extra):
        nonlocal n
        n += 1
        rec = {"id": f"p{n}", "text": text, "created_at": ts.isoformat().replace("+00:00", "Z"),
               "platform": platform, "author_id": f"u{n % 17}", "author_handle": f"user{n % 17}"}
        if lang:
            rec["lang"] = lang
        if platform == "x":
            rec.update(likes=n % 7, reposts=n % 3, replies=n % 2, quotes=0, impressions=100 + n % 50,
                       author_followers=1000 + n)
        elif platform == "mastodon":
            rec.update(likes=n % 5, reposts=1, replies=0)
        rec.update(extra)
        out.append(rec)
        return rec["id"]

    for day in range(35):
        base = METRICS_START + datetime.timedelta(days=day, hours=9)
        for i, (brand, text, platform, lang) in enumerate(_DAILY + (_ODD_DAYS if day % 2 else [])):
            add(base + datetime.timedelta(minutes=7 * i), text, platform, lang)
        if base.date() == SPIKE:
            for k in range(25):
                pid = add(base + datetime.timedelta(hours=2, minutes=k), f"@Sprite my order arrived broken, awful {k}",
                          "x", "en")
                if k % 5 == 0:  # the brand account answers every fifth complaint, 45 minutes later
                    add(base + datetime.timedelta(hours=2, minutes=45 + k), "@user4 so sorry, please DM us", "x",
                        "en", author_handle="Sprite", author_id="brand-sprite", is_reply=True, reply_to=pid)
    # Midnight UTC: the last second of Sunday the 6th, and 00:30 on the 7th in UTC+1 (still the 6th in UTC).
    add(datetime.datetime(2026, 9, 6, 23, 59, 59, tzinfo=UTC), "Sprite at midnight", "x", "en")
    out.append({"id": "tz", "text": "Sprite in Belgrade", "created_at": "2026-09-07T00:30:00+01:00",
                "platform": "x", "lang": "sr"})
    return out


# ---- writing them -------------------------------------------------------------------------------

def write_brands(folder: pathlib.Path, text: str = BRANDS_YAML) -> pathlib.Path:
    """Writes a brand config as `<folder>/brands.yaml`; returns its path."""
    path = folder / "brands.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def write_mixed_jsonl(folder: pathlib.Path) -> pathlib.Path:
    """`<folder>/in/mixed.jsonl`: the good records, one exact duplicate, a blank line and every bad line."""
    lines = [json.dumps(r, ensure_ascii=False).encode("utf-8") for r in GOOD_RECORDS]
    lines.append(json.dumps(GOOD_RECORDS[0]).encode("utf-8"))  # duplicate (platform, id)
    lines.append(b"")
    lines.extend(line for line, _ in BAD_LINES)
    path = folder / "in" / "mixed.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def write_jsonl(path: pathlib.Path, records: typing.Iterable[dict], raw_lines: typing.Iterable[bytes] = ()
                ) -> pathlib.Path:
    """Writes records as JSON Lines (and raw lines after them, such as bad ones); returns the path."""
    lines = [json.dumps(r, ensure_ascii=False).encode("utf-8") for r in records] + list(raw_lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def write_six_weeks(folder: pathlib.Path) -> str:
    """`six_weeks_of_posts()` and every bad line, spread over three files in `folder`; returns their glob."""
    records = six_weeks_of_posts()
    for part in range(3):  # several files, so that the reads spread over workers
        write_jsonl(folder / f"posts-{part}.jsonl", records[part::3], [line for line, _ in BAD_LINES[part::3]])
    return str(folder / "*.jsonl")
