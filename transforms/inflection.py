"""Word forms for brand matching: folding, Slavic case endings, possessives, Serbian transliteration.

No dictionary and no stemmer: each untagged term gets a small, closed set of
endings chosen by the script and the last letter of its last word, the endings
that Russian, Ukrainian, Serbian and Croatian put on nouns (and on loan names
such as "Nike", "Samsung", "Coca-Cola"), plus the possessive adjectives
("Appleov", "Adidasovim", "самсунговский"). The matcher accepts a term only when
what follows it in the same word is "" or one of those endings, so "Спрайтом",
"Coca-Colu", "Nikeom" and "Майкрософте" match while "spritesheet" and "Nikers"
do not. Guards:

- inflection applies only to a word of at least 3 letters, and a-stems
  ("Coca-Cola" -> "Coca-Col" + u) only where the stem keeps 3 letters;
- only the last word of a phrase inflects ("Кока-Колы", "Coca-Cole");
- an inflected form that is a frequent word of one of the five languages
  (`STOP_WORDS`: "vise" from Visa, "fantom" from Fanta, "time" from Tim) is not
  generated; an exact term is never filtered;
- English gets the possessive only ("Apple's" ends at the apostrophe); no plural
  "s", because the plural of a brand that is also a noun ("apples", "sprites") is
  nearly always the noun.

Endings after a hyphen or an apostrophe ("Nike-om", "iPhone'a", "Samsung'а")
need nothing: they sit outside the word, so the term already ends at a boundary.

`fold` is the one normalisation of both texts and terms (symmetric by
construction): case folded, diacritics removed (č ć š ž -> c s z, đ -> d,
ё -> е, й -> и, ї -> і), hyphens and dashes as spaces, typographic apostrophes
as "'". `serbian_transliteration` maps a term written in the Serbian Cyrillic
alphabet to Serbian Latin and the other way round (Ајфон <-> Ajfon, Мајкрософт <->
Majkrosoft); the config's `transliterate: true` turns it on per brand.
"""

from __future__ import annotations

import re
import unicodedata

HYPHENS = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
APOSTROPHES = "\u2019\u2018\u02bc`\u00b4\u02b9\u2032"
_EXTRA_FOLD = {"đ": "d", "ł": "l", "ø": "o", "ı": "i", "ß": "ss", "æ": "ae", "œ": "oe"}
_SPACES = re.compile(r" {2,}")
MIN_LETTERS = 3


class _FoldTable(dict):
    """`str.translate` table filled on first sight of each character (so folding runs in C)."""

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        if ch in HYPHENS or ch.isspace():
            out = " "
        elif ch in APOSTROPHES:
            out = "'"
        else:
            low = ch.casefold()
            low = "".join(_EXTRA_FOLD.get(c, c) for c in low)
            out = "".join(c for c in unicodedata.normalize("NFKD", low) if not unicodedata.combining(c))
        self[code] = out
        return out


FOLD = _FoldTable()


def fold(text: str) -> str:
    """Case, diacritics, dashes and apostrophes folded; length may change, spaces are not collapsed."""
    return text.translate(FOLD)


def normalize(text: str) -> str:
    """`fold` with runs of spaces collapsed and the ends stripped (the matcher's view of a text)."""
    return _SPACES.sub(" ", fold(text)).strip()


def _raw(text: str) -> str:
    """Lower case, dashes as spaces, apostrophes unified, diacritics KEPT (to tell й from и, ь from ъ)."""
    out = []
    for ch in text.casefold():
        if ch in HYPHENS or ch.isspace():
            out.append(" ")
        elif ch in APOSTROPHES:
            out.append("'")
        else:
            out.append(ch)
    return " ".join("".join(out).split())


# Endings, written naturally; folded at import. Each class: (letters cut from the end of the word, endings).
_LATIN_CONSONANT = (
    "a", "u", "om", "em", "e", "i", "ima",  # hr/sr cases: Samsunga, Samsungu, Samsungom, Nikeom
    "ov", "ova", "ove", "ovi", "ovo", "ovu", "ovim", "ovih", "ovog", "ovoga", "ovom", "ovome", "ovoj", "ovima",
    "ev", "eva", "eve", "evi", "evo", "evu", "evim", "evih", "evog", "evom", "evoj",  # Appleov, Adidasovim
)
_LATIN_J = ("ja", "ju", "jem", "ji", "je", "jom", "jev", "jeva", "jevim")  # Pepsija, Pepsijem, Sonyjev
_LATIN_A = ("a", "e", "i", "u", "om", "oj", "ama", "in", "ina", "ine", "ini", "inu", "inom", "inim", "inih",
            "inog", "inoj")  # Coca-Cole, Coca-Colu, Zarom, Zarin
_LATIN_O = ("o", "a", "u", "om", "e")  # Čokolino -> Čokolina, Čokolinom
_CYR_CONSONANT = (
    "а", "у", "ом", "ем", "е", "ы", "и", "і", "ов", "ев", "ам", "ами", "ах", "ові", "еві", "ів",
    "ова", "ове", "ови", "ово", "ову", "овим", "ових", "овог", "овога", "овом", "овоме", "овој", "овима",
    "овский", "овская", "овское", "овские", "овского", "овской", "овскому", "овским", "овских", "овскую",
    "овском", "івський", "івська", "івське", "івські", "івського", "івською",
)
_CYR_A = ("а", "ы", "и", "і", "е", "у", "ой", "ою", "ам", "ами", "ах", "ом", "ој", "ин", "ина", "ину", "ином",
          "ине", "ини")  # Кока-Колы, Кока-Колой, Кока-Колом
_CYR_YA = ("я", "и", "і", "е", "ю", "ей", "ею", "єю", "ям", "ями", "ях")
_CYR_SOFT = ("ь", "я", "ю", "ем", "е", "і", "и", "ей", "ям", "ями", "ях", "ев", "ів")  # Пиксель -> Пикселя
_CYR_SHORT_I = ("й", "я", "ю", "ем", "е", "є", "ї", "ям", "ями", "ях", "ев", "ів")
_CYR_J = ("ја", "ју", "јем", "ји", "је", "јом", "јев")  # Пепси -> Пепсија, Пепсијем

# Frequent words (folded) of en, ru, uk, sr, hr that an ending could turn a brand stem into. Only
# inflected forms are checked against it; a term as written always matches.
STOP_WORDS = frozenset(normalize(" ".join("""
    time home come some none done gone bone tone zone more were here there mine fine line wine dine
    mama papa data nana lane sure care dare hare mare rare ware wire fire hire tire vote note rose
    vise visi jako sada kada tada ovde ovdje gdje gde nesto nista neko netko nego samo bilo bila bili
    bile biti mogu moze mozes treba dobro dobra dobar dobri lose losa kako zasto tako svaki svaka svako
    ovaj onaj koji koja koje koju kojim kojoj kojem kome komu nije nisu nema imam imas imamo imate imaju
    jesam jeste jesu danas sutra juce jucer opet uvek uvijek nikad nikada mene tebe njega njemu njoj
    nama vama njima njih svoj svoja svoje svoju svom svojim moja moje moju mojim tvoj tvoja tvoje hvala
    molim ljudi covek covjek dana godina godine godinu kuca kuci kucu posao posla poslu novi nova novo
    nove novu stari stara staro veliki velika malo mali mala prvi prva drugi druga zato ipak stvar
    stvari ruke ruku puta putu vreme vrijeme mesto mjesto grada gradu zemlja zemlje voda vode vodu
    kava kave kafa kafe soka soku jabuka jabuke jabuku fantom fantoma fantomi lega legu
    mora more moru kola kole koli kolu kolom pita pite piti pitu kosa kose kosu
    sela selo selu mira miru mirom mire para pare paru baba babe babi tata tate lepa lepe lepo lijepa
    ovih ovim ovom ovog tima timu timom oblak oblaka zvezda zvijezda zvezde avion aviona sunce sunca
    jedan jedna jedno jednu dva dvije dve tri cetiri pet sest sedam osam devet deset sto hiljada tisuca
    это этого этому этом того тому было была были быть есть тоже также только когда тогда сейчас
    здесь очень более много мало можно нужно надо просто вообще почему потому чтобы если даже опять
    снова всего всем всех всеми него нему ними неи нее меня тебя себя мною тобои вами нами свои своя
    свое свою своих моя мое мои моих твои твоя какои какая какое такои такая такое день дня дни днеи
    года году годы время раза дело дела делу люди людеи дома дому домом работа работы работе работу
    вода воды воде воду мира миру миром кота коту сока соку соком мама маме маму мамы папа папе папу
    мара мары маре пита питы пите питу банка банки банку банке сода соды
    соде содои мира лейка лейки эпоха фантом фантома фантомы фантоми
    це цього цьому цеи була було були бути також тільки коли тоді зараз дуже можна треба взагалі
    чому тому щоб якщо навіть знову його иому неі них мої моє свіи своє року роки часу справа людеи
    роботи води воду світу світі
    ово овог овом овај она оно они оне није нису нема имам имамо јесам јесу данас сутра јуче опет
    увек никад мене тебе њега њему њој нама вама њима свој своја своје своју мој моја моје твој твоја
    хвала молим људи човек дана година године годину кућа куће кући посао посла послу нови нова ново
    нове стари стара велики велика мало мали мала први прва други друга зато ипак ствар ствари руке
    руку пута путу време место града граду земља земље вода воде воду кафа кафе сока соку јабука
    """.split())).split())

_SR_CYR = "абвгдђежзијклљмнњопрстћуфхцчџш"
_SR_LAT = ["a", "b", "v", "g", "d", "đ", "e", "ž", "z", "i", "j", "k", "l", "lj", "m", "n", "nj", "o", "p", "r",
           "s", "t", "ć", "u", "f", "h", "c", "č", "dž", "š"]
_CYR_TO_LAT = dict(zip(_SR_CYR, _SR_LAT))
_LAT_TO_CYR = {lat: cyr for cyr, lat in _CYR_TO_LAT.items()}
_LAT_RE = re.compile("|".join(sorted((re.escape(k) for k in _LAT_TO_CYR), key=len, reverse=True)))
_SR_LAT_LETTERS = frozenset("abcčćdđefghijklmnoprsštuvzž")
_SR_CYR_LETTERS = frozenset(_SR_CYR)


def serbian_transliteration(text: str) -> str | None:
    """The other Serbian script's spelling of `text`, or None if it is not written in one Serbian alphabet.

    Args:
        text: A term as written in the config ("Ајфон", "Majkrosoft").

    Returns:
        "ajfon" / "мајкрософт" (lower case), or None for mixed scripts or letters outside both
        Serbian alphabets (Russian "Эпл", English "Apple" with no q/w/x/y is still Serbian Latin).
    """
    low = text.lower()
    letters = {c for c in low if c.isalpha()}
    if not letters:
        return None
    if letters <= _SR_CYR_LETTERS:
        return "".join(_CYR_TO_LAT.get(c, c) for c in low)
    if letters <= _SR_LAT_LETTERS:
        return _LAT_RE.sub(lambda m: _LAT_TO_CYR[m.group(0)], low)
    return None


def _is_cyrillic(ch: str) -> bool:
    return "\u0400" <= ch <= "\u04ff"


def _letters(text: str) -> int:
    return sum(1 for c in text if c.isalpha())


def _classes(word: str) -> list[tuple[int, tuple[str, ...]]]:
    """(letters cut, endings) pairs for the last word of a term (lower case, diacritics kept)."""
    last = word[-1]
    if _is_cyrillic(last) or (not last.isalpha() and any(_is_cyrillic(c) for c in word)):
        if last == "а":
            return [(1, _CYR_A)]
        if last == "я":
            return [(1, _CYR_YA)]
        if last == "ь":
            return [(1, _CYR_SOFT)]
        if last == "й":
            return [(1, _CYR_SHORT_I)]
        if last in "еиоуіэюєї":
            return [(0, _CYR_J)]
        return [(0, _CYR_CONSONANT)]
    # A Latin-script name in a Cyrillic sentence takes Cyrillic endings ("Samsungа", "iPhoneом"); a
    # mixed-script word is never an unrelated word, so these cost no precision.
    if last == "a":
        return [(1, _LATIN_A + _CYR_A)]
    if last == "o":
        return [(1, _LATIN_O), (0, _LATIN_J + _CYR_CONSONANT)]
    if last in "iy":
        return [(0, _LATIN_CONSONANT + _LATIN_J + _CYR_CONSONANT)]
    if last.isalpha():
        return [(0, _LATIN_CONSONANT + _CYR_CONSONANT)]
    return []


def word_forms(text: str, inflect: bool = True) -> list[tuple[str, frozenset[str]]]:
    """The automaton keys of one term spelling and, for each, the endings allowed right after it.

    Args:
        text: One spelling of a term, as written ("Coca-Cola", "Спрайт").
        inflect: False to match the term exactly (endings = {""}).

    Returns:
        [(key, endings)]: the folded key to search for and the folded word endings that may
        follow it inside the same word ("" = the word ends there). "Coca-Cola" gives
        [("coca col", {"a", "e", "i", "u", "om", ...})].
    """
    raw = _raw(text)
    exact = [(normalize(raw), frozenset([""]))]
    if not inflect or not raw:
        return exact
    words = raw.split(" ")
    last = words[-1]
    prefix = raw[: len(raw) - len(last)]
    if not last[-1].isalpha() or _letters(last) < MIN_LETTERS:
        return exact
    out = []
    for cut, endings in _classes(last):
        stem = last[: len(last) - cut]
        if _letters(stem) < MIN_LETTERS:
            continue
        own = fold(last[len(stem):])  # the ending the term is written with always stays
        folded_stem = fold(stem)
        rests = {fold(e) for e in endings}
        if len(words) == 1:
            rests = {r for r in rests if folded_stem + r not in STOP_WORDS}
        rests.add(own)
        if cut == 0:
            rests.add("")
        out.append((normalize(prefix + stem) if prefix else folded_stem, frozenset(rests)))
    return out or exact


def spellings(text: str, transliterate: bool = False) -> list[str]:
    """The spellings of a term that are matched as the same term.

    Args:
        text: The term as written.
        transliterate: Add the other Serbian script's spelling.

    Returns:
        `text`, its spelling without apostrophes ("Lay's" -> "Lays"), joined ("Coca Cola" ->
        "CocaCola"), split at inner capitals ("PlayStation" -> "Play Station"), with "dj" for "đ",
        and the Serbian transliteration of each when asked, without duplicates.
    """
    out = [text]
    if any(a in text for a in "'" + APOSTROPHES):
        out.append(re.sub("['" + re.escape(APOSTROPHES) + "]", "", text))
    words = re.split("[\\s" + re.escape(HYPHENS) + "]+", text.strip())
    if len(words) > 1 and all(_letters(w) >= 2 for w in words):
        out.append("".join(words))
    camel = re.sub(r"(?<=[a-zа-яё]{2})(?=[A-ZА-ЯЁ][a-zа-яё]{2})", " ", text)
    if camel != text:
        out.append(camel)
    if "đ" in text.lower():
        out += [re.sub("đ", "dj", s, flags=re.IGNORECASE) for s in out]
    if transliterate:
        out += [t for t in (serbian_transliteration(s) for s in list(out)) if t]
    seen, unique = set(), []
    for s in out:
        key = normalize(s)
        if key and key not in seen:
            seen.add(key)
            unique.append(s)
    return unique
