"""The main batch job: mentions in; brand mentions with sentiment, rate metrics and dead letters out.

Run it on the bundled sample (what `make run` does)::

    python -m pipelines.run --config brands.yaml --input 'data/sample/*.jsonl' --output_dir out/

Any of Beam's own flags work as well, e.g. `--direct_num_workers 2
--direct_running_mode multi_processing` locally, or `--runner DataflowRunner --project P
--region R --temp_location gs://B/tmp --setup_file ./setup.py` on Google Cloud.

Steps: ReadMentions -> Dedupe -> MatchBrands -> ScoreSentiment -> ComputeMetrics ->
Write{BrandMentions,Metrics,DeadLetters}; then the staged tables are committed into
`--output_dir` and a `manifest.json` records the counts of every step.
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

from connectors.files import DEFAULT_MAX_TEXT_CHARS
from schemas import BRAND_MENTION_SCHEMA, DEAD_LETTER_SCHEMA, METRIC_SCHEMA, BrandMention, DeadLetter, Metric
from schemas.config import BrandConfig, ConfigError, load_config
from transforms.dedupe import DedupeMentions
from transforms.matching import MatchBrands
from transforms.metrics import ComputeMetrics
from transforms.read import ReadMentionsFromFiles
from transforms.sentiment import ScoreSentiment
from transforms.sinks import WriteParquetTable, delete_tree, commit_tables

TABLES = ("brand_mentions", "metrics", "dead_letters")
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


@dataclass(frozen=True)
class JobConfig:
    """Everything `build_social_listening` needs, validated."""

    brands: BrandConfig
    inputs: typing.Tuple[str, ...]
    staging_dir: str
    model_handler: ModelHandler
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS


def build_social_listening(pipeline: beam.Pipeline, job: JobConfig) -> typing.Dict[str, beam.PCollection]:
    """Adds the whole job to `pipeline`.

    Args:
        pipeline: The pipeline (or TestPipeline) to add the steps to.
        job: The validated job configuration.

    Returns:
        The PCollections: 'brand_mentions', 'metrics', 'dead_letters', 'unmatched',
        and 'written' (one (table, partition, file, rows) per file written).
    """
    read = pipeline | "ReadMentions" >> ReadMentionsFromFiles(job.inputs, job.max_text_chars)
    deduped = read["mentions"] | "Dedupe" >> DedupeMentions()
    matched = deduped["mentions"] | "MatchBrands" >> MatchBrands(job.brands)
    scored = matched.matched | "ScoreSentiment" >> ScoreSentiment(job.model_handler)
    brand_mentions = scored["brand_mentions"]

    dates = deduped["mentions"] | "MentionDates" >> beam.Map(lambda m: m.created_at.date())
    metrics = (brand_mentions, dates) | "ComputeMetrics" >> ComputeMetrics(job.brands)

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
        dead_letters
        | "WriteDeadLetters" >> WriteParquetTable(
            FileSystems.join(stage, "dead_letters"), DEAD_LETTER_SCHEMA, _by_step, partition_columns=("step",),
            sort_by=("source", "time"))
        | "TagDeadLetterFiles" >> beam.Map(lambda w: ("dead_letters",) + tuple(w)),
    ]
    written = written | "AllFiles" >> beam.Flatten()
    _ = written | "CountRows" >> beam.Map(_count_written)
    _ = deduped["duplicates"] | "CountDuplicates" >> beam.Map(
        lambda n: beam.metrics.Metrics.counter("dedupe", "duplicates").inc(n))
    return {
        "brand_mentions": brand_mentions,
        "metrics": metrics,
        "dead_letters": dead_letters,
        "unmatched": matched.unmatched,
        "written": written,
    }


def _by_created_date(row: BrandMention):
    return (("created_date", row.created_at.date().isoformat()),)


def _by_period(row: Metric):
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


def _validate(opts: SocialListeningOptions) -> typing.Tuple[BrandConfig, typing.Tuple[str, ...]]:
    """Checks the flags once, before any work, with messages that name the flag."""
    if not opts.config:
        raise ConfigError("--config is required: the brand config YAML (e.g. --config brands.yaml)")
    if not opts.input:
        raise ConfigError("--input is required: a file path or glob (e.g. --input 'data/*.jsonl')")
    if not opts.output_dir:
        raise ConfigError("--output_dir is required: where the Parquet tables go (e.g. --output_dir out/)")
    if opts.max_text_chars <= 0:
        raise ConfigError("--max_text_chars must be positive")
    if opts.inference_batch_size <= 0:
        raise ConfigError("--inference_batch_size must be positive")
    brands = load_config(opts.config, opener=FileSystems.open)
    patterns = tuple(p.strip() for raw in opts.input for p in raw.split(",") if p.strip())
    for pattern in patterns:
        try:
            found = FileSystems.match([pattern])[0].metadata_list
        except Exception as exc:  # FileSystems raises BeamIOError and friends
            raise ConfigError(f"--input {pattern!r}: cannot list files: {exc}") from None
        if not found:
            raise ConfigError(f"--input {pattern!r} matches no file")
    return brands, patterns


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
    brands, patterns = _validate(opts)
    handler = model_handler or _model_handler(opts)
    run_id = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    output_dir = opts.output_dir.rstrip("/")
    staging = FileSystems.join(output_dir, "_staging", run_id)
    job = JobConfig(brands, patterns, staging, handler, opts.max_text_chars)

    started = time.time()
    pipeline = test_pipeline or beam.Pipeline(options=options)
    build_social_listening(pipeline, job)
    try:
        result = pipeline.run()
        result.wait_until_finish()
    except BaseException:
        # The previous outputs were never touched; only this run's staged files go.
        delete_tree(staging)
        raise
    commit_tables(staging, output_dir, TABLES)

    manifest = build_manifest(
        _counters(result),
        run_id=run_id,
        started_at=datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(),
        seconds=round(time.time() - started, 1),
        runner=options.view_as(StandardOptions).runner or "DirectRunner",
        inputs=list(patterns),
        output_dir=output_dir,
        config={"path": opts.config, "sha256": _sha256(opts.config), "brands": brands.brand_ids()},
        model={"spec": opts.model, "label_map": parse_label_map(opts.label_map), "model_ids": _model_ids(output_dir)},
        tables={t: FileSystems.join(output_dir, t) for t in TABLES},
    )
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
