"""Stance toward each brand of a post naming several, and the target marking the training data uses.

Stance (what the job does, :mod:`transforms.scoring`): :func:`plan` decides for each brand where
its label comes from. A comparison cue (:data:`PAIR_CUES`, :data:`TARGET_CUES`: one small table
of patterns per language, en, ru, uk, hr and sr in both scripts) makes the winner of "Bolt > Uber",
"switched from X to Y", "лучше чем", "гірший за", "jeftiniji od", "прешао са X на Y" positive and
the loser negative, gives both brands of "X is as bad as Y", "и X и Y" the post's label (or, where
both stand in one clause that says enough, that clause's, scored as below), and makes
a brand that could not serve ("DoorDash didn't have the place", "Glovo bio zatvoren", "в Ozon не
было размера") neutral, the others keeping the post's label; a brand not tried yet ("never tried
Lyft", "Rocket я ще не пробувала") is neutral too, the others left to their clauses. Where no word
cue reads the post, a
comparison of figures (:func:`figures`: "HT 45 eura, A1 za 30") makes the lower positive and the
higher negative (all :data:`COMPARISON`). Else the clause of the post naming the brand
(:func:`segments`: sentence ends, commas, dashes, "vs", "but", "но", "а", "але", "ali", "dok",
"али") is scored as an ordinary text, and :func:`resolve` takes its label unless the model reads
it as neutral; a neutral reading counts only for a conceded clause ("we have X for the kids, but
..."; :func:`conceded`, :data:`CONCEDED_NEUTRAL`) (:data:`SEGMENT`). Else, and where the clause is
too short to say anything or read as neutral, the post's own label (:data:`POST`). No model reads
marks: a clause is a plain text to every backend.

Target marking (:func:`mark_target`, :func:`find_target`): the hand-written training examples
mark their brand's span ("[[Bolt]] > Uber in Tallinn", :mod:`models.train_head`); the job does
not score marked texts.

Pure Python: importing this module loads no model.
"""

from __future__ import annotations

import functools
import re
import typing
import unicodedata
from collections.abc import Mapping, Sequence

TARGET_OPEN = "[["
TARGET_CLOSE = "]]"


def mark_target(text: str, start: int, end: int) -> str:
    """Wraps ``text[start:end]`` in the target markers.

    Args:
        text: The post.
        start: First character of the target.
        end: One past its last character.

    Returns:
        The text with the markers inserted.

    Raises:
        ValueError: When the span is empty or outside the text.
    """
    if not 0 <= start < end <= len(text):
        raise ValueError(f"target span [{start}, {end}) is not inside a text of {len(text)} characters")
    return f"{text[:start]}{TARGET_OPEN}{text[start:end]}{TARGET_CLOSE}{text[end:]}"


def _fold_char(ch: str) -> str:
    # One character in, at most one out: offsets in the folded text are offsets in the original.
    base = unicodedata.normalize("NFD", ch)[:1] or ch
    folded = base.casefold()
    return folded if len(folded) == 1 else ch.lower()[:1] or ch


def _fold(text: str) -> str:
    return "".join(_fold_char(ch) for ch in text)


def find_target(text: str, name: str) -> tuple[int, int] | None:
    """Finds where a post names a target: the first whole-word occurrence, with its inflected ending.

    Case and diacritics are ignored ("zaru" finds "Zaru"); the match starts a word and
    runs to the word's end, so an inflected form is marked whole ("Spriteom", "Uberu").

    Args:
        text: The post.
        name: The name as written in a config or label ("Bolt", "@Bolt", "#bolt").

    Returns:
        ``(start, end)`` of the span in ``text``, or None when the name does not occur.
    """
    needle = _fold(name.strip())
    if not needle:
        return None
    haystack = _fold(text)
    at = haystack.find(needle)
    while at >= 0:
        before = text[at - 1] if at else " "
        if not (before.isalnum() or before == "_"):
            end = at + len(needle)
            while end < len(text) and (text[end].isalnum() or text[end] == "_"):
                end += 1
            return at, end
        at = haystack.find(needle, at + 1)
    return None


# ---- stance toward each brand: segments and comparison cues ----------------------------------------------

POST, SEGMENT, COMPARISON = "post", "segment", "comparison"  # where a brand's label came from
FIRST, SECOND, SAME = "first", "second", "same"  # a pair cue's outcome: who wins, or both alike

# A clause ends at sentence punctuation or a comma followed by a space (not "3.500", "M.Video"),
# at a dash between spaces, at a comparison sign, and at the contrast words of each language.
_PUNCT_BREAK = r"[.!?;:,\n]+(?=\s|$)|\s[-–—]+\s|[<>→]|\bvs\b\.?|\bversus\b"
_CONTRAST = {
    "en": ("but", "while", "whereas", "though", "although", "yet"),
    "ru": ("но", "а", "зато", "хотя", "однако", "тогда как"),
    "uk": ("але", "а", "зате", "проте", "хоча", "однак"),
    "hr": ("ali", "a", "dok", "no", "međutim", "medjutim"),
    "sr": ("ali", "a", "dok", "no", "međutim", "али", "а", "док", "но", "међутим"),
}
# Words that are clause breaks in one language and ordinary words in another ("a" is an article in English):
# with no language given, only the words no other language uses.
_SHARED_CONTRAST = ("but", "while", "whereas", "но", "зато", "хотя", "однако", "але", "зате", "проте", "ali",
                    "dok", "međutim", "али", "док", "међутим")
MIN_SEGMENT_WORDS = 2  # a segment with fewer words besides the brands says too little: the post's label


def _contrast_words(lang: str | None) -> tuple[str, ...]:
    return _CONTRAST.get(lang or "", _SHARED_CONTRAST)


@functools.lru_cache(maxsize=None)
def _contrast_pattern(lang: str | None) -> re.Pattern:
    words = "|".join(re.escape(w) for w in sorted(_contrast_words(lang), key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{words})(?!\w)", re.IGNORECASE)


@functools.lru_cache(maxsize=None)
def _break_pattern(lang: str | None) -> re.Pattern:
    words = "|".join(re.escape(w) for w in sorted(_contrast_words(lang), key=len, reverse=True))
    return re.compile(rf"{_PUNCT_BREAK}|(?<!\w)(?:{words})(?!\w)", re.IGNORECASE)


def segments(text: str, lang: str | None = None) -> list[tuple[int, int]]:
    """Splits a post into clauses: ``(start, end)`` offsets into ``text``, whitespace trimmed, none empty.

    Args:
        text: The post.
        lang: Its language (``en``, ``ru``, ``uk``, ``hr``, ``sr``; ``bs`` reads as ``hr``); with
            another or none, only the breaks no language reads differently.

    Returns:
        The segments in order; the whole text as one when nothing breaks it.
    """
    out, start = [], 0
    for m in _break_pattern(_LANG_TABLE.get(lang or "", lang)).finditer(text):
        out.append((start, m.start()))
        start = m.end()
    out.append((start, len(text)))
    trimmed = []
    for s, e in out:
        while s < e and not (text[s].isalnum() or text[s] in "@#"):
            s += 1
        while e > s and not (text[e - 1].isalnum() or text[e - 1] in "+&!?)"):
            e -= 1
        if s < e:
            trimmed.append((s, e))
    return trimmed


# Comparison cues, per language. A pair cue reads the words before the first brand in its clause (`pre`)
# and the words between the two brands (`mid`); both patterns must match (None: anything). A target cue
# reads the words around one brand in its clause and gives that brand a label; a relative target cue
# (a comparative: "Plodine imaju puno bolje") gives every other brand of the post the opposite.
_BETTER = {
    "en": r"\b(?:better|cheaper|faster|nicer|tastier|more reliable|beats?|wins? over)\b|>",
    "ru": r"(?<!\w)(?:лучше|дешевле|быстрее|вкуснее|надёжнее|надежнее|удобнее|стабильнее|круче)(?!\w)",
    "uk": r"(?<!\w)(?:кращ\w*|дешевш\w*|швидш\w*|смачніш\w*|надійніш\w*|зручніш\w*|стабільніш\w*)",
    "hr": r"(?<!\w)(?:bolj\w*|jeftinij\w*|brž\w*|brz[ie]\w*|ukusnij\w*|pouzdanij\w*|stabilnij\w*)",
    "sr": r"(?<!\w)(?:bolj\w*|jeftinij\w*|brž\w*|ukusnij\w*|pouzdanij\w*|stabilnij\w*|бољ\w*|јефтиниј\w*"
          r"|бржи\w*|укусниј\w*|поузданиј\w*|стабилниј\w*)",
}
_WORSE = {
    "en": r"\b(?:worse|pricier|slower|more expensive|loses? to)\b|<",
    "ru": r"(?<!\w)(?:хуже|дороже|медленнее|менее)(?!\w)",
    "uk": r"(?<!\w)(?:гірш\w*|дорожч\w*|повільніш\w*)",
    "hr": r"(?<!\w)(?:gor[ia]\w*|skuplj\w*|sporij\w*|lošij\w*|losij\w*)",
    "sr": r"(?<!\w)(?:gor[ia]\w*|skuplj\w*|sporij\w*|lošij\w*|гор[иа]\w*|скупљ\w*|спориј\w*|лошиј\w*)",
}
# "switched from X to Y", "ушёл с X на Y": the words before X and between the brands.
_FROM = {
    "en": (r"\b(?:switch\w*|mov\w*|went|go|going|chang\w*|port\w*|left)\b.*\bfrom\s*$", r"^\s*(?:to|for)\b"),
    "ru": (r"(?:переш\w*|ушё?л\w*|уш\w*|перев\w*|переех\w*|перебрал\w*|сменил\w*|ухож\w*|перейд\w*)"
           r".*(?<!\w)(?:с|со|из|от)\s*$", r"^\s*(?:на|в|во)(?!\w)"),
    "uk": (r"(?:перейш\w*|перейшл\w*|переш\w*|пішл\w*|пішов|перев\w*|переїх\w*|змінил\w*)"
           r".*(?<!\w)(?:з|із|зі|від)\s*$", r"^\s*(?:на|в|у)(?!\w)"),
    "hr": (r"(?:prešl\w*|prešao|presl\w*|presao|prebac\w*|otiš\w*|otis\w*|preš\w*).*(?<!\w)(?:s|sa|iz|od)\s*$",
           r"^\s*(?:na|u)(?!\w)"),
    "sr": (r"(?:прешa?\w*|пребац\w*|отиш\w*|prešl\w*|prešao|prebac\w*|otiš\w*).*(?<!\w)(?:с|са|из|од|s|sa|iz|od)\s*$",
           r"^\s*(?:на|у|na|u)(?!\w)"),
}
# "back to X after Y", "вернулся на X после Y": the first brand wins.
_BACK_TO = {
    "en": r"\bback to\s*$",
    "ru": r"(?:вернул\w*)\s+(?:на|в|к)\s*$",
    "uk": r"(?:повернул\w*|повернув\w*)\s+(?:на|в|до)\s*$",
    "hr": r"(?:vratio|vratila|vratili)\s+(?:sam\s+|smo\s+)?se\s+(?:na|u)\s*$",
    "sr": r"(?:vratio|vratila|вратио|вратила)\s+(?:sam\s+|сам\s+)?(?:se|се)\s+(?:na|u|на|у)\s*$",
}
# "after X I took Y", "після X взяв Y": the second wins.
_AFTER = {
    "en": r"\bafter\s*$", "ru": r"(?<!\w)после\s*$", "uk": r"(?<!\w)після\s*$",
    "hr": r"(?<!\w)nakon\s*$", "sr": r"(?<!\w)(?:posle|nakon|после|након)\s*$",
}
# "X instead of Y", "X umjesto Y": the first wins.
_INSTEAD = {
    "en": r"\binstead of\b|\brather than\b", "ru": r"(?<!\w)вместо(?!\w)|(?<!\w)а не(?!\w)",
    "uk": r"(?<!\w)замість(?!\w)|(?<!\w)а не(?!\w)", "hr": r"(?<!\w)umjesto(?!\w)|(?<!\w)a ne(?!\w)",
    "sr": r"(?<!\w)(?:umesto|уместо|umjesto)(?!\w)|(?<!\w)(?:a ne|а не)(?!\w)",
}
# "X is as bad as Y", "что X, что Y", "i X i Y": both alike (the post's label for both).
_ALIKE_MID = {
    "en": r"\bas (?:bad|good|slow|expensive|useless) as\b|\bsame as\b|\bjust like\b",
    "ru": r"(?<!\w)(?:как и|так же как)(?!\w)", "uk": r"(?<!\w)(?:як і|так само як)(?!\w)",
    "hr": r"(?<!\w)(?:kao i|isto kao)(?!\w)", "sr": r"(?<!\w)(?:kao i|isto kao|као и|исто као)(?!\w)",
}
_ALIKE_PRE = {
    "en": r"\bboth\s*$", "ru": r"(?<!\w)(?:что|и)\s*$", "uk": r"(?<!\w)(?:і|й|и|що)\s*$",
    "hr": r"(?<!\w)i\s*$", "sr": r"(?<!\w)(?:i|и)\s*$",
}
# Target cues: a verb of leaving or joining right before the brand.
_LEFT = {
    "en": r"\b(?:cancel+ed|quit|ditch(?:ed)?|dropp?ed|bye(?: bye)?|left|unsubscribed from)\s*$",
    "ru": r"(?:отписал\w*\s+от|отказал\w*\s+от|ушё?л\w*\s+(?:с|из|от)|удалил\w*|прощай)\s*$",
    "uk": r"(?:відписал\w*\s+від|відмовил\w*\s+від|пішл?\w*\s+(?:з|від)|видалил\w*|прощавай)\s*$",
    "hr": r"(?:otkaza\w*|izbaci\w*|bye(?: bye)?|adio|zbogom)\s*$",
    "sr": r"(?:otkaza\w*|izbaci\w*|ugasi\w*|угаси\w*|отказа\w*|ćao|ћао|bye)\s*$",
}
_JOINED = {
    "en": r"\b(?:switched to|moved to|went with|sticking with|kept|back to)\s*$",
    "ru": r"(?:переш\w*|ухож\w*|переех\w*|подписал\w*)\s+(?:на|в)\s*$",
    "uk": r"(?:перейш\w*|переш\w*|переїх\w*|підписал\w*)\s+(?:на|в)\s*$",
    "hr": r"(?:prešl?\w*|presl?\w*|prebac\w*\s+se|ostavi\w*)\s+(?:na|u)?\s*$",
    "sr": r"(?:прешл?\w*|пребац\w*\s+се|prešl?\w*|prebac\w*\s+se|задржа\w*|zadrža\w*)\s*(?:на|у|na|u)?\s*$",
}
# "DoorDash didn't have the place", "Glovo bio zatvoren", "в Ozon не было размера": a brand that could not serve
# is a fact, not a verdict (neutral); the brand the post went to instead keeps the post's label.
_UNAVAILABLE = {
    "en": r"^\s*(?:(?:didn'?t|did not) have|had no|(?:was|were) (?:out of|closed|shut|down)\b)",
    "ru": r"^\s*(?:не было|был\w* закрыт\w*|не работал\w*)(?!\w)",
    "uk": r"^\s*(?:не було|був\w* зачинен\w*|не працював\w*)(?!\w)",
    "hr": r"^\s*(?:(?:je\s+)?bi[ol]\w* zatvoren\w*|nije radi\w*|nije imao|nisu imali)(?!\w)",
    "sr": r"^\s*(?:(?:je\s+)?bi[ol]\w* zatvoren\w*|nije radi\w*|nije imao|(?:је\s+)?би[ол]\w* затворен\w*"
          r"|није ради\w*|није имао)(?!\w)",
}
# "Verizon I don't know, never tried" (its clause: "Verizon I don't know"), "Rocket я ще не пробувала",
# "nisam probao Wolt": a brand the writer has not tried gets no verdict (neutral); unlike a brand that could
# not serve, it says nothing about the other brands.
_UNTRIED_POST = {
    "en": r"^\W*(?:i\s+)?(?:(?:(?:don'?t|do not) know|dunno)|(?:(?:(?:don'?t|do not) know|dunno)\W*)?(?:i\s+)?"
          r"(?:never|haven'?t|have not|didn'?t|not yet)\s+(?:tried|try|used)(?:\s+(?:it|them|yet))?)\W*$",
    "ru": r"^\W*(?:я\s+)?(?:(?:ещё|еще|пока)\s+)?не\s+(?:пробовал|пользовал)\w*(?:\s+(?:ещё|еще))?\W*$",
    "uk": r"^\W*(?:я\s+)?(?:(?:ще|поки)\s+)?не\s+(?:пробував|пробувал|користувал)\w*(?:\s+ще)?\W*$",
    "hr": r"^\W*(?:(?:još|jos)\s+)?nisam\s+(?:(?:još|jos)\s+)?(?:proba|koristi)\w*(?:\s+(?:još|jos))?\W*$",
    "sr": r"^\W*(?:(?:još|jos|још)\s+)?(?:nisam|нисам)\s+(?:(?:još|jos|још)\s+)?(?:proba|koristi|проба|користи)\w*"
          r"(?:\s+(?:još|jos|још))?\W*$",
}
_UNTRIED_PRE = {
    "en": r"\b(?:never|haven'?t|have not|not yet)\s+(?:tried|used)\s*$",
    "ru": r"(?:^|\s)не\s+(?:пробовал|пользовал)\w*(?:\s+(?:ещё|еще))?\s*$",
    "uk": r"(?:^|\s)не\s+(?:пробував|пробувал|користувал)\w*(?:\s+ще)?\s*$",
    "hr": r"\bnisam\s+(?:(?:još|jos)\s+)?(?:probao|probala|koristio|koristila)\s*$",
    "sr": r"(?:^|\s)(?:nisam|нисам)\s+(?:(?:još|jos|још)\s+)?(?:probao|probala|koristio|koristila|пробао|пробала"
          r"|користио|користила)\s*$",
}
_LANG_TABLE = {"bs": "hr", "sh": "hr", "cnr": "sr", "me": "sr"}
# A pair cue: (pre, mid, outcome); a target cue: (pre, post, label, relative).
PAIR_CUES: dict[str, tuple[tuple[str | None, str | None, str], ...]] = {
    lang: ((None, _BETTER[lang], FIRST), (None, _WORSE[lang], SECOND), (_FROM[lang][0], _FROM[lang][1], SECOND),
           (_BACK_TO[lang], None, FIRST), (_AFTER[lang], None, SECOND), (None, _INSTEAD[lang], FIRST),
           (None, _ALIKE_MID[lang], SAME), (_ALIKE_PRE[lang], None, SAME))
    for lang in _CONTRAST
}
# "glovo forgot my drink twice, wolt never": an elliptic "never" after a brand spares it what the other did.
_NEVER = {
    "en": r"^\W*(?:never|not once)\W*$", "ru": r"^\W*(?:никогда|ни разу)\W*$", "uk": r"^\W*(?:ніколи|жодного разу)\W*$",
    "hr": r"^\W*(?:nikad|nikada|nijednom)\W*$", "sr": r"^\W*(?:nikad|nikada|никад|никада|nijednom|ниједном)\W*$",
}
TARGET_CUES: dict[str, tuple[tuple[str | None, str | None, str, bool], ...]] = {
    lang: ((_LEFT[lang], None, "negative", False), (_JOINED[lang], None, "positive", False),
           (None, _UNAVAILABLE[lang], "neutral", True),
           (None, _UNTRIED_POST[lang], "neutral", False), (_UNTRIED_PRE[lang], None, "neutral", False),
           (None, _NEVER[lang], "positive", True),
           (None, rf"^[^<>]*?(?:{_BETTER[lang]})", "positive", True),
           (None, rf"^[^<>]*?(?:{_WORSE[lang]})", "negative", True))
    for lang in _CONTRAST
}
_MAX_MID_CHARS = 60  # a pair cue reads the words between brands only when they are this close
_MID_BREAK = re.compile(r"[.!?;\n]")


def _compile(pattern: str | None) -> re.Pattern | None:
    return None if pattern is None else re.compile(pattern, re.IGNORECASE)


_PAIR = {lang: tuple((_compile(p), _compile(m), o) for p, m, o in cues) for lang, cues in PAIR_CUES.items()}
_TARGET = {lang: tuple((_compile(p), _compile(q), label, rel) for p, q, label, rel in cues)
           for lang, cues in TARGET_CUES.items()}
_OPPOSITE = {"positive": "negative", "negative": "positive", "neutral": None}  # None: as the post


def _tables(lang: str | None) -> tuple[str, ...]:
    lang = _LANG_TABLE.get(lang or "", lang)
    return (lang,) if lang in _PAIR else tuple(_PAIR)


def _segment_at(segs: Sequence[tuple[int, int]], at: int) -> tuple[int, int]:
    for s, e in segs:
        if s <= at < e:
            return s, e
    return 0, 0


def comparison(text: str, spans: Mapping[str, tuple[int, int]], lang: str | None = None) -> dict[str, str | None]:
    """The labels a comparison cue gives the brands of a post: winner positive, loser negative.

    Args:
        text: The post.
        spans: Brand id -> ``(start, end)`` of where the post names it.
        lang: The post's language; with none or another, every language's cues are tried.

    Returns:
        Brand id -> ``'positive'`` / ``'negative'``, or None for "as the post" (both brands alike:
        "X is as bad as Y"); brands no cue reads are absent.
    """
    order = sorted(spans, key=lambda b: spans[b])
    segs = segments(text, lang)
    out: dict[str, str | None] = {}
    for table in _tables(lang):
        contrast = _contrast_pattern(table)
        for a, b in zip(order, order[1:]):
            (a0, a1), (b0, b1) = spans[a], spans[b]
            mid = text[a1:b0]
            if a1 > b0 or len(mid) > _MAX_MID_CHARS or _MID_BREAK.search(mid) or contrast.search(mid):
                continue
            pre = text[_segment_at(segs, a0)[0]:a0]  # "switched from X": the words of X's own clause
            for pre_re, mid_re, outcome in _PAIR[table]:
                if (pre_re is None or pre_re.search(pre)) and (mid_re is None or mid_re.search(mid)):
                    if outcome == SAME:
                        out.setdefault(a, None)
                        out.setdefault(b, None)
                    else:
                        win, lose = (a, b) if outcome == FIRST else (b, a)
                        out.setdefault(win, "positive")
                        out.setdefault(lose, "negative")
                    break
        if len(out) == len(spans):
            return out
        relative: dict[str, str] = {}
        for brand in order:
            if brand in out:
                continue
            start, end = spans[brand]
            s, e = _segment_at(segs, start)
            pre, post = text[s:start], text[end:e]
            # "X is pricier, but ...": a concession, not a verdict.
            conceded = contrast.match(text, e + len(text[e:]) - len(text[e:].lstrip(" ,;:-–—")))
            for pre_re, post_re, label, rel in _TARGET[table]:
                if rel and conceded:
                    continue
                if (pre_re is None or pre_re.search(pre)) and (post_re is None or post_re.search(post)):
                    out[brand] = label
                    if rel:
                        relative[brand] = label
                    break
        if len(relative) == 1:
            (brand, label), = relative.items()
            for other in order:
                out.setdefault(other, _OPPOSITE[label])
        if out:
            return out
    return out


def brand_segment(text: str, spans: Mapping[str, tuple[int, int]], brand: str,
                  lang: str | None = None) -> tuple[int, int] | None:
    """The clause of ``text`` that names ``brand``, or None when it says too little on its own.

    Too little: fewer than :data:`MIN_SEGMENT_WORDS` words besides the brands it names, or the
    whole post (scoring it again would repeat the post's label).
    """
    start, _end = spans[brand]
    s, e = _segment_at(segments(text, lang), start)
    if e <= s or (s, e) == (0, len(text)) or text[s:e].strip() == text.strip():
        return None
    rest = text[s:e]
    for other_start, other_end in sorted(spans.values(), reverse=True):
        if s <= other_start and other_end <= e:
            rest = rest[:other_start - s] + " " + rest[other_end - s:]
    if len(re.findall(r"\w+", rest)) < MIN_SEGMENT_WORDS:
        return None
    return s, e


def conceded(text: str, end: int, lang: str | None = None) -> bool:
    """Whether the clause ending at ``end`` is followed by a contrast word: "we have X for the kids, but ...".

    Args:
        text: The post.
        end: One past the clause's last character.
        lang: The post's language, or None (then only the words no language reads differently).
    """
    rest = text[end:]
    after = end + len(rest) - len(rest.lstrip(" ,;:-–—"))
    return bool(_contrast_pattern(_LANG_TABLE.get(lang or "", lang)).match(text, after))


class BrandStance(typing.NamedTuple):
    """How one brand of a post gets its label: ``source`` is :data:`COMPARISON` (``label`` set by a cue; None:
    as the post), :data:`SEGMENT` (``segment``, the clause naming it, is scored) or :data:`POST`; ``conceded``:
    the clause is followed by a contrast word (:func:`conceded`)."""

    brand: str
    source: str
    label: str | None = None
    segment: str = ""
    conceded: bool = False  # the clause is the first half of "X ..., but ...": background the post turns from


# A figure after a brand in its clause: "HT me kostao 45 eura", "Lyft said 18", "Starbucks is $7", "u Legendu 8.000";
# its unit is the currency sign before it or the word after it ("eura", "min", "минута").
_FIGURE = re.compile(r"(?P<sign>[$€£₽₴])?\s?(?P<num>\d{1,3}(?:[.,\s]\d{3})+(?!\d)|\d+(?:[.,]\d+)?)(?!\d)"
                     r"(?:\s*(?P<unit>[^\W\d_]+|[$€£₽₴]))?")


def _figure(clause: str) -> tuple[float, str] | None:
    found = list(_FIGURE.finditer(clause))
    if len(found) != 1:
        return None  # none, or several: which one the brand is compared on is a guess
    m = found[0]
    digits = m["num"]
    if re.fullmatch(r"\d{1,3}(?:[.,\s]\d{3})+", digits):
        digits = re.sub(r"[.,\s]", "", digits)  # "12.000", "3 500": thousands
    unit = _fold(m["sign"] or m["unit"] or "")
    return float(digits.replace(",", ".")), unit[:2]  # "дней"/"дня", "min"/"minuta": one unit


def figures(text: str, spans: Mapping[str, tuple[int, int]], lang: str | None = None) -> dict[str, str]:
    """The labels a comparison of figures gives: "HT me kostao 45 eura, A1 isti paket za 30", "Uber showed up in 2
    min, Lyft said 18": the brand with the lower figure positive, the higher negative (a price, a wait).

    Read only where each brand's clause holds one figure after the brand, the figures have the same unit (or
    the later one none: "u Sportini 90"), and there are exactly two values; "6 months" vs "3 years", "10
    хвилин" vs "4 години" (a unit each, different) compare nothing.

    Returns:
        Brand id -> ``'positive'`` / ``'negative'``; empty when the post compares no figures.
    """
    segs = segments(text, lang)
    found: dict[str, tuple[float, str]] = {}
    for brand, (start, end) in spans.items():
        _s, e = _segment_at(segs, start)
        fig = _figure(text[end:e]) if e > end else None
        if fig is None:
            return {}
        found[brand] = fig
    units = {u for _v, u in found.values() if u}
    if len(units) > 1 or len({_segment_at(segs, spans[b][0]) for b in spans}) < 2:
        return {}
    values = sorted({v for v, _u in found.values()})
    if len(values) != 2:
        return {}
    return {brand: "positive" if v == values[0] else "negative" for brand, (v, _u) in found.items()}


def plan(text: str, spans: Mapping[str, tuple[int, int]], lang: str | None = None) -> tuple[BrandStance, ...]:
    """Decides, for each brand a post names, where its sentiment comes from; no model is run here.

    A comparison cue wins; else the clause naming the brand, when it says enough on its own;
    else the post's label.

    Args:
        text: The post.
        spans: Brand id -> ``(start, end)`` of where the post names it (two brands or more).
        lang: The post's language, or None.

    Returns:
        One :class:`BrandStance` per brand, in brand id order.
    """
    cues = comparison(text, spans, lang) or figures(text, spans, lang)
    out = []
    for brand in sorted(spans):
        if brand in cues:
            seg = brand_segment(text, spans, brand, lang) if cues[brand] is None else None
            if seg and any(other != brand and other in cues and cues[other] is None
                           and seg[0] <= spans[other][0] < seg[1] for other in spans):
                # "i hz i zet danas kasne, što je bilo?": brands alike in one clause take that clause's label.
                out.append(BrandStance(brand, SEGMENT, segment=text[seg[0]:seg[1]],
                                       conceded=conceded(text, seg[1], lang)))
            else:
                out.append(BrandStance(brand, COMPARISON, cues[brand]))
            continue
        seg = brand_segment(text, spans, brand, lang)
        out.append(BrandStance(brand, SEGMENT, segment=text[seg[0]:seg[1]], conceded=conceded(text, seg[1], lang))
                   if seg else BrandStance(brand, POST))
    return tuple(out)


LABELS = ("negative", "neutral", "positive")  # the order of a probability triple
# A conceded clause ("пенсію мамі ще отримуємо в Ощаду, але ...") the model reads as neutral with at least this
# probability gives its brand neutral; chosen on the train and validation splits (0.68-0.76 gave the same labels).
CONCEDED_NEUTRAL = 0.7


def resolve(stance: BrandStance, post: Sequence[float],
            segment: Sequence[float] | None = None) -> tuple[tuple[float, float, float], str]:
    """One brand's probabilities and where they came from.

    Args:
        stance: The brand's plan.
        post: The post's (negative, neutral, positive) probabilities.
        segment: The brand's segment's, or None when it was not scored (or its pass failed).

    Returns:
        ``(probabilities, source)``. A comparison keeps the post's probabilities with the cue's class
        swapped to the top (so the most probable class is the cue's label); a segment the model reads
        as neutral says nothing about the brand, so the post's label stands (source :data:`POST`),
        unless the segment is conceded ("X for the kids, but ...") and at least
        :data:`CONCEDED_NEUTRAL` neutral: the post turns away from a brand it only mentions.
    """
    probs = tuple(float(p) for p in post)
    if stance.source == COMPARISON:
        if stance.label is not None:
            want, top = LABELS.index(stance.label), max(range(3), key=probs.__getitem__)
            swapped = list(probs)
            swapped[want], swapped[top] = probs[top], probs[want]
            probs = tuple(swapped)
        return probs, COMPARISON
    if stance.source == SEGMENT and segment is not None:
        seg = tuple(float(p) for p in segment)
        neutral = LABELS.index("neutral")
        if max(range(3), key=seg.__getitem__) != neutral or (stance.conceded and seg[neutral] >= CONCEDED_NEUTRAL):
            return seg, SEGMENT
    return probs, POST
