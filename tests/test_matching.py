"""Brand matching: tagged vs untagged, case, diacritics, scripts, exclusions, word boundaries."""

from __future__ import annotations

import datetime

import pytest

from schemas import Mention
from schemas.config import parse_config
from transforms.matching import BrandMatcher, MatchBrandsFn, normalize

CONFIG = parse_config({"brands": [
    {"id": "sprite", "names": ["Sprite", "Спрайт"], "handles": ["Sprite"], "hashtags": ["Sprite"],
     "exclude": ["fairy sprite"], "competitors": ["cocacola"]},
    {"id": "cocacola", "names": ["Coca-Cola", "Coke", "Кока-Кола"], "handles": ["CocaCola"],
     "competitors": ["sprite"]},
    {"id": "podravka", "names": ["Čokolino", "Podravka"]},
    {"id": "apple", "names": ["Apple"], "handles": ["Apple"], "exclude": ["apple pie", "apple juice"]},
]})


@pytest.fixture(scope="module")
def matcher():
    return BrandMatcher(CONFIG)


@pytest.mark.parametrize("text, expected", [
    ("I love Sprite", {("sprite", "untagged", "Sprite")}),
    ("SPRITE!!!", {("sprite", "untagged", "Sprite")}),
    ("sprite, coke and fanta", {("sprite", "untagged", "Sprite"), ("cocacola", "untagged", "Coke")}),
    ("@Sprite where is my order", {("sprite", "tagged", "@Sprite")}),
    ("#sprite summer", {("sprite", "tagged", "#Sprite")}),
    # Tagged wins when a post both tags and names the brand.
    ("Sprite is great @sprite", {("sprite", "tagged", "@Sprite")}),
    ("Спрайт или кока-кола?", {("sprite", "untagged", "Спрайт"), ("cocacola", "untagged", "Кока-Кола")}),
    ("СПРАЙТ", {("sprite", "untagged", "Спрайт")}),
    ("Coca-Cola, please", {("cocacola", "untagged", "Coca-Cola")}),
    ("@CocaCola reply please", {("cocacola", "tagged", "@CocaCola")}),
    # Diacritics typed or omitted.
    ("cokolino za doručak", {("podravka", "untagged", "Čokolino")}),
    ("ČOKOLINO", {("podravka", "untagged", "Čokolino")}),
    ("Čokolino je najbolji", {("podravka", "untagged", "Čokolino")}),
    # Exclusions cancel only the match inside the phrase.
    ("a fairy sprite in the woods", set()),
    ("a fairy sprite drinking a Sprite", {("sprite", "untagged", "Sprite")}),
    ("grandma's apple pie", set()),
    ("apple pie and a new Apple laptop", {("apple", "untagged", "Apple")}),
    ("@Apple pie", {("apple", "tagged", "@Apple")}),  # a tag is explicit: no exclusion applies
    # Not inside other words or handles.
    ("my spritesheet is ready", set()),
    ("pineapple juice", set()),
    ("@SpriteFan says hi", set()),
    ("email sprite@example.com", set()),
    ("nothing here", set()),
])
def test_match(matcher, text, expected):
    assert {(m.brand_id, m.kind, m.term) for m in matcher.match(text)} == expected


def test_normalize_folds_case_diacritics_and_spaces():
    assert normalize("  Čokolino\tĐAK   Ёлка ") == "cokolino dak елка"


def _mention(text):
    return Mention(id="1", platform="x", created_at=datetime.datetime(2026, 9, 7, tzinfo=datetime.timezone.utc),
                   text=text, lang=None, url=None, author_id=None, author_handle=None, author_followers=None,
                   is_repost=None, repost_of=None, is_reply=None, reply_to=None, is_quote=None, quote_of=None,
                   conversation_id=None, likes=None, reposts=None, replies=None, quotes=None, impressions=None,
                   bookmarks=None, fetched_at=None, connector="file", query=None)


def test_dofn_routes_matched_and_unmatched():
    fn = MatchBrandsFn(CONFIG)
    fn.setup()
    (matched,) = list(fn.process(_mention("Sprite vs Coke")))
    mention, matches = matched
    assert mention.text == "Sprite vs Coke" and [m.brand_id for m in matches] == ["sprite", "cocacola"]
    (unmatched,) = list(fn.process(_mention("just water")))
    assert unmatched.tag == MatchBrandsFn.UNMATCHED and unmatched.value.text == "just water"
