"""The main batch job: mentions in; brand mentions with sentiment, rate metrics and dead letters out.

Run it on the bundled sample (what `make run` does)::

    python -m pipelines.run --config brands.yaml --input 'data/sample/*.jsonl' --output_dir out/

Any of Beam's own flags work as well, e.g. `--direct_num_workers 2
--direct_running_mode multi_processing` locally, or `--runner DataflowRunner --project P
--region R --temp_location gs://B/tmp --setup_file ./setup.py` on Google Cloud.

A long history on one machine: `--chunk_posts 50000` (and/or `--chunk_days 7`) runs the same full run
in slices of at most 50,000 posts (or a week) (`pipelines/chunked.py`), so that the DirectRunner holds a
slice's posts at a time, not all of them. A full run from files on the DirectRunner does so by itself
when its input is over 128 MiB (`--chunk_posts 0`: one pass whatever the size).

Fetch from the platforms instead of (or beside) files with `--source` (see README, "Connectors")::

    X_BEARER_TOKEN=... python -m pipelines.run --config brands.yaml --source x,mastodon --output_dir out/

Steps: ReadMentions (files and/or platforms) -> [Window, for --window_start/--incremental] -> Dedupe ->
MatchBrands -> ScoreSentiment ->
ComputeMetrics, ComputeTopicMetrics, ComputeResponseQueue -> DetectAlerts -> Write{BrandMentions,Metrics,
LangMetrics,TopicMetrics,Alerts,DeadLetters,ResponseQueue,QueueMetrics} (+ Posts, BrandReplies,
AccountSnapshots with platform sources) into the run's snapshot -> CommitRun, the job's last stage
(`transforms/commit.py`): it waits for every write, writes the connectors' state, the run log and a
`manifest.json` with the counts of every step, and switches `--output_dir` to the new snapshot in one
atomic step. The launcher only takes the directory's lease, plans, builds and runs; a launcher that
submits and returns (a Flex Template) still gets committed outputs.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import logging
import math
import os
import sys
import typing
import uuid
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import ModelHandler
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions, TestOptions

from connectors.base import ConnectorSettings, connector_names, parse_iso
from connectors.files import DEFAULT_MAX_TEXT_CHARS
from connectors.http import HttpPolicy
from schemas import BRAND_MENTION_SCHEMA, METRIC_SCHEMA, BrandMention, DeadLetter, Metric
from schemas.records import ALERT_SCHEMA, LANG_METRIC_SCHEMA, TOPIC_METRIC_SCHEMA, Alert, LangMetric, TopicMetric
from schemas.records import QUEUE_METRIC_SCHEMA, QueueMetric
from schemas.config import BrandConfig, ConfigError, load_config
from schemas.query import preview
from transforms.dedupe import DedupeMentions
from transforms.matching import MatchBrands
from transforms.alerts import DetectAlerts
from transforms.metrics import ComputeMetrics, MentionDays
from transforms.metrics_topics import ComputeTopicMetrics
from transforms.commit import CommitPlan, CommitRun, abandon, counted, file_sha256, recover, summed
from transforms.fetch import FETCH_TABLES, FetchPlan, ReadSources, plan_fetch
from transforms.incremental import (MergeRecomputed, ReadCommitted, RunWindow, SplitByWindow, context_file,
                                    load_runs, parse_day, plan_window)
from transforms.lease import DEFAULT_LEASE_MINUTES, LeaseHeld, acquire
from transforms.response_queue import ComputeResponseQueue, max_horizon, queue_recompute_from
from transforms.sentiment import ScoreSentiment
from transforms.snapshots import committed_path, snapshot_dir
from pipelines.tables import write_table

TABLES = ("brand_mentions", "metrics", "lang_metrics", "topic_metrics", "alerts", "dead_letters", "response_queue",
          "queue_metrics")
LOG = logging.getLogger("social_listening")


def _flag_value(text: str) -> bool:
    """'true'/'false' (and 1/0, yes/no) for flags that also take a value."""
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError(f"expected true or false, got {text!r}")
    return value in ("true", "1", "yes")


class SocialListeningOptions(PipelineOptions):
    """The job's own flags; every standard Beam flag keeps working beside them."""

    @classmethod
    def flag_actions(cls) -> typing.List[argparse.Action]:
        """The job's own flags as argparse actions (for --help and the checks that go over every flag)."""
        parser = argparse.ArgumentParser(add_help=False)
        cls._add_argparse_args(parser)
        return list(parser._actions)

    @classmethod
    def _add_argparse_args(cls, parser):
        # Each section is an argument group, so that --help lists the flags under a title.
        root = parser
        parser = root.add_argument_group("Config, input and output")
        parser.add_argument("--config", help="Brand config YAML (see README, 'Brand configuration').")
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
        parser = root.add_argument_group("Sentiment and topic models")
        parser.add_argument("--model", default="embedded",
                            help="Sentiment model: 'embedded' (multilingual e5-small + shipped head, no hub "
                                 "needed), a local Hugging Face checkpoint directory, or a hub id.")
        parser.add_argument("--label_map", default=None,
                            help="For --model checkpoints whose labels are not negative/neutral/positive: "
                                 "JSON object or 'LABEL_0=negative,LABEL_1=neutral,LABEL_2=positive'.")
        parser.add_argument("--inference_batch_size", type=int, default=64,
                            help="Largest batch of texts per model call.")
        parser.add_argument("--precision", choices=("fp32", "bf16", "int8"), default="fp32",
                            help="Model arithmetic: fp32; bf16 (fast only on CPUs with bfloat16 instructions); "
                                 "int8 (dynamic quantisation of the linear layers). `make eval` measures the cost.")
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
        parser = root.add_argument_group("Platform connectors (README, 'Connectors')")
        parser.add_argument("--source", action="append",
                            help="Where posts come from: file (the default; reads --input), x, mastodon, reddit, "
                                 "bluesky. Repeat the flag or separate with commas for several.")
        parser.add_argument("--x_base_url", default=None,
                            help="X API root (default https://api.x.com), e.g. an enterprise gateway or proxy.")
        parser.add_argument("--x_search", choices=("recent", "all"), default="recent",
                            help="X search endpoint: recent (last 7 days) or all (full archive, Pro/Enterprise).")
        parser.add_argument("--x_bearer_token_file", default=None,
                            help="File holding the X bearer token (local or gs://...); default: $X_BEARER_TOKEN.")
        parser.add_argument("--x_max_query_length", type=int, default=512,
                            help="Longest X query your access tier accepts; longer term lists are split.")
        parser.add_argument("--x_include_retweets", action="store_true",
                            help="Keep retweets (by default X queries carry -is:retweet).")
        parser.add_argument("--mastodon_instance", default=None,
                            help="Mastodon instance to query (default https://mastodon.social).")
        parser.add_argument("--reddit_base_url", default=None,
                            help="Reddit API root (default https://www.reddit.com, or https://oauth.reddit.com "
                                 "with $REDDIT_ACCESS_TOKEN).")
        parser.add_argument("--bluesky_base_url", default=None,
                            help="Bluesky XRPC root (default https://public.api.bsky.app, or https://bsky.social "
                                 "with $BLUESKY_HANDLE / $BLUESKY_APP_PASSWORD).")
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
        # Without them a run processes everything and replaces every table.
        parser = root.add_argument_group("Windows and slices (README, 'Running in production')")
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


@dataclass(frozen=True)
class JobConfig:
    """Everything `build_social_listening` needs, validated."""

    brands: BrandConfig
    inputs: typing.Tuple[str, ...]
    staging_dir: str
    model_handler: ModelHandler
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    fetch: typing.Optional[FetchPlan] = None
    # A windowed run (None: process everything): its committed tables are read back from output_dir.
    window: typing.Optional[RunWindow] = None
    output_dir: typing.Optional[str] = None


def build_social_listening(pipeline: beam.Pipeline, job: JobConfig) -> typing.Dict[str, beam.PCollection]:
    """Adds the whole job to `pipeline`.

    Args:
        pipeline: The pipeline (or TestPipeline) to add the steps to.
        job: The validated job configuration.

    Returns:
        The PCollections: 'brand_mentions', 'metrics', 'lang_metrics', 'topic_metrics', 'alerts',
        'dead_letters', 'response_queue', 'queue_metrics', 'unmatched', 'written' (one (table,
        partition, file, rows) per file written) and 'counts' ((name, value) pairs for the manifest);
        with a fetch plan also 'posts', 'brand_replies', 'account_snapshots' and 'state_files'.
    """
    read = pipeline | "ReadMentions" >> ReadSources(job.inputs, job.max_text_chars, job.fetch)
    window = job.window
    if window is None:
        deduped = read["mentions"] | "Dedupe" >> DedupeMentions()
        mentions = posts = deduped["mentions"]
    else:
        # Only the window's posts are scored; those of the context still answer complaints (posts).
        # The split comes first, so that a window's shuffles hold its own posts, not the whole input
        # (copies of a post share its creation time, so they land on the same side).
        split = read["mentions"] | "Window" >> SplitByWindow(window)
        deduped = split["window"] | "Dedupe" >> DedupeMentions()
        mentions = deduped["mentions"]
        # Context posts (counted as outside the window, copies included) only answer complaints: a
        # copy of a brand's reply changes no reply time, so they go to the metrics without a dedupe,
        # and as a second PCollection rather than flattened (a runner may copy a flattened input).
        posts = (mentions, split["context"])
    matched = mentions | "MatchBrands" >> MatchBrands(job.brands)
    scored = matched.matched | "ScoreSentiment" >> ScoreSentiment(job.model_handler)
    brand_mentions = scored["brand_mentions"]

    if window is None:
        metric_mentions = brand_mentions
        dates = mentions | "MentionDates" >> MentionDays()
    else:
        # Metrics are recomputed from the mentions: this window's, and the committed ones around it.
        committed = pipeline | "CommittedMentions" >> ReadCommitted(
            FileSystems.join(job.output_dir, "brand_mentions"), BrandMention, BRAND_MENTION_SCHEMA,
            context_file(window))
        metric_mentions = ((brand_mentions, committed)
                           | "WindowAndCommittedMentions" >> beam.Flatten().with_output_types(BrandMention))
        dates = pipeline | "WindowDates" >> beam.Create(window.date_bounds())
    # Every valid post goes in too: the brand accounts' own replies among them answer complaints.
    metric_inputs = {"brand_mentions": metric_mentions, "mention_dates": dates, "posts": posts}
    reply_coverage = []
    if job.fetch is not None:
        metric_inputs.update({k: read[k] for k in ("brand_replies", "account_snapshots")})
        if "x" in job.fetch.settings:  # the X connector fetches every brand handle's replies
            reply_coverage = [(b.id, "x") for b in job.brands.brands if b.search_terms()[1]]
    computed = metric_inputs | "ComputeMetrics" >> ComputeMetrics(job.brands, reply_coverage)
    metrics, lang_metrics = computed["metrics"], computed["lang_metrics"]
    topic_metrics = (metric_mentions, dates) | "ComputeTopicMetrics" >> ComputeTopicMetrics()
    alerts = (metrics, metric_mentions) | "DetectAlerts" >> DetectAlerts(job.brands)
    # The response queue meets the same mentions and posts (and so the same replies) as the metrics.
    queue = metric_inputs | "ComputeResponseQueue" >> ComputeResponseQueue(job.brands)
    queue_metrics = queue["queue_metrics"]
    if window is not None:
        # The periods the window touches (and later ones) from this run, earlier periods as committed.
        merged = {}
        for name, pcoll, record_type, schema in (("metrics", metrics, Metric, METRIC_SCHEMA),
                                                 ("lang_metrics", lang_metrics, LangMetric, LANG_METRIC_SCHEMA),
                                                 ("topic_metrics", topic_metrics, TopicMetric, TOPIC_METRIC_SCHEMA),
                                                 ("alerts", alerts, Alert, ALERT_SCHEMA)):
            label = "".join(w.title() for w in name.split("_"))
            earlier = pipeline | f"Committed{label}" >> ReadCommitted(
                FileSystems.join(job.output_dir, name), record_type, schema)
            merged[name] = (pcoll, earlier) | f"Merge{label}" >> MergeRecomputed(window, record_type)
        metrics, lang_metrics = merged["metrics"], merged["lang_metrics"]
        topic_metrics, alerts = merged["topic_metrics"], merged["alerts"]
        earlier = pipeline | "CommittedQueueMetrics" >> ReadCommitted(
            FileSystems.join(job.output_dir, "queue_metrics"), QueueMetric, QUEUE_METRIC_SCHEMA)
        queue_metrics = (queue_metrics, earlier) | "MergeQueueMetrics" >> MergeRecomputed(
            window, QueueMetric, queue_recompute_from(window.start, max_horizon(job.brands)))

    dead_letters = (
        (read["dead_letters"], scored["dead_letters"])
        | "AllDeadLetters" >> beam.Flatten().with_output_types(DeadLetter)
    )

    stage = job.staging_dir
    written = [
        write_table("brand_mentions", brand_mentions, stage),
        write_table("metrics", metrics, stage),
        write_table("lang_metrics", lang_metrics, stage),
        write_table("topic_metrics", topic_metrics, stage),
        write_table("alerts", alerts, stage),
        write_table("dead_letters", dead_letters, stage, file_prefix=dead_letter_prefix(window)),
        write_table("response_queue", queue["response_queue"], stage),
        write_table("queue_metrics", queue_metrics, stage),
    ]
    if job.fetch is not None:
        written += [write_table(name, read[name], stage) for name in FETCH_TABLES]
    written = written | "AllFiles" >> beam.Flatten()
    # The manifest's counts, counted inside the pipeline (the commit stage adds the written rows).
    counts = [counted(read["mentions"], "read.mentions", "ValidMentions"),
              counted(read["mentions"], "read.records", "ReadMentions"),
              counted(read["dead_letters"], "read.records", "UnreadRecords"),
              summed(deduped["duplicates"], "dedupe.duplicates", "Duplicates"),
              counted(matched.matched, "match.matched_mentions", "Matched"),
              counted(matched.unmatched, "match.unmatched_mentions", "Unmatched")]
    if window is not None:  # outside = read - in the window (before the dedupe)
        counts += [counted(read["mentions"], "window.outside_mentions", "AllMentions"),
                   counted(split["window"], "window.outside_mentions", "WindowMentions")
                   | "Negate" >> beam.Map(lambda kv: (kv[0], -kv[1]))]
    if "counts" in read:
        counts.append(read["counts"])
    outputs = {
        "brand_mentions": brand_mentions,
        "metrics": metrics,
        "lang_metrics": lang_metrics,
        "topic_metrics": topic_metrics,
        "alerts": alerts,
        "dead_letters": dead_letters,
        "response_queue": queue["response_queue"],
        "queue_metrics": queue_metrics,
        "unmatched": matched.unmatched,
        "written": written,
        "counts": tuple(counts) | "AllCounts" >> beam.Flatten(),
    }
    if job.fetch is not None:
        outputs.update({k: read[k] for k in ("posts", "brand_replies", "account_snapshots", "state_files")})
    return outputs


def dead_letter_prefix(window: typing.Optional[RunWindow]) -> str:
    """File names of the dead letters: a windowed run's carry its window, so that a rerun replaces them."""
    return "part" if window is None else f"part-{window.key}"


def parse_label_map(text: typing.Optional[str], flag: str = "--label_map",
                    free_values: bool = False) -> typing.Optional[typing.Dict[str, str]]:
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


def _sources(opts: SocialListeningOptions) -> typing.Tuple[str, ...]:
    """The --source names, in order, once each; 'file' when none is given."""
    raw = opts.source or ["file"]
    sources = tuple(dict.fromkeys(s.strip().lower() for item in raw for s in item.split(",") if s.strip()))
    known = ("file",) + tuple(connector_names())
    for name in sources or ("",):
        if name not in known:
            raise ConfigError(f"--source {preview(name)} is not a source; choose from {', '.join(known)}")
    return sources


def _validate(opts: SocialListeningOptions
              ) -> typing.Tuple[BrandConfig, typing.Tuple[str, ...], typing.Tuple[str, ...]]:
    """Checks the flags once, before any work, with messages that name the flag."""
    if not opts.config:
        raise ConfigError("--config is required: the brand config YAML (e.g. --config brands.yaml)")
    sources = _sources(opts)
    if "file" in sources and not opts.input:
        raise ConfigError("--input is required: a file path or glob (e.g. --input 'data/*.jsonl')")
    sliced = _sliced_by(opts)
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
    for flag, value in (("--chunk_days", opts.chunk_days), ("--chunk_posts", opts.chunk_posts or 0)):
        if value < 0:
            raise ConfigError(f"{flag} must not be negative (0: no limit)")
    if sliced and (opts.window_start or opts.window_end or opts.incremental):
        raise ConfigError(f"{sliced} slices a full run; a windowed run already processes its window only "
                          f"(drop {sliced}, or run the windows one after another)")
    if sliced and opts.view_as(TestOptions).dry_run:
        raise ConfigError(f"{sliced} runs several pipelines; --dry_run builds one (drop {sliced})")
    if opts.window_end and not (opts.window_start or opts.incremental):
        raise ConfigError("--window_end needs --window_start (a backfill window) or --incremental")
    for flag in ("window_start", "window_end"):
        if getattr(opts, flag):
            try:
                day = parse_day(getattr(opts, flag), f"--{flag}")
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            if day < EARLIEST_DAY:
                raise ConfigError(f"--{flag}: {day} is before {EARLIEST_DAY}, the earliest day a post may have")
    _check_numbers(opts)
    brands = load_config(opts.config, opener=FileSystems.open)
    patterns = tuple(p.strip() for raw in opts.input or () for p in raw.split(",") if p.strip())
    for pattern in patterns:
        try:
            found = FileSystems.match([pattern])[0].metadata_list
        except Exception as exc:  # FileSystems raises BeamIOError and friends
            raise ConfigError(f"--input {preview(pattern, 300)}: cannot list files: {exc}") from None
        if not found:
            raise ConfigError(f"--input {preview(pattern, 300)} matches no file")
    if not opts.view_as(TestOptions).dry_run:  # a dry run writes nothing
        check_output_dir(opts.output_dir)
    return brands, patterns, sources


# Upper bounds far beyond any sensible value, below those where a timedelta, a sleep or a thread pool
# overflows or the plan grows without end.
_FLAG_MAXIMA = {"lookback_hours": 10 * 366 * 24, "slice_hours": 10 * 366 * 24, "http_timeout": 3600.0,
                "http_backoff": 3600.0, "http_backoff_cap": 3600.0, "max_rate_limit_wait": 86400.0,
                "inference_threads": 1024}
# No platform's posts are older (the records' plausible range starts there too).
EARLIEST_DAY = datetime.date(1990, 1, 1)
MAX_SLICES = 10_000


def _check_numbers(opts: SocialListeningOptions) -> None:
    """Every number flag is finite (argparse takes 'nan' and 'inf' for a float) and within its maximum."""
    for action in SocialListeningOptions.flag_actions():
        value = getattr(opts, action.dest, None)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{action.option_strings[0]} must be a finite number, got {value}")
        if action.dest in _FLAG_MAXIMA and value is not None and value > _FLAG_MAXIMA[action.dest]:
            raise ConfigError(f"{action.option_strings[0]} must be at most {_FLAG_MAXIMA[action.dest]:,}, got {value}")


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


def _sliced_by(opts: SocialListeningOptions) -> str:
    """The flag that makes this a sliced run (`pipelines.chunked`), or '' for a one-pass run."""
    return " and ".join(flag for flag, value in (("--chunk_days", opts.chunk_days), ("--chunk_posts", opts.chunk_posts))
                        if (value or 0) > 0)


# A one-pass run on the DirectRunner holds every post in its shuffles (2.4 GB for 1M posts, 485 MB of
# JSON Lines; "Scale, measured" in the README): past this much input, a full run goes in slices.
AUTO_CHUNK_BYTES = 128 * 2**20
AUTO_CHUNK_POSTS = 50_000
_DIRECT_RUNNERS = ("", "directrunner", "direct", "switchingdirectrunner", "fnapirunner")


def _auto_chunk_posts(options: PipelineOptions, sources: typing.Sequence[str], patterns: typing.Sequence[str],
                      test_pipeline: typing.Optional[beam.Pipeline]) -> int:
    """`--chunk_posts` when not given: AUTO_CHUNK_POSTS for a full run from files over AUTO_CHUNK_BYTES on the
    DirectRunner (which keeps shuffles in memory), else 0 (one pass)."""
    opts = options.view_as(SocialListeningOptions)
    runner = (options.view_as(StandardOptions).runner or "").rsplit(".", 1)[-1].lower()
    if (opts.chunk_posts is not None or test_pipeline is not None or sources != ("file",) or _windowed(opts)
            or opts.chunk_days or runner not in _DIRECT_RUNNERS or options.view_as(TestOptions).dry_run):
        return opts.chunk_posts or 0
    size = sum(m.size_in_bytes for r in FileSystems.match(list(patterns)) for m in r.metadata_list)
    if size <= AUTO_CHUNK_BYTES:
        return 0
    print(f"The input is {size / 2**20:,.0f} MiB: running in slices of {AUTO_CHUNK_POSTS:,} posts, so that the "
          f"DirectRunner's memory stays that of a slice (--chunk_posts 0: in one pass).", flush=True)
    return AUTO_CHUNK_POSTS


def _windowed(opts: SocialListeningOptions) -> bool:
    return bool(opts.window_start or opts.window_end or opts.incremental)


def _window_plan(opts: SocialListeningOptions, brands: BrandConfig, output_dir: str,
                 now: datetime.datetime) -> typing.Optional[RunWindow]:
    """The run's window from --window_start/--window_end/--incremental and the run log (None: a full run)."""
    if not _windowed(opts):
        return None
    try:
        return plan_window(
            output_dir, start=parse_day(opts.window_start, "--window_start") if opts.window_start else None,
            end=parse_day(opts.window_end, "--window_end") if opts.window_end else None,
            incremental=opts.incremental, today=now.date(), alerts=brands.alerts)
    except (ValueError, OverflowError) as exc:
        raise ConfigError(str(exc)) from None


def _runner(options: PipelineOptions):
    """The runner to build the pipeline with: ours for `--runner DaskRunner` (see pipelines/dask_runner.py)."""
    name = (options.view_as(StandardOptions).runner or "").rsplit(".", 1)[-1].lower()
    if name in ("dask", "daskrunner"):
        from pipelines.dask_runner import DaskRunner  # dask is imported only when asked for

        return DaskRunner()
    return None  # Beam picks it from --runner


def _time_flag(value: typing.Optional[str], flag: str) -> typing.Optional[datetime.datetime]:
    try:
        return parse_iso(value)
    except ValueError:
        raise ConfigError(f"{flag}: {preview(value)} is not an ISO 8601 time (e.g. 2026-10-01T00:00:00Z)") from None


def _fetch_plan(opts: SocialListeningOptions, brands: BrandConfig, sources: typing.Sequence[str],
                output_dir: str, run_id: str) -> typing.Optional[FetchPlan]:
    """Checks the connector flags and credentials and plans the platforms' tasks (None: files only)."""
    platforms = [s for s in sources if s != "file"]
    if not platforms:
        for flag in ("start_time", "end_time"):
            if getattr(opts, flag):
                raise ConfigError(f"--{flag} applies to the platform sources only (--source x, mastodon, ...)")
        return None
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = _time_flag(opts.start_time, "--start_time"), _time_flag(opts.end_time, "--end_time")
    if end is not None and start is None:
        raise ConfigError("--end_time needs --start_time (a backfill window); without both a run is incremental")
    if start is not None and start >= (end or now):
        raise ConfigError("--start_time must be before --end_time (and before now)")
    if start is not None and start.date() < EARLIEST_DAY:
        raise ConfigError(f"--start_time: {start.date()} is before {EARLIEST_DAY}, the earliest day a post may have")
    recent_only = "x" in platforms and opts.x_search == "recent"
    if start is not None and recent_only and start < now - datetime.timedelta(days=7):
        raise ConfigError("--start_time: X recent search reaches 7 days back only; use --x_search all "
                          "(full-archive access) or a later --start_time")
    for flag in ("slice_hours", "lookback_hours", "page_size", "max_pages_per_query", "x_max_query_length",
                 "http_timeout", "http_max_attempts"):
        if getattr(opts, flag) <= 0:
            raise ConfigError(f"--{flag} must be positive")
    for flag in ("max_rate_limit_wait", "http_backoff", "http_backoff_cap"):
        if getattr(opts, flag) < 0:
            raise ConfigError(f"--{flag} must not be negative")
    if start is not None and ((end or now) - start).total_seconds() / 3600 / opts.slice_hours > MAX_SLICES:
        raise ConfigError(f"--start_time .. --end_time in slices of --slice_hours: more than {MAX_SLICES:,} slices "
                          "per query; use longer slices or a shorter window")
    langs = tuple(dict.fromkeys(c.strip().lower() for c in (opts.langs or "").split(",") if c.strip()))
    for code in langs:
        if not code.isalpha() or not 2 <= len(code) <= 3:
            raise ConfigError(f"--langs: {preview(code)} is not a language code (e.g. en,ru,uk)")
    policy = HttpPolicy(timeout_s=opts.http_timeout, max_attempts=opts.http_max_attempts,
                        backoff_base_s=opts.http_backoff, backoff_cap_s=opts.http_backoff_cap,
                        max_rate_limit_wait_s=opts.max_rate_limit_wait)
    base_urls = {"x": opts.x_base_url, "mastodon": opts.mastodon_instance, "reddit": opts.reddit_base_url,
                 "bluesky": opts.bluesky_base_url}
    settings = {}
    for name in platforms:
        base_url = (base_urls.get(name) or "").strip()
        if base_url and "://" not in base_url:
            base_url = "https://" + base_url  # --mastodon_instance mastodon.social
        settings[name] = ConnectorSettings(
            base_url=base_url, http=policy, page_size=opts.page_size, max_pages=opts.max_pages_per_query,
            langs=langs, max_text_chars=opts.max_text_chars,
            max_query_length=opts.x_max_query_length if name == "x" else 512,
            include_reposts=opts.x_include_retweets, search=opts.x_search, token_file=opts.x_bearer_token_file)
    try:
        return plan_fetch(brands, settings, output_dir, run_id, now=now, start=start, end=end,
                          slice_hours=opts.slice_hours, lookback_hours=opts.lookback_hours)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _inference_threads(opts: SocialListeningOptions) -> typing.Optional[int]:
    """--inference_threads, or None (every CPU) unless local worker processes share the CPUs."""
    from apache_beam.options.pipeline_options import DirectOptions

    if opts.inference_threads:
        return opts.inference_threads
    direct = opts.view_as(DirectOptions)
    workers = direct.direct_num_workers or 1
    if direct.direct_running_mode == "multi_processing" and workers > 1:
        from models.encoder import available_cpus

        return max(1, available_cpus() // workers)
    return None


def _model_handler(opts: SocialListeningOptions, brands: typing.Optional[BrandConfig] = None) -> ModelHandler:
    """Builds the sentiment/topic model handler from the flags and the config's `topics:`, checked before any work.

    Raises:
        ConfigError: naming the flag (or config field) at fault; a Hugging Face model's label
            mapping is checked here from its config.json, before any weights load.
    """
    from models.handler import SentimentModelHandler  # torch is imported only when a job is built
    from models.topics import Topic, merge_taxonomy

    if opts.max_tokens < 8:
        raise ConfigError("--max_tokens must be at least 8")
    if opts.inference_threads < 0:
        raise ConfigError("--inference_threads must not be negative")
    topics_config = brands.topics if brands is not None else None
    threshold = opts.topic_threshold
    if threshold is None:
        threshold = topics_config.threshold if topics_config and topics_config.threshold is not None else 0.5
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"--topic_threshold must be in (0, 1], got {threshold}")
    custom = [Topic(name, phrases) for name, phrases in topics_config.taxonomy] if topics_config else []
    try:
        taxonomy = merge_taxonomy(custom, replace=bool(topics_config and topics_config.replace_defaults))
    except ValueError as exc:
        raise ConfigError(f"{brands.source if brands else '<config>'}: topics: {exc}") from None
    label_map = parse_label_map(opts.label_map)
    topic_label_map = parse_label_map(opts.topic_label_map, "--topic_label_map", free_values=True)
    try:
        handler = SentimentModelHandler(
            model=opts.model, label_map=label_map, min_batch_size=opts.inference_batch_size,
            max_batch_size=opts.inference_batch_size, max_length=opts.max_tokens, precision=opts.precision,
            num_threads=_inference_threads(opts), topics=taxonomy, topic_model=opts.topic_model,
            topic_label_map=topic_label_map, topic_threshold=threshold)
    except ValueError as exc:
        raise ConfigError(f"--model / --topic_model: {exc}") from None
    for flag, check in (("--model", handler.check_sentiment_model), ("--topic_model", handler.check_topic_model)):
        try:
            check()
        except ValueError as exc:
            raise ConfigError(f"{flag}: {exc}") from None
    return handler


def run(argv: typing.Optional[typing.Sequence[str]] = None, test_pipeline: typing.Optional[beam.Pipeline] = None,
        model_handler: typing.Optional[ModelHandler] = None):
    """Parses flags, takes the output directory's lease, plans, builds and runs the job (which commits itself).

    Args:
        argv: Command-line arguments (defaults to sys.argv[1:]).
        test_pipeline: A pipeline to build into instead of a new one (tests).
        model_handler: Overrides the sentiment model chosen by --model (tests, benchmarks).

    Returns:
        The PipelineResult; None when an --incremental run finds nothing new to process.
    """
    options = PipelineOptions(argv if argv is not None else sys.argv[1:])
    opts = options.view_as(SocialListeningOptions)
    brands, patterns, sources = _validate(opts)
    opts.chunk_posts = _auto_chunk_posts(options, sources, patterns, test_pipeline)
    now = datetime.datetime.now(datetime.timezone.utc)
    run_id = now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    output_dir = opts.output_dir.rstrip("/")
    dry_run = options.view_as(TestOptions).dry_run
    new_dir = "://" not in output_dir and not os.path.isdir(output_dir)
    base = None if dry_run else _initialize(opts, output_dir, run_id, new_dir)
    try:
        window = _window_plan(opts, brands, output_dir, now)
        if window is None and _windowed(opts):
            print(f"Nothing to do: {output_dir} is processed up to {load_runs(output_dir).get('watermark')} "
                  f"(exclusive); the next window ends {opts.window_end or now.date().isoformat()}.")
            abandon(output_dir, run_id, new_dir)
            return None
        fetch = _fetch_plan(opts, brands, sources, output_dir, run_id)
        handler = model_handler or _model_handler(opts, brands)
        job = JobConfig(brands, patterns, snapshot_dir(output_dir, run_id), handler, opts.max_text_chars, fetch,
                        window, output_dir)
        plan = _commit_plan(options, opts, job, run_id, base, now, sources, patterns, brands)
        if _sliced_by(opts):
            from pipelines.chunked import run_in_slices

            result = run_in_slices(lambda: beam.Pipeline(runner=_runner(options), options=options), job,
                                   opts.chunk_days, opts.chunk_posts, plan)
            return _finish(result, output_dir, run_id)
        pipeline = test_pipeline or beam.Pipeline(runner=_runner(options), options=options)
        outputs = build_social_listening(pipeline, job)
        _ = ({k: outputs[k] for k in ("written", "counts", "state_files") if k in outputs}
             | "CommitRun" >> CommitRun(plan))
        if dry_run:
            # Builds (and for Dataflow, stages and translates) the job without running it.
            result = pipeline.run()
            print(f"Dry run {run_id}: the job was built for "
                  f"{options.view_as(StandardOptions).runner or 'DirectRunner'} and not run; nothing was written.")
            return result
        result = pipeline.run()
    except BaseException:
        if not dry_run:
            abandon(output_dir, run_id, new_dir)  # the previous outputs were never touched; this run's snapshot goes
        raise
    return _finish(result, output_dir, run_id)


def _initialize(opts: SocialListeningOptions, output_dir: str, run_id: str, new_dir: bool) -> typing.Optional[str]:
    """Takes the output directory's lease and repairs what killed runs left; returns the current snapshot.

    Raises:
        ConfigError: another run holds the lease (naming it), or --lease_minutes is not positive.
    """
    if not opts.lease_minutes > 0:
        raise ConfigError("--lease_minutes must be positive")
    try:
        acquire(output_dir, run_id, opts.lease_minutes)
    except LeaseHeld as exc:
        raise ConfigError(str(exc)) from None
    try:
        return recover(output_dir, run_id, TABLES + FETCH_TABLES)
    except BaseException:
        abandon(output_dir, run_id, new_dir)
        raise


def _commit_plan(options: PipelineOptions, opts: SocialListeningOptions, job: JobConfig, run_id: str,
                 base: typing.Optional[str], now: datetime.datetime, sources: typing.Sequence[str],
                 patterns: typing.Sequence[str], brands: BrandConfig) -> CommitPlan:
    """What the commit stage writes into the manifest besides the counts, known before any work."""
    info = {
        "runner": options.view_as(StandardOptions).runner or "DirectRunner",
        "sources": list(sources),
        "inputs": list(patterns),
        "config": {"path": opts.config, "sha256": file_sha256(opts.config), "brands": brands.brand_ids()},
        "model": {"spec": opts.model, "label_map": parse_label_map(opts.label_map)},
    }
    if _sliced_by(opts):
        info.update(chunk_days=opts.chunk_days, chunk_posts=opts.chunk_posts)
    if job.fetch is not None:
        # The state's stable path (the current snapshot's, through the links on a local disk).
        info["fetch"] = {"connectors": {name: {"base_url": conf.base_url or None,
                                               "state": FileSystems.join(job.output_dir, "_state", f"{name}.json")}
                                        for name, conf in job.fetch.settings.items()},
                         "tasks": len(job.fetch.tasks)}
    return CommitPlan(job.output_dir, run_id, base, now.timestamp(), job.window, dead_letter_prefix(job.window), info)


def _finish(result, output_dir: str, run_id: str):
    """After the job: waits where the launcher may (not in a Flex Template launcher) and prints the summary.

    Nothing depends on it: the job committed its outputs in its last stage.
    """
    if os.environ.get("FLEX_TEMPLATE_PYTHON_PY_FILE"):
        # A Flex Template launcher must return once the job is submitted; the job commits itself.
        print(f"Run {run_id} submitted; its last stage commits {output_dir}.")
        return result
    try:
        result.wait_until_finish()
    except Exception:
        # The job failed. (Not on Ctrl-C: a remote job may still be writing; the lease keeps others out.)
        abandon(output_dir, run_id)
        raise
    path = committed_path(output_dir, "manifest.json")
    with FileSystems.open(path) as fh:
        manifest = json.loads(fh.read().decode("utf-8"))
    if manifest.get("run_id") == run_id:
        print(format_summary(manifest))
    return result


def _num(value: typing.Optional[int], width: int = 0) -> str:
    return f"{value:>{width},}" if value is not None else f"{'n/a':>{width}}"


def format_summary(manifest: dict) -> str:
    """The few lines `make run` prints at the end."""
    c = manifest["counts"]
    out = manifest["output_dir"]
    dead = ", ".join(f"{k} {v}" for k, v in sorted(c["dead_letters_by_step"].items())) or "none"
    balance = "yes" if c["balanced"] else "NO: see manifest.json"
    lines = [
        f"Run {manifest['run_id']} finished in {manifest['seconds']} s ({manifest['runner']})",
        f"  records read          {_num(c['records_read'], 8)}",
        f"  valid mentions        {_num(c['mentions_valid'], 8)}   duplicates dropped {_num(c['duplicates_dropped'])}",
        f"  matched / unmatched   {_num(c['mentions_matched'], 8)} / {_num(c['mentions_unmatched'])}",
        f"  brand_mentions rows   {_num(c['brand_mention_rows'], 8)}   -> {out}/brand_mentions/",
        f"  metrics rows          {_num(c['metric_rows'], 8)}   -> {out}/metrics/",
        f"  dead letters          {_num(c['dead_letter_rows'], 8)}   -> {out}/dead_letters/  ({dead})",
        f"  response queue        {_num(c.get('response_queue_rows'), 8)}   -> {out}/response_queue/",
        f"  counts balance        {balance}",
    ]
    win = manifest.get("window")
    if win:
        lines.insert(2, f"  window                {win['start']} .. {win['end']} (exclusive)"
                        f"{', incremental' if win['incremental'] else ''}; outside it "
                        f"{_num(c['mentions_outside_window'])} mentions (not scored)")
    fetch = manifest.get("fetch")
    if fetch:
        posts = sum(v["posts_fetched"] for v in fetch["connectors"].values())
        stopped = f", {fetch['tasks_stopped']} stopped (resumed next run)" if fetch["tasks_stopped"] else ""
        lines.append(f"  fetched posts         {posts:>8,}   {fetch['tasks']} tasks{stopped} from "
                     f"{', '.join(fetch['connectors'])} -> state in {out}/_state/")
    lines += [
        f"  model                 {', '.join(manifest['model']['model_ids']) or manifest['model']['spec']}",
        f"  manifest              {out}/manifest.json",
    ]
    return "\n".join(lines)


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


def _asks_for_help(argv: typing.Sequence[str]) -> bool:
    args = list(argv)
    args = args[:args.index("--")] if "--" in args else args
    return "-h" in args or "--help" in args


def main(argv: typing.Optional[typing.Sequence[str]] = None) -> int:
    """Command-line entry point: a bad flag or config exits 2 with its message; --help lists the flags."""
    argv = sys.argv[1:] if argv is None else argv
    if _asks_for_help(argv):
        # Beam's parser would answer for its base class only (`-h`), hiding the job's flags.
        print(help_text())
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        run(argv)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
