"""The job's command-line flags and their one validation: `validate(options) -> JobConfig`.

`SocialListeningOptions` is a Beam `PipelineOptions` subclass, so every standard Beam flag
(`--runner`, `--project`, `--direct_num_workers`, ...) works beside the job's own. Its flags
come in sections (the titles `python -m pipelines.run --help` prints); the platform
connectors' own flags (`--x_*`, `--mastodon_instance`, ...) are declared by each connector
in its module (`Connector.add_flags`) and added here for every connector registered in
`connectors.base.REGISTRY`, so this module knows no platform by name.

`validate` checks every flag and every rule between flags once, before any work, and
returns a frozen, typed `JobConfig`; a misconfiguration raises `ConfigError` with a
message that names the flag (the command line exits 2 with it). What needs the output
directory's history or the platforms (the window from the run log, the fetch plan from
the connectors' state and credentials) is planned afterwards, in `pipelines.plan`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import math
import os
import typing
import uuid
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions, TestOptions

from connectors.base import ConnectorSettings, connector_class, connector_names, parse_iso
from connectors.files import DEFAULT_MAX_TEXT_CHARS
from connectors.http import HttpPolicy
from schemas.config import DEFAULT_LANGUAGES, BrandConfig, ConfigError, load_config, parse_languages
from schemas.query import preview
from transforms.incremental import parse_day
from transforms.language import check_languages
from transforms.lease import DEFAULT_LEASE_MINUTES

# No platform's posts are older (the records' plausible range starts there too).
EARLIEST_DAY = datetime.date(1990, 1, 1)
MAX_SLICES = 10_000
# Upper bounds far beyond any sensible value, below those where a timedelta, a sleep or a thread pool
# overflows or the plan grows without end.
FLAG_MAXIMA = {"lookback_hours": 10 * 366 * 24, "slice_hours": 10 * 366 * 24, "http_timeout": 3600.0,
               "http_backoff": 3600.0, "http_backoff_cap": 3600.0, "max_rate_limit_wait": 86400.0,
               "inference_threads": 1024}
# A one-pass run on the DirectRunner holds every post in its shuffles (2.4 GB for 1M posts, 485 MB of
# JSON Lines; docs/benchmarks.md, "Scale, measured"): past this much input, a full run goes in slices
# (`pipelines.plan.plan_slicing`).
AUTO_CHUNK_BYTES = 128 * 2**20
AUTO_CHUNK_POSTS = 50_000


def _flag_value(text: str) -> bool:
    """'true'/'false' (and 1/0, yes/no) for flags that also take a value."""
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError(f"expected true or false, got {text!r}")
    return value in ("true", "1", "yes")


class SocialListeningOptions(PipelineOptions):
    """The job's own flags; every standard Beam flag keeps working beside them."""

    @classmethod
    def flag_actions(cls) -> list[argparse.Action]:
        """The job's own flags as argparse actions (for --help and the checks that go over every flag)."""
        parser = argparse.ArgumentParser(add_help=False)
        cls._add_argparse_args(parser)
        return list(parser._actions)

    @classmethod
    def _add_argparse_args(cls, parser):
        # Each section is an argument group, so that --help lists the flags under a title.
        root = parser
        parser = root.add_argument_group("Config, input and output")
        parser.add_argument("--config", help="Brand config YAML (see docs/configuration.md).")
        parser.add_argument("--input", action="append",
                            help="Input file path or glob (JSON Lines, CSV, Parquet; local or gs://...). "
                                 "Repeat the flag or separate with commas for several.")
        parser.add_argument("--output_dir", help="Where the Parquet tables and manifest.json go (local or gs://...); "
                                                 "checked writable at start.")
        parser.add_argument("--max_text_chars", type=int, default=DEFAULT_MAX_TEXT_CHARS,
                            help="Texts longer than this go to dead letters.")
        parser.add_argument("--lease_minutes", type=float, default=DEFAULT_LEASE_MINUTES,
                            help="How long a run's lease on --output_dir holds (one run at a time per directory); "
                                 "a run that died is taken over after it. Set it above your longest run.")
        parser.add_argument("--quiet", action="store_true",
                            help="No progress lines (posts read, texts scored, rate, ETA) on stderr.")
        parser = root.add_argument_group("Sentiment and topic models")
        parser.add_argument("--model", default="embedded",
                            help="Sentiment model: 'embedded' (multilingual e5-small + shipped head, no hub "
                                 "needed), a local Hugging Face checkpoint directory, or a hub id.")
        parser.add_argument("--label_map", default=None,
                            help="For --model checkpoints whose labels are not negative/neutral/positive: "
                                 "JSON object or 'LABEL_0=negative,LABEL_1=neutral,LABEL_2=positive'.")
        parser.add_argument("--inference_batch_size", type=int, default=64,
                            help="Largest batch of texts per model call.")
        parser.add_argument("--precision", choices=("auto", "fp32", "bf16", "int8", "int8-mixed"), default="auto",
                            help="Model arithmetic: auto (fp32, the exact labels); fp32; bf16 (fast only on CPUs with bfloat16 instructions); int8 "
                                 "(dynamic quantisation of every linear layer); int8-mixed (ONNX only: int8 except "
                                 "the embeddings and the feed-forward output projections; ~1.4x faster here, "
                                 "2-3 posts in 76 of a language labelled differently). `make eval` measures "
                                 "the cost.")
        parser.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto",
                            help="Runtime of the embedded model: auto (ONNX Runtime, fused graph exported once into "
                                 "the cache, where installed and for fp32/int8; else torch), onnx or torch.")
        parser.add_argument("--max_tokens", type=int, default=256,
                            help="Texts longer than this many tokens are truncated before scoring.")
        parser.add_argument("--inference_threads", type=int, default=0,
                            help="Torch threads per worker process; 0: the CPUs the process may use, divided "
                                 "by --direct_num_workers in multi_processing mode.")
        parser.add_argument("--topic_model", default="embedded",
                            help="Topics: 'embedded' (the config's taxonomy against the e5 encoder, same pass as "
                                 "the embedded sentiment model), 'none', or a Hugging Face zero-shot NLI model or "
                                 "topic classifier (directory or hub id).")
        parser.add_argument("--topic_label_map", default=None,
                            help="For a --topic_model classifier: its labels -> topic names or 'ignore' "
                                 "('LABEL_0=price_promotion,LABEL_1=ignore' or JSON); for an NLI model whose "
                                 "entailment label is not called so: 'entailment=LABEL_2'.")
        parser.add_argument("--topic_threshold", type=float, default=None,
                            help="Score a topic needs to be kept on a row (0 < t <= 1); default: the config's "
                                 "topics.threshold, else 0.5.")
        parser.add_argument("--detect_languages", default=None,
                            help="Comma-separated ISO 639-1 codes the job detects for posts that arrive without a "
                                 "language (docs/language.md); default: the config's `languages:`, else "
                                 f"{','.join(DEFAULT_LANGUAGES)}.")
        parser = root.add_argument_group("Platform connectors (docs/connectors.md; each connector's own flags "
                                         "follow in a section of their own)")
        parser.add_argument("--source", action="append",
                            help="Where posts come from: file (the default; reads --input), "
                                 f"{', '.join(connector_names())}. Repeat the flag or separate with commas for "
                                 "several.")
        parser.add_argument("--langs", default=None,
                            help="Comma-separated language codes to search in (X lang:, Bluesky lang:); "
                                 "default: every language.")
        parser.add_argument("--start_time", default=None,
                            help="Backfill from this ISO 8601 time (with --end_time, default now). Without it a run "
                                 "is incremental: from each query's stored state, or --lookback_hours back.")
        parser.add_argument("--end_time", default=None, help="End (exclusive) of the backfill window, ISO 8601.")
        parser.add_argument("--slice_hours", type=float, default=24.0,
                            help="Backfill slice length: one parallel task per query and slice.")
        parser.add_argument("--lookback_hours", type=float, default=168.0,
                            help="How far a query's first incremental run looks back (X recent search: 7 days).")
        parser.add_argument("--page_size", type=int, default=100,
                            help="Posts asked for per page (capped at each platform's maximum).")
        parser.add_argument("--max_pages_per_query", type=int, default=100,
                            help="Pages one task may read; the rest is left for the next run (rate-limit budget).")
        parser.add_argument("--max_rate_limit_wait", type=float, default=900.0,
                            help="Longest wait (s) for a rate-limit reset; a later reset stops the query and the "
                                 "state records where, for the next run.")
        parser.add_argument("--http_timeout", type=float, default=30.0,
                            help="Deadline of one try of a request (s): connecting, the headers and the whole "
                                 "body; a slower answer, however steady, is a failed try.")
        parser.add_argument("--http_max_attempts", type=int, default=5,
                            help="Tries per request for 5xx answers, timeouts and dropped connections.")
        parser.add_argument("--http_backoff", type=float, default=1.0,
                            help="First retry backoff (s); doubles per try, with jitter.")
        parser.add_argument("--http_backoff_cap", type=float, default=60.0, help="Longest retry backoff (s).")
        for name in connector_names():
            connector = connector_class(name)
            connector.add_flags(root.add_argument_group(
                f"Connector {name} (--source {name}; declared in {connector.__module__.replace('.', '/')}.py)"))
        # Without them a run processes everything and replaces every table.
        parser = root.add_argument_group("Windows and slices (docs/running.md)")
        parser.add_argument("--window_start", default=None,
                            help="Process only posts created from this day on (YYYY-MM-DD, UTC) and replace only "
                                 "the partitions the window touches; with --incremental, the first run's start.")
        parser.add_argument("--window_end", default=None,
                            help="Day after the window's last day (exclusive, YYYY-MM-DD, UTC); default: today.")
        # A value is optional (`--incremental`, `--incremental=true`): Flex Template parameters always carry one.
        parser.add_argument("--incremental", nargs="?", const=True, default=False, type=_flag_value,
                            help="Process the days since the last successful windowed run's end (the run log "
                                 "<output_dir>/_state/runs.json) up to --window_end.")
        parser.add_argument("--chunk_days", type=int, default=0,
                            help="Run a full run from files in slices of this many days of posts, one pipeline "
                                 "after another (0: all at once). Bounds the memory of a runner that keeps "
                                 "shuffles in memory (the DirectRunner) by a slice's posts; same outputs.")
        parser.add_argument("--chunk_posts", type=int, default=None,
                            help="Run a full run from files in slices of at most this many posts (a busier day "
                                 "is split by post id), one pipeline after another (0: no limit). With or "
                                 "without --chunk_days; bounds the DirectRunner's memory whatever the input's "
                                 "size; same outputs. Default: on the DirectRunner, slices of "
                                 f"{AUTO_CHUNK_POSTS:,} posts for --input files over "
                                 f"{AUTO_CHUNK_BYTES // 2**20} MiB in all, else one pass.")


# ---- the validated configuration ------------------------------------------------------------------

@dataclass(frozen=True)
class ModelConfig:
    """The sentiment and topic model flags, checked (`models.handler.ScorerModelHandler` takes them as they are).

    `topic_threshold` is --topic_threshold, else the config's `topics.threshold`, else 0.5; `threads` is
    --inference_threads, or the CPUs shared among local worker processes, or None (every CPU); `topics` is
    the taxonomy: the defaults merged with the config's `topics:` (empty with --topic_model none).
    """

    spec: str
    label_map: dict[str, str] | None
    batch_size: int
    precision: str
    backend: str
    max_tokens: int
    threads: int | None
    topic_model: str
    topic_label_map: dict[str, str] | None
    topic_threshold: float
    topics: tuple[typing.Any, ...]


@dataclass(frozen=True)
class FetchConfig:
    """The platform sources: each connector's settings and the run's time range.

    Attributes:
        connectors: Connector name -> its settings (built by the connector from its own flags).
        start, end: A backfill's range (None: incremental from the stored state).
        slice_hours: Backfill slice length.
        lookback_hours: How far a query's first incremental run looks back.
    """

    connectors: dict[str, ConnectorSettings]
    start: datetime.datetime | None
    end: datetime.datetime | None
    slice_hours: float
    lookback_hours: float


@dataclass(frozen=True)
class WindowFlags:
    """--window_start, --window_end and --incremental (the window itself is planned from the run log)."""

    start: datetime.date | None
    end: datetime.date | None
    incremental: bool


@dataclass(frozen=True)
class JobConfig:
    """Every flag of the job, validated and typed.

    Attributes:
        config_path: --config.
        brands: The brand config it holds.
        sources: 'file' and/or connector names, in order, once each.
        inputs: The --input patterns (each matches a file).
        output_dir: --output_dir without a trailing '/'.
        max_text_chars: --max_text_chars.
        model: The model flags.
        fetch: The platform sources' settings; None for files only.
        window: The window flags; None for a full run.
        chunk_days: --chunk_days (0: no limit by days).
        chunk_posts: --chunk_posts; None when not given (then `pipelines.plan.plan_slicing` decides).
        runner: --runner ('' when not given: the DirectRunner).
        dry_run: --dry_run: build the job, run nothing.
        quiet: --quiet: no progress lines on stderr.
        lease_minutes: --lease_minutes: how long the run's lease on --output_dir holds.
    """

    config_path: str
    brands: BrandConfig
    sources: tuple[str, ...]
    inputs: tuple[str, ...]
    output_dir: str
    max_text_chars: int
    model: ModelConfig
    fetch: FetchConfig | None
    window: WindowFlags | None
    chunk_days: int
    chunk_posts: int | None
    runner: str
    dry_run: bool
    quiet: bool
    lease_minutes: float


def validate(options: PipelineOptions) -> JobConfig:
    """Checks every flag and every rule between flags, once, before any work.

    Args:
        options: The parsed pipeline options.

    Returns:
        The job's configuration.

    Raises:
        ConfigError: naming the flag (or config field) at fault.
    """
    opts = options.view_as(SocialListeningOptions)
    dry_run = bool(options.view_as(TestOptions).dry_run)
    if not opts.config:
        raise ConfigError("--config is required: the brand config YAML (e.g. --config brands.yaml)")
    sources = _sources(opts.source)
    if "file" in sources and not opts.input:
        raise ConfigError("--input is required: a file path or glob (e.g. --input 'data/*.jsonl')")
    sliced = " and ".join(flag for flag, value in (("--chunk_days", opts.chunk_days),
                                                   ("--chunk_posts", opts.chunk_posts)) if (value or 0) > 0)
    if sliced and sources != ("file",):
        raise ConfigError(f"{sliced} reads --input files only; fetch from the platforms in a run without it")
    if opts.input and "file" not in sources:
        raise ConfigError("--input is read by the file source only: add it to --source (e.g. --source file,x)")
    if not opts.output_dir:
        raise ConfigError("--output_dir is required: where the Parquet tables go (e.g. --output_dir out/)")
    if opts.max_text_chars <= 0:
        raise ConfigError("--max_text_chars must be positive")
    if opts.inference_batch_size <= 0:
        raise ConfigError("--inference_batch_size must be positive")
    if not opts.lease_minutes > 0:
        raise ConfigError("--lease_minutes must be positive")
    for flag, value in (("--chunk_days", opts.chunk_days), ("--chunk_posts", opts.chunk_posts or 0)):
        if value < 0:
            raise ConfigError(f"{flag} must not be negative (0: no limit)")
    windowed = bool(opts.window_start or opts.window_end or opts.incremental)
    if sliced and windowed:
        raise ConfigError(f"{sliced} slices a full run; a windowed run already processes its window only "
                          f"(drop {sliced}, or run the windows one after another)")
    if sliced and dry_run:
        raise ConfigError(f"{sliced} runs several pipelines; --dry_run builds one (drop {sliced})")
    if opts.window_end and not (opts.window_start or opts.incremental):
        raise ConfigError("--window_end needs --window_start (a backfill window) or --incremental")
    days = {flag: _day_flag(getattr(opts, flag), f"--{flag}") for flag in ("window_start", "window_end")}
    _check_numbers(opts)
    flags = {action.dest: getattr(opts, action.dest) for action in SocialListeningOptions.flag_actions()}
    fetch = _fetch_config(flags, [s for s in sources if s != "file"])
    brands = load_config(opts.config, opener=FileSystems.open)
    brands = _with_languages(brands, opts.detect_languages)
    model = model_config(opts, options, brands)
    patterns = tuple(p.strip() for raw in opts.input or () for p in raw.split(",") if p.strip())
    for pattern in patterns:
        try:
            found = FileSystems.match([pattern])[0].metadata_list
        except Exception as exc:  # FileSystems raises BeamIOError and friends
            raise ConfigError(f"--input {preview(pattern, 300)}: cannot list files: {exc}") from None
        if not found:
            raise ConfigError(f"--input {preview(pattern, 300)} matches no file")
    if not dry_run:  # a dry run writes nothing
        check_output_dir(opts.output_dir)
    return JobConfig(
        config_path=opts.config, brands=brands, sources=sources, inputs=patterns,
        output_dir=opts.output_dir.rstrip("/"), max_text_chars=opts.max_text_chars, model=model, fetch=fetch,
        window=WindowFlags(days["window_start"], days["window_end"], bool(opts.incremental)) if windowed else None,
        chunk_days=opts.chunk_days, chunk_posts=opts.chunk_posts,
        runner=options.view_as(StandardOptions).runner or "", dry_run=dry_run, quiet=bool(opts.quiet),
        lease_minutes=opts.lease_minutes)


def _with_languages(brands: BrandConfig, flag: str | None) -> BrandConfig:
    """The config with --detect_languages in place of its `languages:`; every code checked against the detector."""
    if flag is not None:
        languages = parse_languages(flag, "--detect_languages")
        return dataclasses.replace(brands, languages=check_languages(languages, "--detect_languages"))
    return dataclasses.replace(brands, languages=check_languages(brands.languages, f"{brands.source}: languages"))


def _sources(raw: typing.Sequence[str] | None) -> tuple[str, ...]:
    """The --source names, in order, once each; 'file' when none is given."""
    sources = tuple(dict.fromkeys(s.strip().lower() for item in raw or ["file"] for s in item.split(",")
                                  if s.strip()))
    known = ("file",) + tuple(connector_names())
    for name in sources or ("",):
        if name not in known:
            raise ConfigError(f"--source {preview(name)} is not a source; choose from {', '.join(known)}")
    return sources


def _day_flag(value: str | None, flag: str) -> datetime.date | None:
    """A YYYY-MM-DD flag (None when not given), not before EARLIEST_DAY."""
    if not value:
        return None
    try:
        day = parse_day(value, flag)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if day < EARLIEST_DAY:
        raise ConfigError(f"{flag}: {day} is before {EARLIEST_DAY}, the earliest day a post may have")
    return day


def _check_numbers(opts: SocialListeningOptions) -> None:
    """Every number flag is finite (argparse takes 'nan' and 'inf' for a float) and within its maximum."""
    for action in SocialListeningOptions.flag_actions():
        value = getattr(opts, action.dest, None)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{action.option_strings[0]} must be a finite number, got {value}")
        if action.dest in FLAG_MAXIMA and value is not None and value > FLAG_MAXIMA[action.dest]:
            raise ConfigError(f"{action.option_strings[0]} must be at most {FLAG_MAXIMA[action.dest]:,}, got {value}")


def _time_flag(value: str | None, flag: str) -> datetime.datetime | None:
    try:
        return parse_iso(value)
    except ValueError:
        raise ConfigError(f"{flag}: {preview(value)} is not an ISO 8601 time (e.g. 2026-10-01T00:00:00Z)") from None


def _fetch_config(flags: typing.Mapping[str, typing.Any], platforms: typing.Sequence[str]
                  ) -> FetchConfig | None:
    """The platform flags, checked, and each connector's settings built by the connector (None: files only)."""
    if not platforms:
        for flag in ("start_time", "end_time"):
            if flags[flag]:
                raise ConfigError(f"--{flag} applies to the platform sources only (--source x, mastodon, ...)")
        return None
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = _time_flag(flags["start_time"], "--start_time"), _time_flag(flags["end_time"], "--end_time")
    if end is not None and start is None:
        raise ConfigError("--end_time needs --start_time (a backfill window); without both a run is incremental")
    if start is not None and start >= (end or now):
        raise ConfigError("--start_time must be before --end_time (and before now)")
    if start is not None and start.date() < EARLIEST_DAY:
        raise ConfigError(f"--start_time: {start.date()} is before {EARLIEST_DAY}, the earliest day a post may have")
    for flag in ("slice_hours", "lookback_hours", "page_size", "max_pages_per_query", "http_timeout",
                 "http_max_attempts"):
        if flags[flag] <= 0:
            raise ConfigError(f"--{flag} must be positive")
    for flag in ("max_rate_limit_wait", "http_backoff", "http_backoff_cap"):
        if flags[flag] < 0:
            raise ConfigError(f"--{flag} must not be negative")
    if start is not None and ((end or now) - start).total_seconds() / 3600 / flags["slice_hours"] > MAX_SLICES:
        raise ConfigError(f"--start_time .. --end_time in slices of --slice_hours: more than {MAX_SLICES:,} slices "
                          "per query; use longer slices or a shorter window")
    langs = tuple(dict.fromkeys(c.strip().lower() for c in (flags["langs"] or "").split(",") if c.strip()))
    for code in langs:
        if not code.isalpha() or not 2 <= len(code) <= 3:
            raise ConfigError(f"--langs: {preview(code)} is not a language code (e.g. en,ru,uk)")
    policy = HttpPolicy(timeout_s=flags["http_timeout"], max_attempts=flags["http_max_attempts"],
                        backoff_base_s=flags["http_backoff"], backoff_cap_s=flags["http_backoff_cap"],
                        max_rate_limit_wait_s=flags["max_rate_limit_wait"])
    common = ConnectorSettings(base_url="", http=policy, page_size=flags["page_size"],
                               max_pages=flags["max_pages_per_query"], langs=langs,
                               max_text_chars=flags["max_text_chars"])
    settings = {}
    for name in platforms:
        connector = connector_class(name)
        try:
            settings[name] = connector.settings_from_flags(flags, common)
            if start is not None:
                connector.check_backfill(settings[name], start, now)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return FetchConfig(settings, start, end, flags["slice_hours"], flags["lookback_hours"])


def parse_label_map(text: str | None, flag: str = "--label_map",
                    free_values: bool = False) -> dict[str, str] | None:
    """Parses --label_map (or --topic_label_map): a JSON object or 'A=negative,B=positive'.

    Args:
        text: The flag's value.
        flag: The flag, for error messages.
        free_values: Values may be any name (topics), not only negative/neutral/positive.
    """
    if not text:
        return None
    text = text.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ConfigError(f"{flag}: not valid JSON: {preview(str(exc), 200)}") from None
        if not isinstance(value, dict):
            raise ConfigError(f"{flag}: expected a JSON object")
        mapping = {str(k): str(v) for k, v in value.items()}
    else:
        mapping = {}
        for item in text.split(","):
            if "=" not in item:
                raise ConfigError(f"{flag}: {preview(item)} is not LABEL=ours")
            key, value = item.split("=", 1)
            mapping[key.strip()] = value.strip()
    if not free_values:
        bad = {k: v for k, v in mapping.items() if v not in ("negative", "neutral", "positive")}
        if bad:
            raise ConfigError(f"{flag}: values must be negative, neutral or positive; got {preview(bad, 200)}")
    return mapping


def model_config(opts: SocialListeningOptions, options: PipelineOptions, brands: BrandConfig) -> ModelConfig:
    """The model flags, checked against each other and against the config's `topics:` (part of `validate`).

    Args:
        opts: The job's options.
        options: All the pipeline options (the local worker processes share the CPUs).
        brands: The brand config (its `topics:` threshold and taxonomy).

    Raises:
        ConfigError: naming the flag, or the config's `topics:`.
    """
    from models.taxonomy import Topic, merge_taxonomy

    if not (opts.model or "").strip():
        raise ConfigError("--model must be 'embedded', a Hugging Face checkpoint directory or a hub id")
    if opts.max_tokens < 8:
        raise ConfigError("--max_tokens must be at least 8")
    if opts.inference_threads < 0:
        raise ConfigError("--inference_threads must not be negative")
    backend = _backend(opts)
    topics_config = brands.topics
    threshold = opts.topic_threshold
    if threshold is None:
        threshold = topics_config.threshold if topics_config and topics_config.threshold is not None else 0.5
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"--topic_threshold must be in (0, 1], got {threshold}")
    label_map = parse_label_map(opts.label_map)
    if label_map and opts.model.strip() == "embedded":
        raise ConfigError("--label_map applies to a Hugging Face --model; the embedded model already uses our labels")
    topic_model = (opts.topic_model or "").strip() or "embedded"
    topic_label_map = parse_label_map(opts.topic_label_map, "--topic_label_map", free_values=True)
    if topic_label_map and topic_model in ("embedded", "none"):
        raise ConfigError("--topic_label_map applies to a Hugging Face --topic_model only")
    custom = [Topic(name, phrases) for name, phrases in topics_config.taxonomy] if topics_config else []
    try:
        taxonomy = merge_taxonomy(custom, replace=bool(topics_config and topics_config.replace_defaults))
    except ValueError as exc:
        raise ConfigError(f"{brands.source}: topics: {exc}") from None
    threads = opts.inference_threads or None
    direct = options.view_as(DirectOptions)
    workers = direct.direct_num_workers or 1
    if threads is None and direct.direct_running_mode == "multi_processing" and workers > 1:
        from models.encoder import available_cpus  # torch is imported only when the CPUs must be shared

        threads = max(1, available_cpus() // workers)
    return ModelConfig(spec=opts.model.strip(), label_map=label_map, batch_size=opts.inference_batch_size,
                       precision=opts.precision, backend=backend, max_tokens=opts.max_tokens, threads=threads,
                       topic_model=topic_model,
                       topic_label_map=topic_label_map, topic_threshold=float(threshold),
                       topics=tuple(taxonomy) if topic_model != "none" else ())


def _backend(opts: SocialListeningOptions) -> str:
    """--backend, checked against --model and --precision (ONNX Runtime runs fp32, int8 and int8-mixed).

    `auto` always resolves (to torch where ONNX Runtime cannot run it), so only `onnx` is checked
    further, and only then are the model modules (and torch) imported.
    """
    backend = (opts.backend or "auto").strip()
    if backend not in ("auto", "torch", "onnx"):
        raise ConfigError(f"--backend must be one of auto, torch, onnx; got {preview(backend)}")
    if opts.precision == "int8-mixed" and opts.model.strip() != "embedded":
        raise ConfigError("--precision int8-mixed is a graph of the embedded model; Hugging Face checkpoints "
                          "(--model) run fp32, bf16 or int8")
    if backend == "onnx" and opts.model.strip() != "embedded":
        raise ConfigError("--backend onnx runs the embedded model; Hugging Face checkpoints (--model) run in "
                          "torch (--backend auto or torch)")
    if opts.precision == "int8-mixed" or backend == "onnx":
        from models.onnx_backend import resolve_backend

        try:
            resolve_backend(backend, opts.precision)
        except ValueError as exc:
            raise ConfigError(f"--backend / --precision: {exc}") from None
    return backend


def check_output_dir(output_dir: str) -> None:
    """Checks at start that --output_dir can be created and written, by writing and removing a probe file.

    The directories it had to create go again, so that a run stopped by a later check leaves nothing behind.

    Raises:
        ConfigError: naming --output_dir, e.g. when it is a file, lies under one, or is read-only.
    """
    where = f"--output_dir {preview(output_dir, 300)}"
    local = "://" not in output_dir
    if local and os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ConfigError(f"{where}: is a file, not a directory")
    missing = []  # the local directories the probe creates, deepest first
    path = os.path.abspath(output_dir) if local else ""
    while path and not os.path.lexists(path) and os.path.dirname(path) != path:
        missing.append(path)
        path = os.path.dirname(path)
    probe = FileSystems.join(output_dir.rstrip("/") or "/", f".write-probe-{uuid.uuid4().hex}")
    try:
        if local:
            os.makedirs(output_dir, exist_ok=True)
        with FileSystems.create(probe) as fh:
            fh.write(b"")
        FileSystems.delete([probe])
    except Exception as exc:  # OSError locally; BeamIOError, ValueError (no such filesystem) elsewhere
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ConfigError(f"{where}: cannot write there: {reason}") from None
    finally:
        for path in missing:
            with contextlib.suppress(OSError, ValueError):  # not empty (another writer), or never made
                os.rmdir(path)


# ---- --help ---------------------------------------------------------------------------------------

HELP_DESCRIPTION = """\
The social-listening batch job: mentions in (files and/or platforms); brand mentions with sentiment,
rate metrics, alerts and dead letters out. On the bundled sample:

  python -m pipelines.run --config brands.yaml --input 'data/sample/*.jsonl' --output_dir out/"""
BEAM_FLAGS_HINT = """\
Beam's own pipeline options work beside these flags (--runner, --project, --region, --temp_location,
--setup_file, --direct_num_workers, --direct_running_mode, --dry_run, ...). They are documented per runner
at https://beam.apache.org/documentation/runners/ and all together at
https://beam.apache.org/releases/pydoc/current/apache_beam.options.pipeline_options.html"""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's layout and shows a flag's default where it has one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "default" not in text:
            text += " (default: %(default)s)"
        return text


def help_text() -> str:
    """What `python -m pipelines.run --help` prints: every flag of the job, by section, and where Beam's are."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.run", formatter_class=_HelpFormatter,
                                     usage="%(prog)s --config FILE --output_dir DIR (--input GLOB | --source NAME) "
                                           "[flags] [Beam options]",
                                     description=HELP_DESCRIPTION, epilog=BEAM_FLAGS_HINT)
    SocialListeningOptions._add_argparse_args(parser)
    return parser.format_help()


def asks_for_help(argv: typing.Sequence[str]) -> bool:
    """Whether the command line asks for --help (or -h) before any '--'."""
    args = list(argv)
    args = args[:args.index("--")] if "--" in args else args
    return "-h" in args or "--help" in args
