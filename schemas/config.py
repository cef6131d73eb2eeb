"""The brand configuration: a YAML file, validated once at start.

Format::

    brands:
      - id: sprite
        names: [Sprite, Спрайт]      # untagged: found in plain text, any script, any case
        handles: [Sprite]            # tagged: @Sprite
        hashtags: [Sprite]           # tagged: #Sprite
        exclude: ["fairy sprite"]    # phrases that cancel a match inside them
        competitors: [cocacola]      # the competitive set for share of voice
        query: 'sprite NEAR/3 (zero OR lemon*)'   # optional: the query language (schemas.query)
        transliterate: false         # Serbian Cyrillic <-> Latin forms of every term
        inflect: true                # Slavic case endings and possessives (transforms.inflection)
        ambiguous: true              # the name is also a common word: judge each match from context
        category: soft drink         # what the brand is (for the relevance step; docs/relevance.md)
        description: "Sprite, the lemon-lime soda by Coca-Cola"   # one phrase or a list, any languages
        products: [Sprite Zero]      # its products: named in a post, they make a match relevant

`names`, `handles` and `hashtags` compile to the query
``"Sprite" OR "Спрайт" OR @Sprite OR #Sprite``; with `query:` the brand matches
when either does (each top-level OR branch is one rule a match is attributed to).

An optional top-level `alerts:` section sets the early-warning thresholds
(`AlertThresholds`; every key optional, defaults below)::

    alerts:
      periods: [day, week]                 # which periods are checked
      baseline_periods: {day: 28, week: 8} # trailing periods in the baseline (or one number for all)
      min_baseline_periods: {day: 7, week: 3}
      z_threshold: 3.5                     # robust z-score (median / MAD) that fires
      min_negative_mentions: 10            # a spike needs at least this many negative mentions
      min_mentions: 20                     # a rate needs at least this many mentions (set mentions for SoV)
      min_share_of_voice_drop: 0.05        # and a share-of-voice drop at least this far below the median
      top_terms: 5                         # terms and topics listed per alert

An optional top-level `relevance:` section sets how matches on ambiguous names are judged
(`RelevanceConfig`; docs/relevance.md)::

    relevance:
      threshold: 0.5                       # a judged match below this goes to `rejected_matches`
      detect: true                         # also judge brands whose name is a common word (wordfreq)
      min_zipf: 3.0                        # how common: Zipf frequency (3 = once per million words)
      case_prior: true                     # a capitalised name counts a little for the brand

An optional top-level `topics:` section sets the topic taxonomy the sentiment model scores
(`TopicsConfig`; topics need no training, only a few descriptions or example phrases in any
language)::

    topics:
      threshold: 0.5                       # a row keeps the topics scoring at least this (0 < t <= 1)
      replace_defaults: false              # true: only the topics below (plus `other`), not the defaults
      taxonomy:                            # name -> descriptions or example phrases
        sustainability: ["recycling, plastic waste, eco-friendly packaging", "экология, переработка"]
        price_promotion: ["price, discount, promo code"]   # a default topic's name replaces its phrases

An optional top-level `languages:` lists the languages the job detects for posts that arrive
without one (ISO 639-1 codes; default `DEFAULT_LANGUAGES`; `--detect_languages` overrides it;
docs/language.md)::

    languages: [en, ru, uk, hr, sr, bs]

A bad file raises `ConfigError` whose message names the file and the field
(e.g. ``brands.yaml: brands[1].competitors[0]: unknown brand 'cocacolla'``) and shows a bad
value by a short prefix (`schemas.query.preview`). The file is read with a bounded loader: YAML
aliases may add at most MAX_ALIAS_NODES values (an alias bomb stops while composing, naming the
field), no recursive aliases, nesting up to MAX_YAML_DEPTH; lists hold at most MAX_LIST_ITEMS items
of MAX_ITEM_CHARS characters. Ids, handles and hashtags hold no whitespace.
"""

from __future__ import annotations

import math
import re
import typing
from dataclasses import dataclass, field

import yaml

from schemas.records import PERIODS
from schemas.query import (And, Field, Near, Node, Or, QueryError, Tag, Term, atoms, branches, parse_query,
                           preview)

# Matched with `fullmatch`, never `$` (which also matches before a trailing newline: "apple\n").
_ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_HANDLE_RE = re.compile(r"\w{1,100}")
_WORD_CHAR = re.compile(r"\w")
_BRAND_KEYS = ("id", "names", "handles", "hashtags", "exclude", "competitors", "query", "transliterate", "inflect",
               "response", "ambiguous", "category", "description", "products")


class ConfigError(ValueError):
    """The brand configuration is invalid; the message names the field."""


# The languages the job detects when neither the config's `languages:` nor --detect_languages names any:
# the five the project serves and Bosnian (told apart from Croatian and Serbian; transforms.language).
DEFAULT_LANGUAGES = ("en", "ru", "uk", "hr", "sr", "bs")
_LANG_CODE_RE = re.compile(r"[a-z]{2}")


def parse_languages(raw: typing.Any, where: str) -> tuple[str, ...]:
    """Validates a list of ISO 639-1 codes (a list, or one comma-separated string); errors name `where`.

    Whether the detector has a model for each is checked where it is built (`transforms.language`).
    """
    if isinstance(raw, str):
        raw = [c for c in raw.split(",")]
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: expected a list of language codes such as {list(DEFAULT_LANGUAGES)}, "
                          f"got {type(raw).__name__}")
    out = []
    for i, item in enumerate(raw):
        code = item.strip().lower() if isinstance(item, str) else item
        if not isinstance(code, str) or not _LANG_CODE_RE.fullmatch(code):
            raise ConfigError(f"{where}[{i}]: {preview(item)} is not an ISO 639-1 language code (two letters, "
                              "e.g. en, hr, sr)")
        out.append(code)
    if not out:
        raise ConfigError(f"{where}: expected at least one language code (e.g. {', '.join(DEFAULT_LANGUAGES)})")
    return tuple(dict.fromkeys(out))


_TOPIC_KEYS = ("threshold", "replace_defaults", "taxonomy")
_TOPIC_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_]{0,63}")


@dataclass(frozen=True)
class TopicsConfig:
    """The topic taxonomy settings (the config's optional `topics:` section).

    Attributes:
        threshold: Score at or above which a row keeps a topic; None: the model's default.
        replace_defaults: Use only `taxonomy` (plus `other`) instead of adding to the defaults.
        taxonomy: (name, phrases) pairs in file order; a default topic's name replaces it.
    """

    threshold: float | None = None
    replace_defaults: bool = False
    taxonomy: tuple[tuple[str, tuple[str, ...]], ...] = ()


def _refuse_unknown_keys(raw: typing.Mapping, allowed: typing.Sequence[str], where: str) -> None:
    """Raises a ConfigError naming `where` when `raw` has keys outside `allowed` (shown as a short preview)."""
    extra = sorted(set(raw) - set(allowed), key=str)
    if extra:
        raise ConfigError(f"{where}: unknown key(s) {preview(extra, 200)}; allowed: {list(allowed)}")


def _section(raw: typing.Any, allowed: typing.Sequence[str], where: str, expected: str = "") -> typing.Mapping:
    """Returns `raw` if it is a mapping whose keys are all in `allowed`, else raises a ConfigError naming `where`.

    Args:
        raw: The section as parsed.
        allowed: Its keys.
        where: The field, for the message (e.g. `brands.yaml: relevance`).
        expected: What the message says was expected; by default "a mapping with keys among [...]".
    """
    if not isinstance(raw, dict):
        expected = expected or f"a mapping with keys among {list(allowed)}"
        raise ConfigError(f"{where}: expected {expected}, got {type(raw).__name__}")
    _refuse_unknown_keys(raw, allowed, where)
    return raw


def _boolean(value: typing.Any, where: str) -> bool:
    """Returns `value` if it is true or false (YAML's booleans), else raises a ConfigError naming `where`."""
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {preview(value)}")
    return value


def parse_topics(raw: typing.Any, source: str = "<config>") -> TopicsConfig:
    """Validates the optional `topics:` section.

    Args:
        raw: The section as parsed (None: the defaults).
        source: The file name, used in error messages.

    Returns:
        The topic settings.

    Raises:
        ConfigError: naming the offending field (e.g. `brands.yaml: topics.taxonomy.Price: ...`).
    """
    if raw is None:
        return TopicsConfig()
    where = f"{source}: topics"
    _section(raw, _TOPIC_KEYS, where, "a mapping with 'threshold', 'replace_defaults' and/or 'taxonomy'")
    threshold = None
    if raw.get("threshold") is not None:
        threshold = _number(raw["threshold"], f"{where}.threshold", float, 0.0, 1.0)
        if threshold == 0.0:
            raise ConfigError(f"{where}.threshold: must be above 0 (0 would keep every topic on every row)")
    replace = _boolean(raw.get("replace_defaults", False), f"{where}.replace_defaults")
    taxonomy = raw.get("taxonomy") or {}
    if not isinstance(taxonomy, dict):
        raise ConfigError(f"{where}.taxonomy: expected a mapping of topic name -> list of phrases, "
                          f"got {type(taxonomy).__name__}")
    topics = []
    for name, phrases in taxonomy.items():
        if not isinstance(name, str) or not _TOPIC_NAME_RE.fullmatch(name):
            raise ConfigError(f"{where}.taxonomy: {preview(name)} is not a valid topic name (lowercase letters, digits "
                              "and '_', starting with a letter or digit)")
        listed = _string_list(phrases, f"{where}.taxonomy.{name}")
        if not listed and name != "other":
            raise ConfigError(f"{where}.taxonomy.{name}: give at least one description or example phrase")
        topics.append((name, listed))
    if replace and not any(phrases for _, phrases in topics):
        raise ConfigError(f"{where}.replace_defaults: true needs topics with phrases under topics.taxonomy")
    return TopicsConfig(threshold, replace, tuple(topics))


_RELEVANCE_KEYS = ("threshold", "detect", "min_zipf", "case_prior")


@dataclass(frozen=True)
class RelevanceConfig:
    """How matches on ambiguous names are judged (the config's optional `relevance:` section; docs/relevance.md).

    Attributes:
        threshold: A match on an ambiguous name whose relevance is below this is rejected.
        detect: Also treat as ambiguous a brand whose name is a frequent word in a language served, unless
            the brand says `ambiguous: false`.
        min_zipf: How frequent a word must be to count as common (Zipf scale of `wordfreq`: 3 = once per
            million words).
        case_prior: Let the name's case nudge the model's judgement: capitalised inside a sentence (a
            proper noun) counts a little for the brand, written in lower case a little against it (not in
            a text with no capital letter at all).
    """

    threshold: float = 0.5
    detect: bool = True
    min_zipf: float = 3.0
    case_prior: bool = True


def parse_relevance(raw: typing.Any, source: str = "<config>") -> RelevanceConfig:
    """Validates the optional `relevance:` section (None: every default); errors name the field."""
    if raw is None:
        return RelevanceConfig()
    where = f"{source}: relevance"
    _section(raw, _RELEVANCE_KEYS, where)
    out: dict[str, typing.Any] = {}
    if "threshold" in raw:
        out["threshold"] = _number(raw["threshold"], f"{where}.threshold", float, 0.0, 1.0)
    for key in ("detect", "case_prior"):
        if key in raw:
            out[key] = _boolean(raw[key], f"{where}.{key}")
    if "min_zipf" in raw:
        out["min_zipf"] = _number(raw["min_zipf"], f"{where}.min_zipf", float, 0.0, 8.0)
    return RelevanceConfig(**out)


# Per period type: how many trailing periods form the baseline, and how many it needs at least.
_DEFAULT_BASELINE = {"day": 28, "week": 8, "month": 6, "quarter": 4}
_DEFAULT_MIN_BASELINE = {"day": 7, "week": 3, "month": 3, "quarter": 2}
_ALERT_KEYS = ("periods", "baseline_periods", "min_baseline_periods", "z_threshold", "min_negative_mentions",
               "min_mentions", "min_share_of_voice_drop", "top_terms")


@dataclass(frozen=True)
class AlertThresholds:
    """The early-warning thresholds (the config's optional `alerts:` section).

    Attributes:
        periods: Period types checked (of `day`, `week`, `month`, `quarter`).
        baseline_periods: Period type -> trailing periods in the baseline.
        min_baseline_periods: Period type -> fewest baseline periods an alert needs.
        z_threshold: Robust z-score (on median and MAD) at or beyond which an alert fires.
        min_negative_mentions: Fewest negative mentions for a negative spike or negative-rate spike.
        min_mentions: Fewest mentions for a negative-rate spike; fewest competitive-set
            mentions for a share-of-voice drop.
        min_share_of_voice_drop: Smallest drop below the baseline median share of voice that alerts.
        top_terms: How many top terms and topics of the negative mentions an alert lists.
    """

    periods: tuple[str, ...] = ("day", "week")
    baseline_periods: typing.Mapping[str, int] = field(default_factory=lambda: dict(_DEFAULT_BASELINE))
    min_baseline_periods: typing.Mapping[str, int] = field(default_factory=lambda: dict(_DEFAULT_MIN_BASELINE))
    z_threshold: float = 3.5
    min_negative_mentions: int = 10
    min_mentions: int = 20
    min_share_of_voice_drop: float = 0.05
    top_terms: int = 5


def _number(value: typing.Any, where: str, kind: type, low: float, high: float = None) -> typing.Any:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (kind is float or isinstance(value, int))
    if not ok or not math.isfinite(value) or value < low or (high is not None and value > high):
        what = "an integer" if kind is int else "a number"
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ConfigError(f"{where}: expected {what} {bounds}, got {preview(value)}")
    return kind(value)


def _per_period(value: typing.Any, where: str, defaults: typing.Mapping[str, int]) -> dict[str, int]:
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(PERIODS), key=str)
        if unknown:
            raise ConfigError(f"{where}: unknown period(s) {preview(unknown, 200)}; allowed: {list(PERIODS)}")
        return {**defaults, **{k: _number(v, f"{where}.{k}", int, 1) for k, v in value.items()}}
    n = _number(value, where, int, 1)
    return {p: n for p in PERIODS}


def parse_alerts(raw: typing.Any, source: str = "<config>") -> AlertThresholds:
    """Validates the optional `alerts:` section.

    Args:
        raw: The section as parsed (None: every default).
        source: The file name, used in error messages.

    Returns:
        The thresholds.

    Raises:
        ConfigError: naming the offending field (e.g. `brands.yaml: alerts.z_threshold: ...`).
    """
    if raw is None:
        return AlertThresholds()
    where = f"{source}: alerts"
    _section(raw, _ALERT_KEYS, where, "a mapping of thresholds")
    out: dict[str, typing.Any] = {}
    if "periods" in raw:
        periods = _string_list(raw["periods"], f"{where}.periods")
        for i, p in enumerate(periods):
            if p not in PERIODS:
                raise ConfigError(f"{where}.periods[{i}]: unknown period {preview(p)}; allowed: {list(PERIODS)}")
        out["periods"] = tuple(dict.fromkeys(periods))
    if "baseline_periods" in raw:
        out["baseline_periods"] = _per_period(raw["baseline_periods"], f"{where}.baseline_periods",
                                              _DEFAULT_BASELINE)
    if "min_baseline_periods" in raw:
        out["min_baseline_periods"] = _per_period(raw["min_baseline_periods"], f"{where}.min_baseline_periods",
                                                  _DEFAULT_MIN_BASELINE)
    if "z_threshold" in raw:
        out["z_threshold"] = _number(raw["z_threshold"], f"{where}.z_threshold", float, 0.5)
    for key in ("min_negative_mentions", "min_mentions"):
        if key in raw:
            out[key] = _number(raw[key], f"{where}.{key}", int, 1)
    if "min_share_of_voice_drop" in raw:
        out["min_share_of_voice_drop"] = _number(raw["min_share_of_voice_drop"],
                                                 f"{where}.min_share_of_voice_drop", float, 0.0, 1.0)
    if "top_terms" in raw:
        out["top_terms"] = _number(raw["top_terms"], f"{where}.top_terms", int, 0)
    thresholds = AlertThresholds(**out)
    for p in thresholds.periods:
        if thresholds.min_baseline_periods[p] > thresholds.baseline_periods[p]:
            raise ConfigError(
                f"{where}.min_baseline_periods.{p}: {thresholds.min_baseline_periods[p]} is more than "
                f"baseline_periods.{p} ({thresholds.baseline_periods[p]})")
    return thresholds


@dataclass(frozen=True)
class Brand:
    """One brand to listen for.

    Attributes:
        id: Stable identifier used in every output row.
        names: Plain-text names (untagged mentions).
        handles: Account handles without '@' (tagged mentions).
        hashtags: Hashtags without '#' (tagged mentions).
        exclude: Phrases inside which an untagged match does not count (a trailing '*' is a prefix).
        competitors: Ids of the brands in its competitive set.
        query: The query as written (schemas.query), or None.
        transliterate: Also match the Serbian Latin form of Cyrillic terms and vice versa.
        inflect: Also match Slavic case endings and possessives of untagged terms.
        query_tree: The parsed `query` (filled by `parse_config`).
        response: The response queue's settings (`ResponseConfig`).
        ambiguous: True: a match on its names counts only when the post is about the brand (judged from
            context, `transforms.relevance`); False: never judged; None: judged when the relevance step
            detects a name as a common word.
        category: What the brand is, in a few words ("mobile operator").
        description: Phrases saying what the brand is, any languages.
        products: Product names; one named in a post makes a match on the brand relevant.
    """

    id: str
    names: tuple[str, ...] = ()
    handles: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    competitors: tuple[str, ...] = ()
    query: str | None = None
    transliterate: bool = False
    inflect: bool = True
    query_tree: Node | None = field(default=None, compare=False, repr=False)
    response: "ResponseConfig" = field(default_factory=lambda: ResponseConfig())
    ambiguous: bool | None = None
    category: str | None = None
    description: tuple[str, ...] = ()
    products: tuple[str, ...] = ()

    def answering_accounts(self) -> tuple[str, ...]:
        """The handles whose replies answer for the brand: its own handles (and its query's) and `response.accounts`."""
        return tuple(dict.fromkeys(self.search_terms()[1] + self.response.accounts))

    def rules(self) -> list[Rule]:
        """The brand's rules: the simple form compiled to queries, then each top-level branch of `query`."""
        out = []
        for label, nodes in (("names", [_term(n) for n in self.names]),
                             ("handles", [Tag("@", h) for h in self.handles]),
                             ("hashtags", [Tag("#", h) for h in self.hashtags])):
            if nodes:
                out.append(Rule(label, nodes[0] if len(nodes) == 1 else Or(tuple(nodes))))
        if self.query_tree is not None:
            for branch in branches(self.query_tree):
                out.append(Rule("query: " + " ".join(self.query[branch.start:branch.end].split()), branch))
        return out

    def search_terms(self) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """(names, handles, hashtags) of the simple form plus the query's terms and tags outside NOT.

        For connectors that ask a platform's search for the brand: a brand configured only with a
        `query` still has terms to search for (wildcards without their '*').
        """
        names, handles, hashtags = list(self.names), list(self.handles), list(self.hashtags)
        for node in _positive_atoms(self.query_tree):
            if isinstance(node, Term):
                names.append(node.text)
            elif node.sigil == "@":
                handles.append(node.name)
            else:
                hashtags.append(node.name)
        return tuple(dict.fromkeys(names)), tuple(dict.fromkeys(handles)), tuple(dict.fromkeys(hashtags))


def _positive_atoms(node: Node | None) -> typing.Iterator[Term | Tag]:
    if isinstance(node, (Term, Tag)):
        yield node
    elif isinstance(node, Near):
        yield from _positive_atoms(node.left)
        yield from _positive_atoms(node.right)
    elif isinstance(node, (And, Or)):
        for child in node.children:
            yield from _positive_atoms(child)


class Rule(typing.NamedTuple):
    """One rule of a brand: a label shown in `matched_rule` and the query tree it stands for."""

    label: str
    node: Node


def _term(text: str) -> Term:
    wildcard = text.endswith("*") and len(text) > 1
    return Term(text[:-1].rstrip() if wildcard else text, wildcard, " " in text)


@dataclass(frozen=True)
class BrandConfig:
    """The validated configuration: brands in file order, the alert thresholds and the topic settings."""

    brands: tuple[Brand, ...]
    source: str = "<config>"
    alerts: AlertThresholds = field(default_factory=AlertThresholds)
    topics: TopicsConfig = field(default_factory=TopicsConfig)
    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    relevance: RelevanceConfig = field(default_factory=RelevanceConfig)

    def brand_ids(self) -> list[str]:
        """Returns the brand ids in file order."""
        return [b.id for b in self.brands]

    def competitive_set(self, brand_id: str) -> tuple[str, ...]:
        """Returns the brand and its competitors, or () when it has none."""
        brand = {b.id: b for b in self.brands}[brand_id]
        return (brand.id,) + brand.competitors if brand.competitors else ()


# Bounds on a brand's lists: far above any real brand (a few dozen names), far below what would make
# the matcher's compiled patterns or an error message a problem.
MAX_LIST_ITEMS = 1_000
MAX_ITEM_CHARS = 500


def _string_list(value: typing.Any, where: str, strip: str = "", keep_spaces: bool = False) -> tuple[str, ...]:
    """A list of non-empty strings (a single string is a list of one); `strip`: a sigil to drop in front.

    Items are stripped of surrounding whitespace unless `keep_spaces` (then the caller rejects it).
    """
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list of strings, got {type(value).__name__}")
    if len(value) > MAX_LIST_ITEMS:
        raise ConfigError(f"{where}: {len(value):,} items, more than the limit of {MAX_LIST_ITEMS:,}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, (str, int)) or isinstance(item, bool):
            raise ConfigError(f"{where}[{i}]: expected a string, got {type(item).__name__}")
        text = str(item) if keep_spaces else str(item).strip()
        if len(text) > MAX_ITEM_CHARS:
            raise ConfigError(f"{where}[{i}]: {preview(text)} is longer than {MAX_ITEM_CHARS} characters")
        if strip and text.startswith(strip):
            text = text[len(strip):]
        if not text:
            raise ConfigError(f"{where}[{i}]: empty string")
        out.append(text)
    return tuple(out)


# ---- the response queue (per brand `response:`; docs/response-queue.md) ----------------------

_RESPONSE_KEYS = ("accounts", "target_minutes", "horizon_days", "min_p_negative", "question_topics",
                  "thank_min_followers", "thank_min_engagement")
DEFAULT_QUESTION_TOPICS = ("purchase_delivery", "customer_service", "price_promotion")


@dataclass(frozen=True)
class ResponseConfig:
    """What enters a brand's response queue and how fast it should be answered (a brand's optional `response:`).

    Attributes:
        accounts: Handles (without '@') that answer for the brand beside its `handles` (e.g. a support account).
        target_minutes: The response-time target; an item older than this has breached it.
        horizon_days: Items older than this leave the queue (and replies later than this do not count).
        min_p_negative: A negative mention enters as a complaint when its p_negative is at least this.
        question_topics: An untagged question enters when it carries one of these topics (a tagged one always).
        thank_min_followers: A positive untagged mention enters to be thanked when its author has at least
            this many followers ...
        thank_min_engagement: ... or the post at least this many likes + reposts + replies + quotes.
    """

    accounts: tuple[str, ...] = ()
    target_minutes: int = 120
    horizon_days: int = 7
    min_p_negative: float = 0.0
    question_topics: tuple[str, ...] = DEFAULT_QUESTION_TOPICS
    thank_min_followers: int = 1000
    thank_min_engagement: int = 50


def parse_response(raw: typing.Any, where: str) -> ResponseConfig:
    """Validates a brand's optional `response:` mapping (None: every default); errors name the field."""
    if raw is None:
        return ResponseConfig()
    _section(raw, _RESPONSE_KEYS, where)
    out: dict[str, typing.Any] = {}
    if "accounts" in raw:
        accounts = _string_list(raw["accounts"], f"{where}.accounts", strip="@", keep_spaces=True)
        for j, v in enumerate(accounts):
            if not _HANDLE_RE.fullmatch(v):
                raise ConfigError(f"{where}.accounts[{j}]: {preview(v)} may only hold up to 100 letters, digits "
                                  "and '_' (no spaces or line breaks)")
        out["accounts"] = accounts
    if "target_minutes" in raw:
        out["target_minutes"] = _number(raw["target_minutes"], f"{where}.target_minutes", int, 1, 525_600)
    if "horizon_days" in raw:
        # A windowed run reads the committed mentions back for at least 90 days: the horizon fits in them.
        out["horizon_days"] = _number(raw["horizon_days"], f"{where}.horizon_days", int, 1, 90)
    if "min_p_negative" in raw:
        out["min_p_negative"] = _number(raw["min_p_negative"], f"{where}.min_p_negative", float, 0.0, 1.0)
    if "question_topics" in raw:
        topics = _string_list(raw["question_topics"], f"{where}.question_topics")
        for j, v in enumerate(topics):
            if not _TOPIC_NAME_RE.fullmatch(v):
                raise ConfigError(f"{where}.question_topics[{j}]: {preview(v)} is not a topic name")
        out["question_topics"] = topics
    for key in ("thank_min_followers", "thank_min_engagement"):
        if key in raw:
            out[key] = _number(raw[key], f"{where}.{key}", int, 0)
    config = ResponseConfig(**out)
    if config.target_minutes > config.horizon_days * 1440:
        raise ConfigError(f"{where}.target_minutes: {config.target_minutes} is longer than horizon_days "
                          f"({config.horizon_days} days): an item would leave the queue before breaching it")
    return config


def parse_config(data: typing.Any, source: str = "<config>") -> BrandConfig:
    """Validates a parsed YAML document and builds the BrandConfig.

    Args:
        data: The document, as `yaml.safe_load` returns it.
        source: The file name, used in error messages.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: naming the offending field.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with a 'brands' list")
    unknown = sorted(set(data) - {"brands", "alerts", "topics", "languages", "relevance"}, key=str)
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key(s) {preview(unknown, 200)}; expected 'brands' "
                          "(and optionally "
                          "'alerts', 'topics', 'languages', 'relevance')")
    raw_brands = data.get("brands")
    if not isinstance(raw_brands, list) or not raw_brands:
        raise ConfigError(f"{source}: brands: expected a non-empty list of brands")

    brands: list[Brand] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_brands):
        where = f"{source}: brands[{i}]"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a mapping with at least 'id' and 'names'")
        _refuse_unknown_keys(raw, _BRAND_KEYS, where)
        brand_id = raw.get("id")
        if not isinstance(brand_id, str) or not _ID_RE.fullmatch(brand_id):
            raise ConfigError(
                f"{where}.id: {preview(brand_id)} is not a valid id (up to 64 lowercase letters, digits, '_' or "
                "'-', starting with a letter or digit; no spaces or line breaks)")
        if brand_id in seen:
            raise ConfigError(f"{where}.id: duplicate id {brand_id!r} (also brands[{seen[brand_id]}])")
        seen[brand_id] = i
        # Not stripped: "Sprite\n" would otherwise be a second, different-looking spelling of a handle.
        handles = _string_list(raw.get("handles"), f"{where}.handles", strip="@", keep_spaces=True)
        hashtags = _string_list(raw.get("hashtags"), f"{where}.hashtags", strip="#", keep_spaces=True)
        for key, values in (("handles", handles), ("hashtags", hashtags)):
            for j, v in enumerate(values):
                if not _HANDLE_RE.fullmatch(v):
                    raise ConfigError(f"{where}.{key}[{j}]: {preview(v)} may only hold up to 100 letters, digits "
                                      "and '_' (no spaces or line breaks)")
        names = _string_list(raw.get("names"), f"{where}.names")
        exclude = _string_list(raw.get("exclude"), f"{where}.exclude")
        for key, values in (("names", names), ("exclude", exclude)):
            for j, v in enumerate(values):
                if "*" in v[:-1] or (v.endswith("*") and len(_WORD_CHAR.findall(v)) < 3):
                    raise ConfigError(f"{where}.{key}[{j}]: {preview(v)}: '*' only at the end, after at least 3 "
                                      "letters")
                if not _WORD_CHAR.search(v):
                    raise ConfigError(f"{where}.{key}[{j}]: {preview(v)} has no letters or digits to match")
        query, tree = raw.get("query"), None
        if query is not None:
            if not isinstance(query, str):
                raise ConfigError(f"{where}.query: expected a string, got {type(query).__name__}")
            try:
                tree = parse_query(query)
            except QueryError as exc:
                raise ConfigError(f"{where}.query: {exc}") from None
        flags = {}
        for key, default in (("transliterate", False), ("inflect", True), ("ambiguous", None)):
            value = raw.get(key, default)
            # `ambiguous` may stay unset (None): then detection decides.
            flags[key] = value if value is None and default is None else _boolean(value, f"{where}.{key}")
        category = _string_list(raw.get("category"), f"{where}.category")
        if len(category) > 1:
            raise ConfigError(f"{where}.category: expected one short phrase (e.g. 'mobile operator'), got a list")
        description = _string_list(raw.get("description"), f"{where}.description")
        products = _string_list(raw.get("products"), f"{where}.products")
        if flags["ambiguous"] and not (category or description or products):
            raise ConfigError(f"{where}.ambiguous: brand {brand_id!r} is marked ambiguous but says nothing to judge "
                              "its posts by: give a category (e.g. 'mobile operator'), a description or products")
        brand = Brand(
            id=brand_id,
            names=names,
            handles=handles,
            hashtags=hashtags,
            exclude=exclude,
            competitors=_string_list(raw.get("competitors"), f"{where}.competitors"),
            query=query,
            query_tree=tree,
            response=parse_response(raw.get("response"), f"{where}.response"),
            category=category[0] if category else None,
            description=description,
            products=products,
            **flags,
        )
        if not (brand.names or brand.handles or brand.hashtags or brand.query):
            raise ConfigError(
                f"{where}.names: brand {brand_id!r} needs at least one of names, handles, hashtags, query")
        brands.append(brand)

    for i, brand in enumerate(brands):
        for j, comp in enumerate(brand.competitors):
            if comp == brand.id:
                raise ConfigError(f"{source}: brands[{i}].competitors[{j}]: a brand cannot compete with itself")
            if comp not in seen:
                raise ConfigError(f"{source}: brands[{i}].competitors[{j}]: unknown brand {preview(comp)} "
                                  f"(known: {preview(sorted(seen), 200)})")
    languages = DEFAULT_LANGUAGES
    if data.get("languages") is not None:
        languages = parse_languages(data["languages"], f"{source}: languages")
    # A brand query's `lang:xx` needs xx among the detected languages, or posts without a platform code
    # could never satisfy it.
    for brand in brands:
        for atom in atoms(brand.query_tree) if brand.query_tree is not None else ():
            if isinstance(atom, Field) and atom.name == "lang" and atom.value[:2] not in languages:
                languages += (atom.value[:2],)
    return BrandConfig(tuple(brands), source, parse_alerts(data.get("alerts"), source),
                       parse_topics(data.get("topics"), source), languages,
                       parse_relevance(data.get("relevance"), source))


def load_config(path: str, opener: typing.Callable[[str], typing.IO[bytes]] = None) -> BrandConfig:
    """Reads and validates a brand config file.

    Args:
        path: Local path (or any path `opener` understands, e.g. a gs:// path).
        opener: Opens `path` for reading bytes; defaults to the local `open`.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: when the file is missing, is not YAML, or a field is invalid.
    """
    try:
        with (opener(path) if opener else open(path, "rb")) as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except Exception as exc:  # OSError, and a filesystem Beam cannot reach (ValueError, BeamIOError)
        raise ConfigError(f"{path}: cannot read the brand config: {exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: the brand config is larger than {MAX_CONFIG_BYTES // 2**20} MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8: {exc}") from None
    loader = _BoundedLoader(text, path)
    try:
        data = loader.get_single_data()
    except ConfigError:
        raise
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except (ValueError, OverflowError) as exc:  # a scalar PyYAML cannot build, e.g. an int of 5,000 digits
        raise ConfigError(f"{path}: not valid YAML: {preview(str(exc), 200)}") from None
    finally:
        loader.dispose()
    return parse_config(data, source=path)


MAX_CONFIG_BYTES = 4 * 2**20
# A real config shares a list or two through anchors (`competitors: *drinks`); nested aliases that
# expand to millions of nodes (a "billion laughs" file of a few hundred bytes) are refused while composing.
MAX_ALIAS_NODES = 10_000
MAX_YAML_DEPTH = 50
PATH_KEY_CHARS = 40


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that refuses alias expansion beyond MAX_ALIAS_NODES nodes, recursive aliases and
    nesting deeper than MAX_YAML_DEPTH, naming the field (e.g. `brands[0].id`) where it stops.

    Counting while composing keeps the cost bounded whatever the file: each node's size with its
    aliases expanded is known when it is complete, and an alias adds its target's size.
    """

    def __init__(self, text: str, source: str):
        super().__init__(text)
        self._source = source
        self._paths: list[str] = []
        self._sizes: dict[int, int] = {}
        self._alias_nodes = 0

    def _error(self, path: str, message: str, line: int) -> ConfigError:
        return ConfigError(f"{self._source}: {path or '(top level)'}: {message} (line {line})")

    def compose_node(self, parent: yaml.Node | None, index: typing.Any) -> yaml.Node:
        """Composes a node as SafeLoader does, counting its size with aliases expanded and its depth."""
        base = self._paths[-1] if self._paths else ""
        if isinstance(index, int):
            path = f"{base}[{index}]"
        elif isinstance(index, yaml.ScalarNode):
            key = index.value if len(index.value) <= PATH_KEY_CHARS else index.value[:PATH_KEY_CHARS] + "..."
            path = f"{base}.{key}" if base else key
        else:
            path = base  # the document, or a mapping's key
        line = self.peek_event().start_mark.line + 1
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            size = self._sizes.get(id(node))
            if size is None:
                raise self._error(path, "an alias inside the node it names (a recursive structure)", line)
            self._alias_nodes += size
            if self._alias_nodes > MAX_ALIAS_NODES:
                raise self._error(path, f"YAML aliases expand to more than {MAX_ALIAS_NODES:,} values (an alias "
                                        "bomb?); write the values out", line)
            return node
        if len(self._paths) >= MAX_YAML_DEPTH:
            raise self._error(path, f"nested deeper than {MAX_YAML_DEPTH} levels", line)
        self._paths.append(path)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._paths.pop()
        if isinstance(node, yaml.SequenceNode):
            size = 1 + sum(self._sizes[id(child)] for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            size = 1 + sum(self._sizes[id(k)] + self._sizes[id(v)] for k, v in node.value)
        else:
            size = 1
        self._sizes[id(node)] = size
        return node
