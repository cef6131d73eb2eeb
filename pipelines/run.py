"""The main batch job: mentions in; brand mentions with sentiment, rate metrics and dead letters out.

Run it on the bundled sample (what `make run` does)::

    python -m pipelines.run --config brands.yaml --input 'data/sample/*.jsonl' --output_dir out/

Any of Beam's own flags work as well, e.g. `--direct_num_workers 2
--direct_running_mode multi_processing` locally, or `--runner DataflowRunner --project P
--region R --temp_location gs://B/tmp --setup_file ./setup.py` on Google Cloud.

Fetch from the platforms instead of (or beside) files with `--source` (see docs/connectors.md)::

    X_BEARER_TOKEN=... python -m pipelines.run --config brands.yaml --source x,mastodon --output_dir out/

This module only parses, plans, builds and runs; each of those lives where its name says:

- `pipelines.options`: the flags (the connectors' own come from `connectors/<name>.py`) and
  `validate()`, which returns the typed `JobConfig` or stops the run with exit 2;
- `pipelines.plan`: the window, the platforms' tasks, the model, and whether the job runs in
  one pass or in slices (`--chunk_posts`, `--chunk_days`, or by itself for a large input on
  the DirectRunner: `pipelines.chunked`);
- `transforms.job.SocialListening`: the job's steps, composed once (Dedupe -> MatchBrands ->
  ScoreTexts -> ComputeMetrics, ComputeTopicMetrics, ComputeResponseQueue -> DetectAlerts);
  `pipelines.compose` reads the sources in front of it and writes the tables of `schemas.tables`
  behind it into the run's snapshot, and ends the job with its commit stage (`transforms.commit`):
  the connectors' state, the run log and a `manifest.json` with the counts of every step go into
  the snapshot, and `--output_dir` switches to it in one atomic step;
- `pipelines.finish`: the launcher's side of that: the directory's lease and the repair of what
  killed runs left (before the plan), the commit plan, and the wait and summary after the run.
"""

from __future__ import annotations

import datetime
import logging
import os
import sys
import typing

import apache_beam as beam
from apache_beam.ml.inference.base import ModelHandler
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import plan as planning
from pipelines.compose import build_social_listening
from pipelines.finish import _commit_plan, _finish, _initialize
from pipelines.options import SocialListeningOptions, asks_for_help, check_output_dir, help_text, validate
from schemas.config import ConfigError
from schemas.tables import FETCH_TABLES, JOB_TABLES as TABLES
from transforms.incremental import load_runs
from transforms.progress import PROGRESS
from transforms.commit import abandon
from transforms.beam_build import memoize_graph_building

__all__ = ["FETCH_TABLES", "TABLES", "SocialListeningOptions", "check_output_dir", "help_text", "main", "run"]


def run(argv: typing.Sequence[str] | None = None, test_pipeline: beam.Pipeline | None = None,
        model_handler: ModelHandler | None = None):
    """Parses flags, takes the output directory's lease, plans, builds and runs the job (which commits itself).

    Args:
        argv: Command-line arguments (defaults to sys.argv[1:]).
        test_pipeline: A pipeline to build into instead of a new one (tests).
        model_handler: Overrides the sentiment model chosen by --model (tests, benchmarks).

    Returns:
        The PipelineResult; None when an --incremental run finds nothing new to process.
    """
    options = PipelineOptions(argv if argv is not None else sys.argv[1:])
    config = validate(options)
    memoize_graph_building()  # half of a small run's CPU is Beam recomputing the same answers
    now = datetime.datetime.now(datetime.timezone.utc)
    run_id, output_dir, dry_run = planning.new_run_id(now), config.output_dir, config.dry_run
    new_dir = "://" not in output_dir and not os.path.isdir(output_dir)
    base = None if dry_run else _initialize(config, run_id, new_dir)
    try:
        # A pipeline handed in (a test's) is one pipeline: sliced only when its flags ask for it.
        plan = planning.plan_run(config, now, (config.chunk_days, config.chunk_posts or 0) if test_pipeline else None,
                                 run_id)
        if plan.nothing_to_do:
            print(f"Nothing to do: {output_dir} is processed up to {load_runs(output_dir).get('watermark')} "
                  f"(exclusive); the next window ends {config.window.end or now.date().isoformat()}.")
            abandon(output_dir, run_id, new_dir)
            return None
        job = plan.job(model_handler or planning.model_handler(config.model))
        PROGRESS.configure(enabled=not config.quiet)
        commit = _commit_plan(plan, base)
        if plan.sliced:
            from pipelines.chunked import run_in_slices

            result = run_in_slices(lambda: beam.Pipeline(runner=planning.runner(config), options=options), plan,
                                   job, commit)
            return _finish(result, output_dir, run_id)
        pipeline = test_pipeline or beam.Pipeline(runner=planning.runner(config), options=options)
        build_social_listening(pipeline, plan, job, commit)
        if dry_run:
            # Builds (and for Dataflow, stages and translates) the job without running it.
            result = pipeline.run()
            print(f"Dry run {run_id}: the job was built for {config.runner or 'DirectRunner'} "
                  "and not run; nothing was written.")
            return result
        result = pipeline.run()
    except BaseException:
        if not dry_run:
            abandon(output_dir, run_id, new_dir)  # the previous outputs were never touched; this run's snapshot goes
        raise
    return _finish(result, output_dir, run_id)


def main(argv: typing.Sequence[str] | None = None, model_handler: ModelHandler | None = None
         ) -> int:
    """Command-line entry point: a bad flag or config exits 2 with its message; --help lists the flags.

    Args:
        argv: Command-line arguments (defaults to sys.argv[1:]).
        model_handler: Overrides the sentiment model chosen by --model (the tests' fake job).
    """
    argv = sys.argv[1:] if argv is None else argv
    if asks_for_help(argv):
        # Beam's parser would answer for its base class only (`-h`), hiding the job's flags.
        print(help_text())
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        run(argv, model_handler=model_handler)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
