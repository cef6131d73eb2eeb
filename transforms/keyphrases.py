"""Key phrases: the words and short phrases that set a group of posts apart from a baseline.

Used by the alerts (`transforms.alerts`) to say what an alert's negative posts are about.

- **Tokens**: links, @handles and numbers are removed; punctuation, emoji, digits and
  line breaks end a phrase; "#tags" keep their word.
- **Stop words**: per-language lists of function words and social-media filler
  (`transforms/stopwords/<lang>.txt`: en, ru, uk, hr, sr, bs; Serbian and Bosnian also
  in Cyrillic, transliterated at load). Every list applies to every post (posts mix
  languages, and the reported language is often missing or wrong); the lists hold
  function words only, so that "work", "money", "help" or "деньги" are never removed.
- **Word forms**: a token is keyed by its stem, folded (case and diacritics): the
  Snowball stemmers for English, Russian and Serbian (which also serves Croatian and
  Bosnian, and reads Serbian Cyrillic as Latin), and a light suffix stripper for
  Ukrainian, chosen by the post's language (its `lang`, else guessed from its letters
  and stop words) and each word's script. "доставка", "доставки", "доставку" are one key;
  a phrase is shown in its most frequent written form.
- **Phrases**: unigrams of 3+ letters that are not stop words, and bigrams and trigrams
  that neither start nor end with a stop word (a negation may start one: "не работает",
  "not working", "ne radi"). A phrase with a word of the brand's own names is left out.
- **Ranking**: the log-odds ratio of a phrase's document rate in the group against the
  baseline, with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008,
  "Fightin' Words"), divided by its standard error (a z-score): frequent filler that the
  baseline uses as much scores near 0, a complaint the baseline lacks scores high.
  A phrase needs `MIN_SUPPORT` posts of the group; a shorter phrase that a kept longer
  one covers with nearly the same support is folded into it ("double charged" over
  "charged").

Pure Python: importing this module loads no model.
"""

from __future__ import annotations

import collections
import functools
import math
import pathlib
import re
import threading
import typing

import snowballstemmer

from transforms.inflection import fold, serbian_transliteration

LANGUAGES = ("en", "ru", "uk", "hr", "sr", "bs")
# Reported codes read as one of LANGUAGES (Serbo-Croatian, Montenegrin).
_ALIASES = {"sh": "sr", "cnr": "sr", "me": "sr", "srp": "sr", "hrv": "hr", "bos": "bs", "ukr": "uk", "rus": "ru",
            "eng": "en"}
_STOPWORD_DIR = pathlib.Path(__file__).with_name("stopwords")
_CYRILLIC_TRANSLITERATED = ("sr", "bs")

MIN_SUPPORT = 2  # a phrase listed for a group is used by at least this many of its posts
MIN_LETTERS = 3  # a unigram has at least this many letters
MAX_WORDS = 3  # phrases of 1 to 3 words
PRIOR = 10.0  # the Dirichlet prior's weight, in documents: how far small counts are pulled to the pooled rate
MIN_Z = 1.0  # a key phrase is at least one standard error more frequent in the group than in the baseline
COVERED = 0.7  # a shorter phrase is covered by a longer one used by at least 70% as many posts
LOOK_AHEAD = 4  # ranking stops once this many times the wanted phrases are kept

_URL = re.compile(r"(?:\bhttps?://|\bwww\.)\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<![\w@])@\w{1,50}")
# A word (letters, with inner apostrophes: "don't", "iPhone's"), or any other visible character (a boundary).
_TOKEN = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*|[^\s#]")


def _load(lang: str) -> frozenset[str]:
    words = []
    for line in (_STOPWORD_DIR / f"{lang}.txt").read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            words += line.split()
    if lang in _CYRILLIC_TRANSLITERATED:
        words += [t for t in (serbian_transliteration(w) for w in words) if t]
    return frozenset(fold(w).replace("'", "") for w in words)


STOP_WORDS: dict[str, frozenset[str]] = {lang: _load(lang) for lang in LANGUAGES}
ALL_STOP_WORDS = frozenset().union(*STOP_WORDS.values())
# Words that may start a phrase though they are stop words: "не работает", "not working", "ne radi".
NEGATIONS = frozenset(fold(w).replace("'", "") for w in """
    not no never don't doesn't didn't can't cannot won't isn't wasn't aren't weren't haven't hasn't
    не нет ни никогда ніколи немає ні ne ni nije nisu nisam nema neće nikad nikada није нису нисам нема неће
""".split())

_UK_LETTERS, _RU_LETTERS, _SR_LETTERS = frozenset("іїєґ"), frozenset("ыэъё"), frozenset("ђјљњћџ")
_BCS_LATIN = frozenset("čćšžđ")
_STEMMER = {"en": "english", "ru": "russian", "hr": "serbian", "sr": "serbian", "bs": "serbian"}
# A Snowball stemmer keeps its word in itself while it works: one per thread (workers run bundles in threads).
_STEMMERS = threading.local()
# Ukrainian endings (nouns, adjectives, verbs), longest first; the reflexive -ся/-сь is cut before them.
_UK_ENDINGS = tuple(sorted(set("""
    ами ями ові еві єві ах ях ів їв ою ею єю ам ям ом ем им ім их іх ий ій ого ому ої ая яя ую юю
    а я у ю і ї е є о и ь
    ували увала ував ують ується уються ються еться ться ити ати яти іти ила ило или ала али ало ли ла ло
    ить ать ять уть ють ть ти в
""".split()), key=len, reverse=True))


def _is_cyrillic(word: str) -> bool:
    return any("\u0400" <= c <= "\u04ff" for c in word)


def language(words: typing.Sequence[str], reported: str | None) -> str:
    """The language whose stemmer a post's words get: its reported one if known here, else a guess.

    Args:
        words: The post's words, lower case.
        reported: The post's `lang` (ISO 639-1, may be None or any other code).

    Returns:
        One of LANGUAGES: the reported language, or the one of the post's main script with the
        most of its letters (і ї є ґ: uk; ђ ј љ њ ћ џ or č ć š ž đ: sr) or stop words; ties go to
        ru (Cyrillic) and en (Latin).
    """
    if reported:
        code = reported.lower().replace("_", "-").split("-")[0]
        code = _ALIASES.get(code, code)
        if code in LANGUAGES:
            return code
    cyrillic = sum(_is_cyrillic(w) for w in words)
    letters = set("".join(words))
    if cyrillic * 2 > len(words):
        if letters & _UK_LETTERS:
            return "uk"
        if letters & _SR_LETTERS:
            return "sr"
        candidates = ("ru", "uk", "sr")
    else:
        candidates = ("sr", "hr", "bs") if letters & _BCS_LATIN else ("en", "hr", "sr", "bs")
    folded = [fold(w).replace("'", "") for w in words]
    return max(candidates, key=lambda c: (sum(w in STOP_WORDS[c] for w in folded), -candidates.index(c)))


def _stem_uk(word: str) -> str:
    for reflexive in ("ся", "сь"):
        if word.endswith(reflexive) and len(word) - 2 >= MIN_LETTERS:
            word = word[:-2]
            break
    for ending in _UK_ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= MIN_LETTERS:
            return word[:-len(ending)]
    return word


@functools.lru_cache(maxsize=200_000)
def stem(word: str, lang: str) -> str:
    """The folded stem of one lower-case word, by the stemmer of its script in a post of `lang`.

    A Latin word in a Russian or Ukrainian post is stemmed as English, a Cyrillic word in an
    English or Croatian post as Russian (or Serbian when the post is Serbian or Bosnian).
    """
    if _is_cyrillic(word):
        lang = lang if lang in ("ru", "uk", "sr", "bs") else "ru"
    else:
        lang = lang if lang in ("en", "hr", "sr", "bs") else "en"
    word = word.replace("\u2019", "'")
    if lang == "uk":
        out = _stem_uk(word)
    else:
        name = _STEMMER[lang]
        stemmer = getattr(_STEMMERS, name, None)
        if stemmer is None:
            stemmer = snowballstemmer.stemmer(name)
            setattr(_STEMMERS, name, stemmer)
        out = stemmer.stemWord(word)
    return fold(out).replace("'", "")


def _segments(text: str) -> typing.Iterator[list[str]]:
    """Runs of words (lower case) between boundaries: links, handles, punctuation, digits, emoji."""
    text = _HANDLE.sub(" . ", _URL.sub(" . ", text))
    run: list[str] = []
    for token in _TOKEN.findall(text):
        if token[0].isalpha():
            run.append(token.lower())
        elif run:
            yield run
            run = []
    if run:
        yield run


def is_brand_word(folded: str, brand_words: typing.Sequence[str]) -> bool:
    """Whether a folded word is (an inflected form of) one of the brand's folded name words."""
    return any(folded.startswith(b) for b in brand_words)


def phrases_of(text: str, lang: str | None = None,
               brand_words: typing.Sequence[str] = ()) -> dict[str, str]:
    """The distinct phrases of one post: key (stems, space-separated) -> the form written first.

    Args:
        text: The post's text.
        lang: Its reported language (None if unknown).
        brand_words: Folded words of the brand's names; a phrase containing one is left out.

    Returns:
        {"double charg": "double charged", "доставк опозда": "доставка опоздала", ...}, in order of use.
    """
    runs = list(_segments(text))
    post_lang = language([w for run in runs for w in run], lang)
    out: dict[str, str] = {}
    for run in runs:
        folded = [fold(w).replace("'", "") for w in run]
        keys = [stem(w, post_lang) for w in run]
        stop = [f in ALL_STOP_WORDS for f in folded]
        brand = [is_brand_word(f, brand_words) for f in folded]
        for i in range(len(run)):
            if brand[i] or (stop[i] and folded[i] not in NEGATIONS):
                continue  # a phrase starts with a content word or a negation
            for n in range(1, MAX_WORDS + 1):
                j = i + n
                if j > len(run) or brand[j - 1]:
                    break
                if stop[j - 1] or (n == 1 and sum(c.isalpha() for c in run[i]) < MIN_LETTERS):
                    continue  # a phrase ends with a content word; a unigram has 3+ letters
                out.setdefault(" ".join(keys[i:j]), " ".join(run[i:j]))
    return out


class Scored(typing.NamedTuple):
    """One key phrase: its key, its z-score, how many of the group's posts use it, its baseline rate."""

    key: str
    z: float
    support: int
    baseline_rate: float | None


def log_odds_z(y_group: int, n_group: int, y_base: float, n_base: float, prior: float = PRIOR
               ) -> tuple[float, float]:
    """Log-odds ratio of a phrase's document rate in the group against the baseline, and its z-score.

    The prior is the pooled rate times `prior` documents (Monroe et al. 2008, eq. 16-22, on
    document counts): delta = logit((y_g + a) / (n_g + prior)) - logit((y_b + a) / (n_b + prior)).

    Args:
        y_group: Posts of the group using the phrase.
        n_group: Posts of the group.
        y_base: Posts of the baseline using it.
        n_base: Posts of the baseline.
        prior: The prior's weight in documents.

    Returns:
        (delta, delta / its standard error).
    """
    pooled = (y_group + y_base) / max(n_group + n_base, 1)
    a, b = prior * pooled, prior * (1 - pooled)
    # Half a document at least on each side: a phrase in every post of both groups has no odds otherwise.
    p1, q1 = max(y_group + a, 0.5), max(n_group - y_group + b, 0.5)
    p2, q2 = max(y_base + a, 0.5), max(n_base - y_base + b, 0.5)
    delta = math.log(p1 / q1) - math.log(p2 / q2)
    return delta, delta / math.sqrt(1 / p1 + 1 / q1 + 1 / p2 + 1 / q2)


def _covers(longer: str, shorter: str) -> bool:
    a, b = longer.split(" "), shorter.split(" ")
    return len(a) > len(b) and any(a[i:i + len(b)] == b for i in range(len(a) - len(b) + 1))


def rank(group: typing.Mapping[str, int], n_group: int, baseline: typing.Mapping[str, float], n_base: float,
         top_n: int, min_support: int = MIN_SUPPORT, min_z: float = MIN_Z) -> list[Scored]:
    """The group's key phrases, best first.

    Args:
        group: Phrase key -> posts of the group using it.
        n_group: Posts of the group.
        baseline: Phrase key -> posts of the baseline using it (the group's own posts not included).
        n_base: Posts of the baseline; 0 when there is none (then the most used phrases, by support).
        top_n: How many to return at most.
        min_support: Posts of the group a phrase needs.
        min_z: The z-score a phrase needs (ignored without a baseline).

    Returns:
        Up to `top_n` Scored phrases, by z-score (then support, then key), none covered by another.
    """
    scored = []
    for key, y in group.items():
        if y < min_support:
            continue
        if n_base > 0:
            y_base = min(baseline.get(key, 0), n_base)
            _delta, z = log_odds_z(y, n_group, y_base, n_base)
            if z < min_z:
                continue
            scored.append(Scored(key, z, y, y_base / n_base))
        else:
            scored.append(Scored(key, float(y), y, None))
    scored.sort(key=lambda s: (-s.z, -s.support, s.key))
    kept: list[Scored] = []
    for cand in scored:
        if any(_covers(k.key, cand.key) and k.support >= COVERED * cand.support for k in kept):
            continue
        # A longer phrase with nearly the support of kept shorter ones takes the first one's place.
        shorter = [i for i, k in enumerate(kept) if _covers(cand.key, k.key) and cand.support >= COVERED * k.support]
        if shorter:
            kept[shorter[0]] = cand
            kept = [k for i, k in enumerate(kept) if i not in shorter[1:]]
        else:
            kept.append(cand)
        # Lower-ranked longer phrases may still take the place of kept ones: look a little past top_n.
        if len(kept) >= LOOK_AHEAD * top_n:
            break
    return kept[:top_n]


def most_frequent_forms(forms: typing.Mapping[tuple[str, str], int]) -> dict[str, str]:
    """Phrase key -> its most used written form (ties: the alphabetically first), from (key, form) counts."""
    best: dict[str, tuple[int, str]] = {}
    for (key, form), n in forms.items():
        if key not in best or (-n, form) < (-best[key][0], best[key][1]):
            best[key] = (n, form)
    return {key: form for key, (_n, form) in best.items()}


def bounded(counter: collections.Counter, limit: int) -> collections.Counter:
    """Keeps a counter under `limit` keys: past it, only the `limit // 2` most common stay (in place)."""
    if len(counter) > limit:
        keep = counter.most_common(limit // 2)
        counter.clear()
        counter.update(dict(keep))
    return counter
