"""Ambiguous brand names judged from context: the `relevance` of each match, and the matches rejected.

A brand whose name is also a common word (Orange, Mars, Shell, Магнит, Лента, Мир, Розетка,
Konzum) matches every post that uses the word. Such a brand is *ambiguous* when its config
says `ambiguous: true`, or, with `relevance.detect` (the default), when one of its names is a
frequent word in a language served (`wordfreq`: Zipf frequency >= `relevance.min_zipf` in
English, Russian, Ukrainian or Serbo-Croatian) and the brand does not say `ambiguous: false`.

Each ambiguous brand becomes a *profile* for the model (:mod:`models.relevance`): the phrases
of its `description`, each name with its `category`, its `products`, and its competitors' names.
A brand found by detection alone gets one only when the config says what it is (a category,
description or products); otherwise a warning at start, and its matches are kept unjudged.
The sentiment model scores every matched post against the profiles in the same encoder pass
(`models.handler.ScorerModelHandler.with_profiles`), and :class:`JudgeRelevance` decides per
brand mention, first on cheap signals:

* tagged (its @handle or #hashtag)                      -> relevance 1.0, kept;
* a competitor or one of its products named in the post -> relevance 1.0, kept;
* else the model's relevance, nudged by the name's case (`relevance.case_prior`: capitalised
  inside a sentence, a proper noun, adds CASE_LOGIT to its logit; written in lower case takes
  it away; at a sentence's start, or in a post with no capital letter at all, it says nothing);
  below `relevance.threshold` the match goes to the `rejected_matches` table with the reason,
  not to `brand_mentions`.

`relevance` is null on the rows of brands that are not ambiguous (not judged) and on those of
an ambiguous brand when the model scores no profiles (a Hugging Face --model: only the cheap
signals judge, and a match they do not confirm is kept unjudged). A rejected match leaves the
post counted as matched and scored: the manifest's balance of posts is unchanged, and the
rows add up per post (brand_mentions rows + rejected_matches rows = the brands matched).
"""

from __future__ import annotations

import logging
import math
import re
import typing

import apache_beam as beam

from models.relevance import Profile
from schemas import BrandMention
from schemas.config import Brand, BrandConfig
from schemas.records import RejectedMatch
from transforms.inflection import fold

LOG = logging.getLogger(__name__)
NAMESPACE = "relevance"
# wordfreq's codes for the languages served: Serbian and Croatian share one list ('sh').
FREQUENCY_LANGUAGES = ("en", "ru", "uk", "sh")
EXCERPT_CHARS = 280
TAGGED, COMPETITOR, PRODUCT, MODEL = "tagged", "competitor named", "product named", "model"
# The case nudge, in logit units of the model's relevance (0.03 of cosine margin at the model's scale of 30);
# chosen on the trap set's validation split (docs/relevance.md) with the shipped projection
# (tools/train_relevance.py). Without the projection it was 0.3.
CASE_LOGIT = 0.9
_SENTENCE_END = re.compile(r"[.!?…:]\s*$")

_KEPT = beam.metrics.Metrics.counter(NAMESPACE, "judged_kept")
_REJECTED = beam.metrics.Metrics.counter(NAMESPACE, "rejected_matches")
_UNJUDGED = beam.metrics.Metrics.counter(NAMESPACE, "ambiguous_not_scored")
_JUDGE_ERRORS = beam.metrics.Metrics.counter(NAMESPACE, "judge_errors")


def common_word_names(brand: Brand, min_zipf: float) -> list[tuple[str, str, float]]:
    """The brand's single-word names that are frequent words: (name, language, Zipf frequency).

    Args:
        brand: The brand.
        min_zipf: The Zipf frequency from which a word is common (3: once per million words).
    """
    from wordfreq import zipf_frequency  # imported only when a config asks for detection

    out = []
    for name in brand.names:
        word = name.rstrip("*").strip()
        if not word or re.search(r"\s", word):
            continue  # a phrase ("Coca-Cola Zero") is not a word of everyday language
        best = max(((zipf_frequency(word.lower(), lang), lang) for lang in FREQUENCY_LANGUAGES))
        if best[0] >= min_zipf:
            out.append((name, best[1], round(best[0], 1)))
    return out


def ambiguous_brands(config: BrandConfig) -> dict[str, str]:
    """Brand id -> why it is ambiguous ('config', or 'detected: <name> is a common word (<lang> <zipf>)').

    Brands with `ambiguous: false` are never in it; with `relevance.detect: false` only those that say
    `ambiguous: true` are.
    """
    out = {}
    for brand in config.brands:
        if brand.ambiguous:
            out[brand.id] = "config"
        elif brand.ambiguous is None and config.relevance.detect:
            common = common_word_names(brand, config.relevance.min_zipf)
            if common:
                name, lang, zipf = common[0]
                out[brand.id] = f"detected: {name!r} is a common word ({lang} Zipf {zipf})"
    return out


def _first_name(brand: Brand) -> str:
    names, handles, _tags = brand.search_terms()
    return (names or handles or (brand.id,))[0]


def profile_phrases(brand: Brand, config: BrandConfig) -> tuple[str, ...]:
    """What the model compares posts with for `brand`: description, name + category, products, competitors.

    Empty when the config says nothing about the brand but its names (nothing to judge by).
    """
    by_id = {b.id: b for b in config.brands}
    name = _first_name(brand)
    phrases = list(brand.description)
    if brand.category:
        # Every name, so that a post writing another one (Айфон for Apple) finds its own script here too.
        phrases += [f"{n}, {brand.category}" for n in dict.fromkeys(brand.search_terms()[0][:6] or (name,))]
    if brand.products:
        phrases.append(f"{name}: {', '.join(brand.products)}")
    rivals = [_first_name(by_id[c]) for c in brand.competitors if c in by_id]
    if rivals:
        what = brand.category or "brand"
        phrases.append(f"{name} and other {what}s like {', '.join(rivals)}" if brand.category
                       else f"{name}, a {what} like {', '.join(rivals)}")
    return tuple(dict.fromkeys(phrases))


def says_what_it_is(brand: Brand) -> bool:
    """Whether the config says what the brand is (category, description or products), not only its rivals."""
    return bool(brand.category or brand.description or brand.products)


def brand_profiles(config: BrandConfig, ambiguous: typing.Mapping[str, str] | None = None
                   ) -> tuple[Profile, ...]:
    """The model's profiles: one per ambiguous brand that says something to judge by, named by brand id.

    A brand found by detection only is judged when the config says what it is: its competitors alone
    describe it too vaguely (measured: "Nike, a brand like Adidas" rejected a third of Nike's posts).

    Args:
        config: The validated brand config.
        ambiguous: `ambiguous_brands(config)`, when already computed.
    """
    ambiguous = ambiguous_brands(config) if ambiguous is None else ambiguous
    out = []
    for brand in config.brands:
        if brand.id in ambiguous:
            phrases = profile_phrases(brand, config)
            if brand.ambiguous is None and not says_what_it_is(brand):
                phrases = ()
            if phrases:
                out.append(Profile(brand.id, phrases, _first_name(brand)))
            else:
                LOG.warning("brand %r: %s, but the config does not say what the brand is (no category, "
                            "description or products): its matches are kept unjudged; add a category, or "
                            "`ambiguous: false`", brand.id, ambiguous[brand.id])
    return tuple(out)


def _terms_pattern(terms: typing.Iterable[str]) -> typing.Pattern | None:
    """A pattern finding any of `terms` (folded) at the start of a word, with any ending (Slavic cases)."""
    folded = sorted({fold(t.rstrip("*")).strip() for t in terms} - {""}, key=len, reverse=True)
    if not folded:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(t) for t in folded) + r")")


def name_case(text: str, names: typing.Iterable[str]) -> int:
    """+1: a name is written capitalised inside a sentence; -1: in lower case; 0: only at a sentence's start,
    or in lower case in a text with no capital letter at all.

    The first occurrence decides (a name followed by any ending: "Магните", "Marsu").
    """
    starts = []
    for name in names:
        word = name.rstrip("*").strip()
        if word:
            starts += [m.start() for m in re.finditer(r"(?<!\w)" + re.escape(word), text, re.IGNORECASE)]
    if not starts:
        return 0
    first = min(starts)
    if text[first].islower():
        # A writer who capitalises nothing says nothing by writing the name in lower case.
        return -1 if any(ch.isupper() for ch in text) else 0
    return 0 if first == 0 or _SENTENCE_END.search(text[:first]) else 1


class _Signals(typing.NamedTuple):
    competitors: typing.Pattern | None
    products: typing.Pattern | None
    names: tuple[str, ...]


class RelevanceJudge:
    """Decides, per brand mention, its relevance and whether it is kept (see the module docstring).

    Args:
        config: The validated brand config.
        ambiguous: `ambiguous_brands(config)`.
    """

    def __init__(self, config: BrandConfig, ambiguous: typing.Mapping[str, str]):
        by_id = {b.id: b for b in config.brands}
        self.threshold = config.relevance.threshold
        self._case_prior = config.relevance.case_prior
        self._ambiguous = dict(ambiguous)
        self._signals: dict[str, _Signals] = {}
        for brand_id in self._ambiguous:
            brand = by_id[brand_id]
            rivals = [t for c in brand.competitors for t in by_id[c].search_terms()[0]]
            self._signals[brand_id] = _Signals(_terms_pattern(rivals), _terms_pattern(brand.products),
                                               brand.search_terms()[0])

    @property
    def ambiguous(self) -> dict[str, str]:
        """Brand id -> why it is judged."""
        return dict(self._ambiguous)

    def judge(self, row: BrandMention) -> tuple[float | None, str]:
        """(relevance, why) for a brand mention whose `relevance` holds the model's raw score (or None).

        `why` is '' for a brand that is not judged, else 'tagged', 'competitor named', 'product named',
        'model' or 'not scored'.
        """
        if row.brand_id not in self._ambiguous:
            return None, ""
        if row.match_kind == "tagged":
            return 1.0, TAGGED
        signals = self._signals[row.brand_id]
        folded = None
        for pattern, why in ((signals.competitors, COMPETITOR), (signals.products, PRODUCT)):
            if pattern is not None:
                folded = fold(row.text) if folded is None else folded
                if pattern.search(folded):
                    return 1.0, why
        if row.relevance is None:
            return None, "not scored"
        relevance = float(row.relevance)
        if self._case_prior:
            case = name_case(row.text, signals.names)
            if case:
                logit = math.log(max(relevance, 1e-6) / max(1.0 - relevance, 1e-6)) + CASE_LOGIT * case
                relevance = 1.0 / (1.0 + math.exp(-logit))
        return relevance, MODEL

    def kept(self, relevance: float | None) -> bool:
        """Whether a match with this relevance stays in brand_mentions."""
        return relevance is None or relevance >= self.threshold


def rejected_match(row: BrandMention, relevance: float, threshold: float, why: str) -> RejectedMatch:
    """The diagnostic row of a rejected brand mention."""
    text = row.text if len(row.text) <= EXCERPT_CHARS else row.text[:EXCERPT_CHARS - 1] + "…"
    return RejectedMatch(
        mention_id=row.mention_id, platform=row.platform, created_at=row.created_at, lang=row.lang,
        brand_id=row.brand_id, matched_term=row.matched_term, matched_rule=row.matched_rule,
        relevance=float(relevance), threshold=float(threshold),
        reason=f"{why}: relevance {relevance:.2f} below the threshold {threshold:.2f}; the post reads as another "
               f"sense of {row.matched_term!r}",
        text_excerpt=text, url=row.url, author_handle=row.author_handle, model_id=row.model_id)


class _JudgeFn(beam.DoFn):
    REJECTED = "rejected_matches"

    def __init__(self, config: BrandConfig, ambiguous: typing.Mapping[str, str]):
        self._config, self._ambiguous = config, dict(ambiguous)
        self._judge: RelevanceJudge | None = None

    def setup(self):
        self._judge = RelevanceJudge(self._config, self._ambiguous)

    def process(self, row: BrandMention):
        try:
            relevance, why = self._judge.judge(row)
        except Exception as exc:  # noqa: BLE001 - one row's fault must not end the run
            # The row is a scored mention (its post is counted already): kept, unjudged, and counted.
            _JUDGE_ERRORS.inc()
            LOG.warning("relevance of %s for brand %r not judged: %s", row.mention_id, row.brand_id,
                        type(exc).__name__)
            yield row._replace(relevance=None)
            return
        if why == "not scored":
            _UNJUDGED.inc()
        if self._judge.kept(relevance):
            if why:
                _KEPT.inc()
            yield row._replace(relevance=relevance)
        else:
            _REJECTED.inc()
            yield beam.pvalue.TaggedOutput(self.REJECTED, rejected_match(row, relevance, self._judge.threshold, why))


class JudgeRelevance(beam.PTransform):
    """Scored brand mentions -> {'brand_mentions': kept (with `relevance`), 'rejected_matches': the others}.

    Args:
        config: The validated brand config.
        ambiguous: `ambiguous_brands(config)` (computed once, at start, on the launching machine).
    """

    def __init__(self, config: BrandConfig, ambiguous: typing.Mapping[str, str]):
        super().__init__()
        self._config, self._ambiguous = config, dict(ambiguous)

    def expand(self, brand_mentions):
        out = brand_mentions | "Judge" >> beam.ParDo(_JudgeFn(self._config, self._ambiguous)).with_outputs(
            _JudgeFn.REJECTED, main="brand_mentions")
        # Typed, so that Beam carries them with their RowCoders.
        out["brand_mentions"].element_type = BrandMention
        out[_JudgeFn.REJECTED].element_type = RejectedMatch
        return {"brand_mentions": out["brand_mentions"], "rejected_matches": out[_JudgeFn.REJECTED]}


def relevance_plan(config: BrandConfig) -> tuple[dict[str, str], tuple[Profile, ...]]:
    """(ambiguous brands with why, the model's profiles) for a config."""
    ambiguous = ambiguous_brands(config)
    return ambiguous, brand_profiles(config, ambiguous)
