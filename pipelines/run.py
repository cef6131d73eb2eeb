"""The main batch job: mentions in; brand mentions with sentiment, rate metrics and dead letters out.

Run it on the bundled sample (what `make run` does)::

    python -m pipelines.run --config brands.yaml --input 'data/sample/*.jsonl' --output_dir out/

Any of Beam's own flags work as well, e.g. `--direct_num_workers 2
--direct_running_mode multi_processing` locally, or `--runner DataflowRunner --project P
--region R --temp_location gs://B/tmp --setup_file ./setup.py` on Google Cloud.

Fetch from the platforms instead of (or beside) files with `--source` (see README, "Connectors")::

    X_BEARER_TOKEN=... python -m pipelines.run --config brands.yaml --source x,mastodon --output_dir out/

Steps: ReadMentions (files and/or platforms) -> Dedupe -> MatchBrands -> ScoreSentiment ->
ComputeMetrics, ComputeTopicMetrics -> DetectAlerts -> Write{BrandMentions,Metrics,LangMetrics,
TopicMetrics,Alerts,DeadLetters} (+ Posts, BrandReplies, AccountSnapshots with platform sources); then the staged
tables are committed into `--output_dir`, the connectors' state after them, and a `manifest.json`
records the counts of every step.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import sys
import time
import typing
import uuid
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import ModelHandler
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from connectors.base import ConnectorSettings, connector_names, parse_iso
from connectors.files import DEFAULT_MAX_TEXT_CHARS
from connectors.http import HttpPolicy
from schemas import (BRAND_MENTION_SCHEMA, DEAD_LETTER_SCHEMA, MENTION_SCHEMA, METRIC_SCHEMA, BrandMention,
                     DeadLetter, Metric)
from schemas.records import (ACCOUNT_SNAPSHOT_SCHEMA, ALERT_SCHEMA, BRAND_REPLY_SCHEMA, LANG_METRIC_SCHEMA,
                             TOPIC_METRIC_SCHEMA)
from schemas.config import BrandConfig, ConfigError, load_config
from transforms.dedupe import DedupeMentions
from transforms.matching import MatchBrands
from transforms.alerts import DetectAlerts
from transforms.metrics import ComputeMetrics
from transforms.metrics_topics import ComputeTopicMetrics
from transforms.fetch import FETCH_TABLES, FetchPlan, ReadSources, commit_state, plan_fetch, state_path
from transforms.sentiment import ScoreSentiment
from transforms.sinks import WriteParquetTable, delete_tree, commit_tables

TABLES = ("brand_mentions", "metrics", "lang_metrics", "topic_metrics", "alerts", "dead_letters")
LOG = logging.getLogger("social_listening")


class SocialListeningOptions(PipelineOptions):
    """The job's own flags; every standard Beam flag keeps working beside them."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--config", help="Brand config YAML (see README, 'Brand configuration').")
        parser.add_argument("--input", action="append",
                            help="Input file path or glob (JSON Lines, CSV, Parquet; local or gs://...). "
                                 "Repeat the flag or separate with commas for several.")
        parser.add_argument("--output_dir", help="Where the Parquet tables and manifest.json go.")
        parser.add_argument("--model", default="embedded",
                            help="Sentiment model: 'embedded' (multilingual e5-small + shipped head, no hub "
                                 "needed), a local Hugging Face checkpoint directory, or a hub id.")
        parser.add_argument("--label_map", default=None,
                            help="For --model checkpoints whose labels are not negative/neutral/positive: "
                                 "JSON object or 'LABEL_0=negative,LABEL_1=neutral,LABEL_2=positive'.")
        parser.add_argument("--inference_batch_size", type=int, default=64,
                            help="Largest batch of texts per model call.")
        parser.add_argument("--max_text_chars", type=int, default=DEFAULT_MAX_TEXT_CHARS,
                            help="Texts longer than this go to dead letters.")
        # Connectors (README, "Connectors").
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
        parser.add_argument("--http_timeout", type=float, default=30.0, help="Read timeout per request (s).")
        parser.add_argument("--http_max_attempts", type=int, default=5,
                            help="Tries per request for 5xx answers, timeouts and dropped connections.")
        parser.add_argument("--http_backoff", type=float, default=1.0,
                            help="First retry backoff (s); doubles per try, with jitter.")
        parser.add_argument("--http_backoff_cap", type=float, default=60.0, help="Longest retry backoff (s).")


@dataclass(frozen=True)
class JobConfig:
    """Everything `build_social_listening` needs, validated."""

    brands: BrandConfig
    inputs: typing.Tuple[str, ...]
    staging_dir: str
    model_handler: ModelHandler
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    fetch: typing.Optional[FetchPlan] = None


def build_social_listening(pipeline: beam.Pipeline, job: JobConfig) -> typing.Dict[str, beam.PCollection]:
    """Adds the whole job to `pipeline`.

    Args:
        pipeline: The pipeline (or TestPipeline) to add the steps to.
        job: The validated job configuration.

    Returns:
        The PCollections: 'brand_mentions', 'metrics', 'lang_metrics', 'topic_metrics', 'alerts',
        'dead_letters', 'unmatched', and 'written' (one (table, partition, file, rows) per file
        written); with a fetch plan also 'posts', 'brand_replies' and 'account_snapshots'.
    """
    read = pipeline | "ReadMentions" >> ReadSources(job.inputs, job.max_text_chars, job.fetch)
    deduped = read["mentions"] | "Dedupe" >> DedupeMentions()
    matched = deduped["mentions"] | "MatchBrands" >> MatchBrands(job.brands)
    scored = matched.matched | "ScoreSentiment" >> ScoreSentiment(job.model_handler)
    brand_mentions = scored["brand_mentions"]

    dates = deduped["mentions"] | "MentionDates" >> beam.Map(lambda m: m.created_at.date())
    # Every valid post goes in too: the brand accounts' own replies among them answer complaints.
    metric_inputs = {"brand_mentions": brand_mentions, "mention_dates": dates, "posts": deduped["mentions"]}
    reply_coverage = []
    if job.fetch is not None:
        metric_inputs.update({k: read[k] for k in ("brand_replies", "account_snapshots")})
        if "x" in job.fetch.settings:  # the X connector fetches every brand handle's replies
            reply_coverage = [(b.id, "x") for b in job.brands.brands if b.search_terms()[1]]
    computed = metric_inputs | "ComputeMetrics" >> ComputeMetrics(job.brands, reply_coverage)
    metrics, lang_metrics = computed["metrics"], computed["lang_metrics"]
    topic_metrics = (brand_mentions, dates) | "ComputeTopicMetrics" >> ComputeTopicMetrics()
    alerts = (metrics, brand_mentions) | "DetectAlerts" >> DetectAlerts(job.brands)

    dead_letters = (
        (read["dead_letters"], scored["dead_letters"])
        | "AllDeadLetters" >> beam.Flatten().with_output_types(DeadLetter)
    )

    stage = job.staging_dir
    written = [
        brand_mentions
        | "WriteBrandMentions" >> WriteParquetTable(
            FileSystems.join(stage, "brand_mentions"), BRAND_MENTION_SCHEMA, _by_created_date,
            sort_by=("brand_id", "created_at", "mention_id"))
        | "TagBrandMentionFiles" >> beam.Map(lambda w: ("brand_mentions",) + tuple(w)),
        metrics
        | "WriteMetrics" >> WriteParquetTable(
            FileSystems.join(stage, "metrics"), METRIC_SCHEMA, _by_period, partition_columns=("period",),
            sort_by=("brand_id", "platform", "period_start"))
        | "TagMetricFiles" >> beam.Map(lambda w: ("metrics",) + tuple(w)),
        lang_metrics
        | "WriteLangMetrics" >> WriteParquetTable(
            FileSystems.join(stage, "lang_metrics"), LANG_METRIC_SCHEMA, _by_period, partition_columns=("period",),
            sort_by=("brand_id", "lang", "period_start"))
        | "TagLangMetricFiles" >> beam.Map(lambda w: ("lang_metrics",) + tuple(w)),
        topic_metrics
        | "WriteTopicMetrics" >> WriteParquetTable(
            FileSystems.join(stage, "topic_metrics"), TOPIC_METRIC_SCHEMA, _by_period,
            partition_columns=("period",), sort_by=("brand_id", "topic", "period_start"))
        | "TagTopicMetricFiles" >> beam.Map(lambda w: ("topic_metrics",) + tuple(w)),
        alerts
        | "WriteAlerts" >> WriteParquetTable(
            FileSystems.join(stage, "alerts"), ALERT_SCHEMA, _by_period, partition_columns=("period",),
            sort_by=("period_start", "brand_id", "alert"))
        | "TagAlertFiles" >> beam.Map(lambda w: ("alerts",) + tuple(w)),
        dead_letters
        | "WriteDeadLetters" >> WriteParquetTable(
            FileSystems.join(stage, "dead_letters"), DEAD_LETTER_SCHEMA, _by_step, partition_columns=("step",),
            sort_by=("source", "time"))
        | "TagDeadLetterFiles" >> beam.Map(lambda w: ("dead_letters",) + tuple(w)),
    ]
    if job.fetch is not None:
        written += [
            read["posts"]
            | "WritePosts" >> WriteParquetTable(
                FileSystems.join(stage, "posts"), MENTION_SCHEMA, _by_created_date,
                sort_by=("platform", "created_at", "id"))
            | "TagPostFiles" >> beam.Map(lambda w: ("posts",) + tuple(w)),
            read["brand_replies"]
            | "WriteBrandReplies" >> WriteParquetTable(
                FileSystems.join(stage, "brand_replies"), BRAND_REPLY_SCHEMA, _by_created_date,
                sort_by=("brand_id", "created_at", "id"))
            | "TagBrandReplyFiles" >> beam.Map(lambda w: ("brand_replies",) + tuple(w)),
            read["account_snapshots"]
            | "WriteAccountSnapshots" >> WriteParquetTable(
                FileSystems.join(stage, "account_snapshots"), ACCOUNT_SNAPSHOT_SCHEMA, _by_fetched_date,
                sort_by=("brand_id", "platform", "fetched_at"))
            | "TagAccountSnapshotFiles" >> beam.Map(lambda w: ("account_snapshots",) + tuple(w)),
        ]
    written = written | "AllFiles" >> beam.Flatten()
    _ = written | "CountRows" >> beam.Map(_count_written)
    _ = deduped["duplicates"] | "CountDuplicates" >> beam.Map(
        lambda n: beam.metrics.Metrics.counter("dedupe", "duplicates").inc(n))
    outputs = {
        "brand_mentions": brand_mentions,
        "metrics": metrics,
        "lang_metrics": lang_metrics,
        "topic_metrics": topic_metrics,
        "alerts": alerts,
        "dead_letters": dead_letters,
        "unmatched": matched.unmatched,
        "written": written,
    }
    if job.fetch is not None:
        outputs.update({k: read[k] for k in ("posts", "brand_replies", "account_snapshots")})
    return outputs


def _by_created_date(row: BrandMention):
    return (("created_date", row.created_at.date().isoformat()),)


def _by_fetched_date(row):
    return (("fetched_date", row.fetched_at.date().isoformat()),)


def _by_period(row: Metric):  # also LangMetric, TopicMetric and Alert
    return (("period", row.period),)


def _by_step(row: DeadLetter):
    return (("step", row.step),)


def _count_written(written):
    table, _partition, _path, rows = written
    beam.metrics.Metrics.counter("write", f"{table}_rows").inc(rows)
    beam.metrics.Metrics.counter("write", f"{table}_files").inc()


def parse_label_map(text: typing.Optional[str]) -> typing.Optional[typing.Dict[str, str]]:
    """Parses --label_map: a JSON object or 'A=negative,B=positive'."""
    if not text:
        return None
    text = text.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"--label_map: not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise ConfigError("--label_map: expected a JSON object")
        return {str(k): str(v) for k, v in value.items()}
    mapping = {}
    for item in text.split(","):
        if "=" not in item:
            raise ConfigError(f"--label_map: {item!r} is not LABEL=ours")
        key, value = item.split("=", 1)
        mapping[key.strip()] = value.strip()
    return mapping


def _sources(opts: SocialListeningOptions) -> typing.Tuple[str, ...]:
    """The --source names, in order, once each; 'file' when none is given."""
    raw = opts.source or ["file"]
    sources = tuple(dict.fromkeys(s.strip().lower() for item in raw for s in item.split(",") if s.strip()))
    known = ("file",) + tuple(connector_names())
    for name in sources or ("",):
        if name not in known:
            raise ConfigError(f"--source {name!r} is not a source; choose from {', '.join(known)}")
    return sources


def _validate(opts: SocialListeningOptions
              ) -> typing.Tuple[BrandConfig, typing.Tuple[str, ...], typing.Tuple[str, ...]]:
    """Checks the flags once, before any work, with messages that name the flag."""
    if not opts.config:
        raise ConfigError("--config is required: the brand config YAML (e.g. --config brands.yaml)")
    sources = _sources(opts)
    if "file" in sources and not opts.input:
        raise ConfigError("--input is required: a file path or glob (e.g. --input 'data/*.jsonl')")
    if opts.input and "file" not in sources:
        raise ConfigError("--input is read by the file source only: add it to --source (e.g. --source file,x)")
    if not opts.output_dir:
        raise ConfigError("--output_dir is required: where the Parquet tables go (e.g. --output_dir out/)")
    if opts.max_text_chars <= 0:
        raise ConfigError("--max_text_chars must be positive")
    if opts.inference_batch_size <= 0:
        raise ConfigError("--inference_batch_size must be positive")
    brands = load_config(opts.config, opener=FileSystems.open)
    patterns = tuple(p.strip() for raw in opts.input or () for p in raw.split(",") if p.strip())
    for pattern in patterns:
        try:
            found = FileSystems.match([pattern])[0].metadata_list
        except Exception as exc:  # FileSystems raises BeamIOError and friends
            raise ConfigError(f"--input {pattern!r}: cannot list files: {exc}") from None
        if not found:
            raise ConfigError(f"--input {pattern!r} matches no file")
    return brands, patterns, sources


def _time_flag(value: typing.Optional[str], flag: str) -> typing.Optional[datetime.datetime]:
    try:
        return parse_iso(value)
    except ValueError:
        raise ConfigError(f"{flag}: {value!r} is not an ISO 8601 time (e.g. 2026-10-01T00:00:00Z)") from None


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
    langs = tuple(dict.fromkeys(c.strip().lower() for c in (opts.langs or "").split(",") if c.strip()))
    for code in langs:
        if not code.isalpha() or not 2 <= len(code) <= 3:
            raise ConfigError(f"--langs: {code!r} is not a language code (e.g. en,ru,uk)")
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


def _fetch_summary(fetch: FetchPlan, counts: typing.Dict[str, int]) -> dict:
    return {
        "connectors": {name: {"base_url": conf.base_url or None, "state": state_path(fetch.output_dir, name),
                              "posts_fetched": counts.get(f"fetch.{name}_posts", 0)}
                       for name, conf in sorted(fetch.settings.items())},
        "tasks": len(fetch.tasks),
        "tasks_stopped": counts.get("fetch.stopped_tasks", 0),
        "pages": counts.get("fetch.pages", 0),
        "brand_replies": counts.get("fetch.brand_replies", 0),
        "account_snapshots": counts.get("fetch.account_snapshots", 0),
    }


def _counters(result) -> typing.Dict[str, int]:
    counts: typing.Dict[str, int] = {}
    for counter in result.metrics().query(MetricsFilter())["counters"]:
        name = f"{counter.key.metric.namespace}.{counter.key.metric.name}"
        value = counter.committed if counter.committed is not None else counter.attempted
        counts[name] = counts.get(name, 0) + int(value or 0)
    return counts


def build_manifest(counts: typing.Dict[str, int], **info) -> dict:
    """Assembles the run manifest: per-step counts, the balance check and run info."""
    dead = {k.split(".", 1)[1]: v for k, v in counts.items() if k.startswith("dead_letters.")}
    steps = {
        "records_read": counts.get("read.records", 0),
        "mentions_valid": counts.get("read.mentions", 0),
        "duplicates_dropped": counts.get("dedupe.duplicates", 0),
        "mentions_matched": counts.get("match.matched_mentions", 0),
        "mentions_unmatched": counts.get("match.unmatched_mentions", 0),
        "brand_mention_rows": counts.get("write.brand_mentions_rows", 0),
        "metric_rows": counts.get("write.metrics_rows", 0),
        "dead_letter_rows": counts.get("write.dead_letters_rows", 0),
        "dead_letters_by_step": dead,
    }
    scored = steps["mentions_matched"] - dead.get("sentiment", 0)
    # records in = matched and scored + unmatched + duplicates + dead letters
    steps["balanced"] = steps["records_read"] == (
        scored + steps["mentions_unmatched"] + steps["duplicates_dropped"] + sum(dead.values()))
    return {**info, "counts": steps}


def _sha256(path: str) -> str:
    with FileSystems.open(path) as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def _model_handler(opts: SocialListeningOptions) -> ModelHandler:
    from models.handler import SentimentModelHandler  # torch is imported only when a job is built

    return SentimentModelHandler(model=opts.model, label_map=parse_label_map(opts.label_map),
                                 max_batch_size=opts.inference_batch_size)


def run(argv: typing.Optional[typing.Sequence[str]] = None, test_pipeline: typing.Optional[beam.Pipeline] = None,
        model_handler: typing.Optional[ModelHandler] = None):
    """Parses flags, builds and runs the job, commits its outputs and writes the manifest.

    Args:
        argv: Command-line arguments (defaults to sys.argv[1:]).
        test_pipeline: A pipeline to build into instead of a new one (tests).
        model_handler: Overrides the sentiment model chosen by --model (tests, benchmarks).

    Returns:
        The PipelineResult.
    """
    options = PipelineOptions(argv if argv is not None else sys.argv[1:])
    opts = options.view_as(SocialListeningOptions)
    brands, patterns, sources = _validate(opts)
    run_id = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    output_dir = opts.output_dir.rstrip("/")
    fetch = _fetch_plan(opts, brands, sources, output_dir, run_id)
    handler = model_handler or _model_handler(opts)
    staging = FileSystems.join(output_dir, "_staging", run_id)
    job = JobConfig(brands, patterns, staging, handler, opts.max_text_chars, fetch)

    started = time.time()
    pipeline = test_pipeline or beam.Pipeline(options=options)
    build_social_listening(pipeline, job)
    try:
        result = pipeline.run()
        result.wait_until_finish()
    except BaseException:
        # The previous outputs were never touched; only this run's staged files go.
        delete_tree(staging)
        if fetch is not None:
            delete_tree(fetch.state_staging_dir)  # the connectors' state stays where it was
        raise
    tables = TABLES + (FETCH_TABLES if fetch is not None else ())
    commit_tables(staging, output_dir, tables)
    if fetch is not None:
        # Only after the tables: a state that ran ahead of them would lose posts.
        commit_state(fetch.state_staging_dir, output_dir, fetch.settings)

    counts = _counters(result)
    manifest = build_manifest(
        counts,
        run_id=run_id,
        started_at=datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(),
        seconds=round(time.time() - started, 1),
        runner=options.view_as(StandardOptions).runner or "DirectRunner",
        sources=list(sources),
        inputs=list(patterns),
        output_dir=output_dir,
        config={"path": opts.config, "sha256": _sha256(opts.config), "brands": brands.brand_ids()},
        model={"spec": opts.model, "label_map": parse_label_map(opts.label_map), "model_ids": _model_ids(output_dir)},
        tables={t: FileSystems.join(output_dir, t) for t in tables},
    )
    if fetch is not None:
        manifest["fetch"] = _fetch_summary(fetch, counts)
    with FileSystems.create(FileSystems.join(output_dir, "manifest.json")) as fh:
        fh.write(json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8"))
    print(format_summary(manifest))
    return result


def _model_ids(output_dir: str) -> typing.List[str]:
    """The model ids recorded in the committed brand_mentions table."""
    import pyarrow.dataset as ds

    path = FileSystems.join(output_dir, "brand_mentions")
    if "://" in path or not FileSystems.exists(path):
        return []
    table = ds.dataset(path, format="parquet", partitioning="hive").to_table(columns=["model_id"])
    return sorted(set(table.column("model_id").to_pylist()))


def format_summary(manifest: dict) -> str:
    """The few lines `make run` prints at the end."""
    c = manifest["counts"]
    out = manifest["output_dir"]
    dead = ", ".join(f"{k} {v}" for k, v in sorted(c["dead_letters_by_step"].items())) or "none"
    lines = [
        f"Run {manifest['run_id']} finished in {manifest['seconds']} s ({manifest['runner']})",
        f"  records read          {c['records_read']:>8,}",
        f"  valid mentions        {c['mentions_valid']:>8,}   duplicates dropped {c['duplicates_dropped']:,}",
        f"  matched / unmatched   {c['mentions_matched']:>8,} / {c['mentions_unmatched']:,}",
        f"  brand_mentions rows   {c['brand_mention_rows']:>8,}   -> {out}/brand_mentions/",
        f"  metrics rows          {c['metric_rows']:>8,}   -> {out}/metrics/",
        f"  dead letters          {c['dead_letter_rows']:>8,}   -> {out}/dead_letters/  ({dead})",
        f"  counts balance        {'yes' if c['balanced'] else 'NO: see manifest.json'}",
    ]
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


def main(argv: typing.Optional[typing.Sequence[str]] = None) -> int:
    """Command-line entry point: a bad flag or config exits 2 with its message."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        run(argv)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
