"""Fetching from the platforms as Beam transforms, and the composite that reads every chosen source.

`plan_fetch` (on the launching machine, before any work) reads each connector's
credentials and incremental state, builds the queries from the brand config and
plans the tasks: one per (connector, query, time slice), plus the gaps that stopped
tasks left in earlier runs. `FetchFromPlatforms` spreads the tasks over workers
(`Reshuffle`) and runs `FetchFn`, which builds the connectors in `setup()` (the DoFn
itself carries no secret) and emits:

- `mentions`: valid posts, counted under `read.records` / `read.mentions` like the
  file connector's, so the manifest's balance covers them;
- `dead_letters`: unreadable pages, failed requests and looping cursors (step `fetch`,
  with query and cursor) and posts that are invalid or cannot be carried (step
  `validate`, or `parse` for an unexpected exception), each also counted under
  `read.records`; a task that raised what its connector did not contain becomes one
  `fetch` dead letter and a stopped `TaskResult`, so the other tasks go on;
- `brand_replies`, `account_snapshots`: the brand accounts' replies and follower counts;
- `progress`: one `TaskResult` per task, merged into the new state.

`ReadSources` is what the job reads: the files (`--input`) and/or the platforms.
For the platforms it also reads back the `posts/`, `brand_replies/` and
`account_snapshots/` tables of earlier runs, so that an incremental run, which only
fetches what is new, still outputs everything: the tables are replaced by (earlier
rows + fetched rows), once per key. Dedupe by (platform, id) across queries, slices
and runs happens downstream in the job's `Dedupe` step (and here for the archive).

The new state is written into the run's snapshot, `<output>/_snapshots/<run_id>/_state/<connector>.json`,
and becomes the current state in the same atomic step as the run's tables, when the job's
commit stage switches to that snapshot (`transforms.commit`): a run that fails leaves the
state where it was, and the next run fetches that range again (duplicates are dropped,
nothing lost). The state and the earlier tables are read from the current snapshot.
"""

from __future__ import annotations

import datetime
import logging
import typing
from dataclasses import dataclass

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from connectors.base import (COMPLETE, MESSAGE_CHARS, STOPPED, ConnectorSettings, DeadPage, FetchTask, TaskResult,
                             connector_class,
                             merge_state, plan_tasks)
from connectors.files import DEFAULT_MAX_TEXT_CHARS
from schemas import DeadLetter, Mention
from schemas.records import AccountSnapshot, BrandReply
from transforms.commit import counted
from transforms.dead_letters import dead_letter
from transforms.dedupe import DedupeMentions
from transforms.json_files import read_json_object, write_json
from transforms.read import ReadMentionsFromFiles
from transforms.snapshots import committed_path, snapshot_dir

LOG = logging.getLogger(__name__)
DEAD = "dead_letters"
REPLIES = "brand_replies"
SNAPSHOTS = "account_snapshots"
PROGRESS = "progress"
STATE_DIR = "_state"
_UTC = datetime.timezone.utc


# ---- incremental state on any Beam filesystem ---------------------------------------------

def state_path(output_dir: str, connector: str) -> str:
    """Where a connector's committed state is: `_state/<connector>.json` in the current snapshot."""
    return committed_path(output_dir, STATE_DIR, f"{connector}.json")


def staged_state_dir(output_dir: str, run_id: str) -> str:
    """Where a run writes its new state: `_state/` of its own snapshot, committed with its tables."""
    return FileSystems.join(snapshot_dir(output_dir, run_id), STATE_DIR)


def load_state(output_dir: str, connector: str) -> dict:
    """The connector's stored state, or {} before its first run.

    Raises:
        ValueError: when the file exists but is not a JSON object (naming the file).
    """
    return read_json_object(state_path(output_dir, connector), "state file", "fix or delete it to start afresh")


# ---- planning ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class FetchPlan:
    """What a run fetches: built on the launching machine by `plan_fetch`.

    Attributes:
        settings: Connector name -> settings (no secrets).
        tasks: Every task of the run.
        states: Connector name -> the state read at start.
        output_dir: The job's output directory (where earlier tables and the state are).
        state_staging_dir: Where the new state is staged.
        run_id: The run's id.
        now: The run's reference time.
    """

    settings: dict[str, ConnectorSettings]
    tasks: tuple[FetchTask, ...]
    states: dict[str, dict]
    output_dir: str
    state_staging_dir: str
    run_id: str
    now: datetime.datetime


def plan_fetch(brands: typing.Any, settings: typing.Mapping[str, ConnectorSettings], output_dir: str,
               run_id: str, *, now: datetime.datetime | None = None,
               start: datetime.datetime | None = None, end: datetime.datetime | None = None,
               slice_hours: float = 24.0, lookback_hours: float = 168.0) -> FetchPlan:
    """Checks credentials, reads the state and plans every connector's tasks.

    Args:
        brands: The validated BrandConfig.
        settings: Connector name -> settings, for each platform --source.
        output_dir: The job's output directory.
        run_id: The run's id.
        now: Reference time (defaults to now).
        start, end: Backfill window (None: incremental from the stored state).
        slice_hours: Backfill slice length.
        lookback_hours: How far a query's first incremental run looks back.

    Returns:
        The plan.

    Raises:
        ValueError: missing credentials, a query that cannot be built, a broken state
            file; the message names the flag, variable or file.
    """
    now = now or datetime.datetime.now(_UTC)
    tasks: list[FetchTask] = []
    states: dict[str, dict] = {}
    for name, conf in settings.items():
        cls = connector_class(name)
        credentials = cls.load_credentials(conf, opener=FileSystems.open)
        queries = cls.queries(brands, conf, credentials)
        states[name] = load_state(output_dir, name)
        tasks.extend(plan_tasks(cls, queries, states[name], now=now, start=start, end=end,
                                slice_hours=slice_hours, lookback_hours=lookback_hours))
    return FetchPlan(dict(settings), tuple(tasks), states, output_dir, staged_state_dir(output_dir, run_id),
                     run_id, now)


# ---- fetching ---------------------------------------------------------------------------------

class FetchFn(beam.DoFn):
    """FetchTask -> Mentions (main), DeadLetters, BrandReplies, AccountSnapshots, TaskResults.

    Args:
        settings: Connector name -> settings. Credentials are read in `setup()` on the
            worker (environment or secret file), so they are never pickled with the DoFn.
    """

    def __init__(self, settings: typing.Mapping[str, ConnectorSettings]):
        self._settings = dict(settings)
        self._connectors: dict[str, typing.Any] = {}
        self._records = beam.metrics.Metrics.counter("read", "records")
        self._valid = beam.metrics.Metrics.counter("read", "mentions")
        self._pages = beam.metrics.Metrics.counter("fetch", "pages")
        self._replies = beam.metrics.Metrics.counter("fetch", "brand_replies")
        self._snapshots = beam.metrics.Metrics.counter("fetch", "account_snapshots")
        self._stopped = beam.metrics.Metrics.counter("fetch", "stopped_tasks")
        self._tasks = beam.metrics.Metrics.counter("fetch", "tasks")

    def setup(self):
        self._connectors = {}
        for name, conf in self._settings.items():
            cls = connector_class(name)
            self._connectors[name] = cls(conf, cls.load_credentials(conf, opener=FileSystems.open))

    def process(self, task: FetchTask):
        connector = self._connectors[task.connector]
        finished = False
        try:
            for output in self._outputs(task, connector):
                finished = finished or isinstance(output, beam.pvalue.TaggedOutput) and output.tag == PROGRESS
                yield output
        except Exception as exc:  # a fault the connector did not contain is still this query's only
            if finished:
                raise
            reason = connector.clean(f"{task.connector} failed: {type(exc).__name__}: {exc}", MESSAGE_CHARS)
            LOG.warning("%s: %s %r stopped: %s", task.connector, task.kind, connector.clean(task.query, 200), reason)
            self._records.inc()
            self._stopped.inc()
            self._tasks.inc()
            yield beam.pvalue.TaggedOutput(DEAD, dead_letter("fetch", reason, "", connector.clean(
                f"{task.connector}:{task.kind}:{task.query}", MESSAGE_CHARS)))
            # Without a result, merge_state would take a re-planned gap for done.
            yield beam.pvalue.TaggedOutput(PROGRESS, TaskResult(task, STOPPED, reason))

    def _outputs(self, task: FetchTask, connector):
        per_platform = beam.metrics.Metrics.counter("fetch", f"{task.connector}_posts")
        for event in connector.fetch(task):
            if isinstance(event, Mention):
                self._records.inc()
                self._valid.inc()
                per_platform.inc()
                yield event
            elif isinstance(event, DeadPage):
                self._records.inc()
                yield beam.pvalue.TaggedOutput(DEAD, dead_letter(event.step, event.reason, event.record,
                                                                 event.source))
            elif isinstance(event, BrandReply):
                self._replies.inc()
                yield beam.pvalue.TaggedOutput(REPLIES, event)
            elif isinstance(event, AccountSnapshot):
                self._snapshots.inc()
                yield beam.pvalue.TaggedOutput(SNAPSHOTS, event)
            elif isinstance(event, TaskResult):
                self._tasks.inc()
                self._pages.inc(event.pages)
                if event.status != COMPLETE:
                    self._stopped.inc()
                    LOG.warning("%s: %s %r stopped after %d page(s): %s", task.connector, task.kind, task.query,
                                event.pages, event.reason)
                yield beam.pvalue.TaggedOutput(PROGRESS, event)

    def teardown(self):
        for connector in self._connectors.values():
            connector.close()


class FetchFromPlatforms(beam.PTransform):
    """pbegin -> {'mentions', 'dead_letters', 'brand_replies', 'account_snapshots', 'progress'}.

    Args:
        plan: The run's FetchPlan.
    """

    def __init__(self, plan: FetchPlan):
        super().__init__()
        self._plan = plan

    def expand(self, pbegin):
        fetched = (
            pbegin
            | "Tasks" >> beam.Create(list(self._plan.tasks), reshuffle=False)
            # One element per (connector, query, slice): spread them so that workers fetch in parallel.
            | "SpreadTasks" >> beam.Reshuffle()
            | "Fetch" >> beam.ParDo(FetchFn(self._plan.settings)).with_outputs(
                DEAD, REPLIES, SNAPSHOTS, PROGRESS, main="mentions")
        )
        return {"mentions": fetched.mentions, "dead_letters": fetched[DEAD], "brand_replies": fetched[REPLIES],
                "account_snapshots": fetched[SNAPSHOTS], "progress": fetched[PROGRESS]}


def _stage_states(results: list[TaskResult], plan: FetchPlan) -> typing.Iterator[str]:
    for name in sorted(plan.settings):
        mine = [r for r in results if r.task.connector == name]
        state = merge_state(plan.states.get(name, {}), mine, connector=connector_class(name), now=plan.now,
                            run_id=plan.run_id)
        path = FileSystems.join(plan.state_staging_dir, f"{name}.json")
        write_json(path, state)
        yield path


def _progress_counts(result: TaskResult) -> typing.Iterator[tuple[str, int]]:
    yield "fetch.tasks", 1
    yield "fetch.pages", result.pages
    yield "fetch.stopped_tasks", int(result.status != COMPLETE)


def _fetch_counts(fetched: dict[str, beam.PCollection]) -> beam.PCollection:
    """The manifest's fetch counts, from what the fetch emitted: (name, value) pairs."""
    return ((fetched["progress"] | "ProgressCounts" >> beam.FlatMap(_progress_counts),
             fetched["mentions"] | "PostsPerConnector" >> beam.Map(lambda m: (f"fetch.{m.platform}_posts", 1)),
             counted(fetched["brand_replies"], "fetch.brand_replies", "FetchedReplies"),
             counted(fetched["account_snapshots"], "fetch.account_snapshots", "FetchedSnapshots"))
            | "FetchCounts" >> beam.Flatten())


# ---- reading back the tables of earlier runs --------------------------------------------------

def _read_rows(readable: fileio.ReadableFile, record_type: type) -> typing.Iterator[typing.Any]:
    with readable.open(compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        table = pq.read_table(pa.BufferReader(fh.read()))
    names = record_type._fields
    for row in table.to_pylist():
        yield record_type(**{n: row.get(n) for n in names})


class ReadTableRows(beam.PTransform):
    """Rows of an earlier run's Parquet table as records (nothing when the table does not exist).

    Args:
        table_dir: The table's directory (`<output>/<table>`).
        record_type: The NamedTuple to build (every column is in the files).
    """

    def __init__(self, table_dir: str, record_type: type):
        super().__init__()
        self._pattern = FileSystems.join(table_dir, "*", "*.parquet")
        self._record_type = record_type

    def expand(self, pbegin):
        return (
            pbegin
            | "Pattern" >> beam.Create([self._pattern])
            | "Match" >> fileio.MatchAll(fileio.EmptyMatchTreatment.ALLOW)
            | "ReadMatches" >> fileio.ReadMatches()
            | "Rows" >> beam.FlatMap(_read_rows, self._record_type).with_output_types(self._record_type)
        )


def _reply_key(reply: BrandReply):
    return (reply.platform, reply.id), reply


def _snapshot_key(snapshot: AccountSnapshot):
    return (snapshot.platform, snapshot.handle, snapshot.fetched_at.isoformat()), snapshot


def _freshest(rows: typing.Iterable[typing.Any]) -> typing.Any:
    return max(rows, key=lambda r: (r.fetched_at.timestamp(), repr(r)))


class _OncePerKey(beam.PTransform):
    def __init__(self, key_fn, record_type):
        super().__init__()
        self._key_fn = key_fn
        self._record_type = record_type

    def expand(self, rows):
        return (rows
                | "Key" >> beam.Map(self._key_fn)
                | "Freshest" >> beam.CombinePerKey(_freshest)
                | "Rows" >> beam.Values().with_output_types(self._record_type))


class _WithEarlierRows(beam.PTransform):
    """Fetched rows -> the committed table's rows plus them, once per key (the freshest): the archive a run writes.

    Args:
        output_dir: The job's --output_dir.
        table: The table the earlier rows are read from (in the current snapshot).
        record_type: Its record.
        key_fn: Row -> (key, row).
    """

    def __init__(self, output_dir: str, table: str, record_type: type,
                 key_fn: typing.Callable[[typing.Any], tuple[typing.Any, typing.Any]]):
        super().__init__()
        self._output_dir = output_dir
        self._table = table
        self._record_type = record_type
        self._key_fn = key_fn

    def expand(self, fetched):
        earlier = fetched.pipeline | "Earlier" >> ReadTableRows(committed_path(self._output_dir, self._table),
                                                                self._record_type)
        return ((earlier, fetched)
                | "All" >> beam.Flatten().with_output_types(self._record_type)
                | "Once" >> _OncePerKey(self._key_fn, self._record_type))


# ---- the composite the job reads from --------------------------------------------------------

class ReadSources(beam.PTransform):
    """Every chosen source, flattened: pbegin -> {'mentions', 'dead_letters', ...}.

    With a fetch plan, also 'posts' (earlier + fetched platform posts, once per post),
    'brand_replies', 'account_snapshots' (earlier + fetched), 'state_files' (the
    staged state paths, written when the fetch is done) and 'counts' (the fetch's
    (name, value) counts for the manifest).

    Args:
        inputs: File patterns (`--input`); empty when `file` is not a source.
        max_text_chars: Longer texts go to dead letters.
        fetch: The platforms' FetchPlan, or None.
    """

    def __init__(self, inputs: typing.Sequence[str] = (), max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
                 fetch: FetchPlan | None = None):
        super().__init__()
        self._inputs = list(inputs)
        self._max_text_chars = max_text_chars
        self._fetch = fetch

    def expand(self, pbegin):
        mentions, dead, out = [], [], {}
        if self._inputs:
            files = pbegin | "Files" >> ReadMentionsFromFiles(self._inputs, self._max_text_chars)
            mentions.append(files["mentions"])
            dead.append(files["dead_letters"])
        if self._fetch is not None:
            plan = self._fetch
            earlier = pbegin | "EarlierPosts" >> ReadMentionsFromFiles(
                [committed_path(plan.output_dir, "posts", "*", "*.parquet")], self._max_text_chars)
            fetched = pbegin | "FetchFromPlatforms" >> FetchFromPlatforms(plan)
            platform_posts = ((earlier["mentions"], fetched["mentions"])
                              | "PlatformPosts" >> beam.Flatten().with_output_types(Mention))
            mentions.append(platform_posts)
            dead += [earlier["dead_letters"], fetched["dead_letters"]]
            out["posts"] = (platform_posts | "PostsOnce" >> DedupeMentions())["mentions"]
            out["brand_replies"] = fetched["brand_replies"] | "Replies" >> _WithEarlierRows(
                plan.output_dir, "brand_replies", BrandReply, _reply_key)
            out["account_snapshots"] = fetched["account_snapshots"] | "Snapshots" >> _WithEarlierRows(
                plan.output_dir, "account_snapshots", AccountSnapshot, _snapshot_key)
            out["state_files"] = (
                fetched["progress"]
                | "CollectProgress" >> beam.combiners.ToList()
                | "StageState" >> beam.FlatMap(_stage_states, plan))
            out["counts"] = _fetch_counts(fetched)
        out["mentions"] = tuple(mentions) | "AllMentions" >> beam.Flatten().with_output_types(Mention)
        out["dead_letters"] = tuple(dead) | "AllReadDeadLetters" >> beam.Flatten().with_output_types(DeadLetter)
        return out
