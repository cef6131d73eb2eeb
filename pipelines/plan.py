"""Plans a run from its validated configuration: its window, what it fetches, its slices and its model.

`plan_run(config)` turns the `pipelines.options.JobConfig` into a `RunPlan`: the window
from the run log (`--window_start` / `--incremental`), the platforms' tasks from their
state and credentials, and how the job is run: in one pass, or as the same job in
slices (`plan_slicing`; `pipelines.chunked` runs the slices). Everything here happens on
the launching machine before any work; what cannot be planned is a `ConfigError`
naming its flag, as in `validate`.
"""

from __future__ import annotations

import datetime
import typing
import uuid
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import ModelHandler

from connectors.base import connector_class
from pipelines import options as flags
from pipelines.options import JobConfig, ModelConfig
from schemas.config import ConfigError
from transforms.fetch import FetchPlan, plan_fetch
from transforms.incremental import RunWindow, plan_window
from transforms.job import JobSpec
from transforms.snapshots import snapshot_dir

# Runners that hold a pipeline's shuffles in memory (Beam's local runners under their names and aliases).
IN_MEMORY_RUNNERS = ("", "directrunner", "direct", "switchingdirectrunner", "fnapirunner")


@dataclass(frozen=True)
class RunPlan:
    """One run, planned.

    Attributes:
        config: The validated flags.
        run_id: The run's id (UTC start time and a random suffix).
        now: The run's reference time.
        staging_dir: Where the run writes its tables: its own snapshot (`transforms.snapshots`), which
            the job's commit stage makes current.
        window: The window a windowed run processes; None for a full run.
        fetch: The platforms' tasks; None for files only.
        chunk_days, chunk_posts: The slices of a sliced run (both 0: one pass).
        nothing_to_do: An --incremental run whose output is processed up to --window_end already.
    """

    config: JobConfig
    run_id: str
    now: datetime.datetime
    staging_dir: str
    window: RunWindow | None
    fetch: FetchPlan | None
    chunk_days: int
    chunk_posts: int
    nothing_to_do: bool = False

    @property
    def output_dir(self) -> str:
        """--output_dir."""
        return self.config.output_dir

    @property
    def sliced(self) -> bool:
        """Whether the job runs in slices (`pipelines.chunked`) rather than in one pass."""
        return bool(self.chunk_days or self.chunk_posts)

    def job(self, model_handler: ModelHandler) -> JobSpec:
        """What the job's composite (`transforms.job.SocialListening`) needs, with the model to score with."""
        coverage = tuple(pair for name in (self.fetch.settings if self.fetch else ())
                         for pair in connector_class(name).reply_coverage(self.config.brands))
        return JobSpec(self.config.brands, model_handler, self.window, self.config.output_dir, coverage)


def new_run_id(now: datetime.datetime) -> str:
    """A run's id: its UTC start time and a random suffix (its snapshot's and its lease's name)."""
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def plan_run(config: JobConfig, now: datetime.datetime | None = None,
             slicing: tuple[int, int] | None = None, run_id: str | None = None) -> RunPlan:
    """Plans the run.

    Args:
        config: The validated flags.
        now: The run's reference time (default: now).
        slicing: (chunk_days, chunk_posts) decided by the caller; default: `plan_slicing(config)`.
        run_id: The run's id, when the launcher took the output directory's lease under it (default: a new one).

    Raises:
        ConfigError: a window or fetch that cannot be planned (a broken run log or state file, missing
            credentials, a query the platform cannot take), naming the flag or file.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    run_id = run_id or new_run_id(now)
    window = None
    if config.window is not None:
        try:
            window = plan_window(config.output_dir, start=config.window.start, end=config.window.end,
                                 incremental=config.window.incremental, today=now.date(), alerts=config.brands.alerts)
        except (ValueError, OverflowError) as exc:
            raise ConfigError(str(exc)) from None
        if window is None:
            return RunPlan(config, run_id, now, "", None, None, 0, 0, nothing_to_do=True)
    fetch = None
    if config.fetch is not None:
        try:
            fetch = plan_fetch(config.brands, config.fetch.connectors, config.output_dir, run_id, now=now,
                               start=config.fetch.start, end=config.fetch.end, slice_hours=config.fetch.slice_hours,
                               lookback_hours=config.fetch.lookback_hours)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    chunk_days, chunk_posts = slicing if slicing is not None else plan_slicing(config)
    return RunPlan(config, run_id, now, snapshot_dir(config.output_dir, run_id), window, fetch,
                   chunk_days, chunk_posts)


def runner_name(runner: str) -> str:
    """--runner as a plain lower-case class name ('' for the default, the DirectRunner)."""
    return (runner or "").rsplit(".", 1)[-1].lower()


def plan_slicing(config: JobConfig, input_bytes: typing.Callable[[], int] | None = None
                 ) -> tuple[int, int]:
    """How a run is sliced: (chunk_days, chunk_posts); (0, 0) is one pass.

    The flags decide when given. Otherwise a full run from files on a runner that holds its
    shuffles in memory (the DirectRunner) goes in slices of `options.AUTO_CHUNK_POSTS` posts
    when its input is over `options.AUTO_CHUNK_BYTES`; any other run goes in one pass.

    Args:
        config: The validated flags.
        input_bytes: The input's size (default: the sum of the --input files' sizes).
    """
    if config.chunk_posts is not None:
        return config.chunk_days, config.chunk_posts
    if (config.sources != ("file",) or config.window is not None or config.chunk_days or config.dry_run
            or runner_name(config.runner) not in IN_MEMORY_RUNNERS):
        return config.chunk_days, 0
    size = input_bytes() if input_bytes else sum(
        m.size_in_bytes for r in FileSystems.match(list(config.inputs)) for m in r.metadata_list)
    if size <= flags.AUTO_CHUNK_BYTES:
        return 0, 0
    print(f"The input is {size / 2**20:,.0f} MiB: running in slices of {flags.AUTO_CHUNK_POSTS:,} posts, so that the "
          f"DirectRunner's memory stays that of a slice (--chunk_posts 0: in one pass).", flush=True)
    return 0, flags.AUTO_CHUNK_POSTS


def model_handler(model: ModelConfig) -> ModelHandler:
    """The sentiment/topic model handler for the validated model flags; the models' labels are checked here.

    Raises:
        ConfigError: naming --model or --topic_model when a Hugging Face model's labels do not map onto ours
            (read from its config.json, before any weights load).
    """
    from models.handler import ScorerModelHandler  # torch is imported only when a job is built

    handler = ScorerModelHandler(
        model=model.spec, label_map=model.label_map, min_batch_size=model.batch_size,
        max_batch_size=model.batch_size, max_length=model.max_tokens, precision=model.precision,
        num_threads=model.threads, topics=model.topics, topic_model=model.topic_model,
        topic_label_map=model.topic_label_map, topic_threshold=model.topic_threshold, backend=model.backend)
    for flag, check in (("--model", handler.check_sentiment_model), ("--topic_model", handler.check_topic_model)):
        try:
            check()
        except ValueError as exc:
            raise ConfigError(f"{flag}: {exc}") from None
    return handler


def runner(config: JobConfig):
    """The runner to build the pipeline with: ours for `--runner DaskRunner` (see runners/dask_runner.py)."""
    if runner_name(config.runner) in ("dask", "daskrunner"):
        from runners.dask_runner import DaskRunner  # dask is imported only when asked for

        return DaskRunner()
    return None  # Beam picks it from --runner
