"""Brand matching: which configured brands a post mentions, tagged or untagged.

`BrandMatcher` compiles every brand's terms ONCE into two structures shared by all
brands: one alternation regex over the plain-text names (untagged) and one dict
lookup for @handles and #hashtags (tagged), so the cost per post does not grow with
a loop over brands. Text and terms go through the same normalisation (Unicode
compatibility decomposition, diacritics removed, case folded, whitespace
collapsed), so "Čokolino", "cokolino" and "ČOKOLINO" are one term, in any script.

`MatchBrands` is the Beam step: matched posts go to the main output as
`(mention, matches)`, posts that mention no brand to the `unmatched` output.
"""

from __future__ import annotations

import re
import typing
import unicodedata

import apache_beam as beam

from schemas import Mention
from schemas.config import BrandConfig

# Letters without a decomposition that people routinely type without their mark.
_EXTRA_FOLD = str.maketrans({"đ": "d", "Đ": "d", "ł": "l", "Ł": "l", "ø": "o", "Ø": "o", "ı": "i"})
_SPACES = re.compile(r"\s+")
_TAG = re.compile(r"(?<!\w)([@#])(\w+)")


def normalize(text: str) -> str:
    """Folds case, drops diacritics and collapses whitespace (the matcher's view of a text)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_EXTRA_FOLD))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", stripped.casefold()).strip()


class Match(typing.NamedTuple):
    """One brand found in one post."""

    brand_id: str
    kind: str  # 'tagged' or 'untagged'
    term: str  # the config term, '@Handle' / '#Tag' for tagged


class BrandMatcher:
    """All brands' rules compiled into one regex and two dicts.

    Args:
        config: The validated brand configuration.
    """

    def __init__(self, config: BrandConfig):
        self._names: typing.Dict[str, typing.List[typing.Tuple[str, str]]] = {}
        self._handles: typing.Dict[str, typing.List[typing.Tuple[str, str]]] = {}
        self._hashtags: typing.Dict[str, typing.List[typing.Tuple[str, str]]] = {}
        self._exclude: typing.Dict[str, re.Pattern] = {}
        for brand in config.brands:
            for name in brand.names:
                self._names.setdefault(normalize(name), []).append((brand.id, name))
            for handle in brand.handles:
                self._handles.setdefault(normalize(handle), []).append((brand.id, "@" + handle))
            for tag in brand.hashtags:
                self._hashtags.setdefault(normalize(tag), []).append((brand.id, "#" + tag))
            if brand.exclude:
                self._exclude[brand.id] = _alternation([normalize(p) for p in brand.exclude])
        self._name_re = _alternation(list(self._names), tagged_ok=False) if self._names else None

    def match(self, text: str) -> typing.List[Match]:
        """Returns one Match per brand the text mentions (tagged preferred), in first-seen order."""
        norm = normalize(text)
        found: typing.Dict[str, Match] = {}
        for sigil, word in _TAG.findall(norm):
            table = self._handles if sigil == "@" else self._hashtags
            for brand_id, term in table.get(word, ()):
                if brand_id not in found or found[brand_id].kind != "tagged":
                    found[brand_id] = Match(brand_id, "tagged", term)
        if self._name_re is not None:
            excluded: typing.Dict[str, typing.List[typing.Tuple[int, int]]] = {}
            for m in self._name_re.finditer(norm):
                for brand_id, term in self._names[m.group(0)]:
                    if brand_id in found:
                        continue
                    if brand_id in self._exclude:
                        if brand_id not in excluded:
                            excluded[brand_id] = [e.span() for e in self._exclude[brand_id].finditer(norm)]
                        if any(a <= m.start() and m.end() <= b for a, b in excluded[brand_id]):
                            continue
                    found[brand_id] = Match(brand_id, "untagged", term)
        return list(found.values())


def _alternation(terms: typing.List[str], tagged_ok: bool = True) -> re.Pattern:
    # Longest first so "coca cola zero" wins over "coca cola"; \w boundaries work in any script.
    body = "|".join(re.escape(t) for t in sorted(set(terms), key=lambda t: (-len(t), t)))
    before = r"(?<!\w)" if tagged_ok else r"(?<![\w@#])"
    # Not followed by '@' either: "sprite@example.com" is an e-mail address, not a mention.
    return re.compile(f"{before}(?:{body})(?![\\w@])")


class MatchBrandsFn(beam.DoFn):
    """Emits `(mention, matches)` for posts that mention a brand; others to UNMATCHED."""

    UNMATCHED = "unmatched"

    def __init__(self, config: BrandConfig):
        self._config = config
        self._matcher: typing.Optional[BrandMatcher] = None
        self._matched = beam.metrics.Metrics.counter("match", "matched_mentions")
        self._unmatched = beam.metrics.Metrics.counter("match", "unmatched_mentions")

    def setup(self):
        self._matcher = BrandMatcher(self._config)

    def process(self, mention: Mention):
        matches = self._matcher.match(mention.text)
        if matches:
            self._matched.inc()
            yield mention, tuple(matches)
        else:
            self._unmatched.inc()
            yield beam.pvalue.TaggedOutput(self.UNMATCHED, mention)


class MatchBrands(beam.PTransform):
    """Mentions in; `matched` = (mention, matches) and `unmatched` = mentions out."""

    def __init__(self, config: BrandConfig):
        super().__init__()
        self._config = config

    def expand(self, mentions):
        return mentions | "Match" >> beam.ParDo(MatchBrandsFn(self._config)).with_outputs(
            MatchBrandsFn.UNMATCHED, main="matched")
