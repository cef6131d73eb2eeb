"""A full run in slices (`--chunk_posts N`, `--chunk_days N`): the memory of one slice, whatever the input's size.

A runner that keeps shuffles in memory (the DirectRunner) holds all the posts of a run
at once, because the dedupe by post id and the grouping of posts by text shuffle every
post. With `--chunk_posts` and/or `--chunk_days` a full run goes as a sequence of
pipelines instead:

1. **Stage**: reads the input once and writes the valid posts as Parquet, partitioned by
   creation day, into the run's staging directory (`_staging/<run>/_chunks/posts/`);
   unreadable and invalid records go to dead letters. Nothing is shuffled but file names.
2. **Score**, once per slice, oldest first: a slice is a run of consecutive days with at
   most `--chunk_posts` staged posts (counted from the Parquet footers) and at most
   `--chunk_days` days; a day with more posts than that alone is split into parts by a
   stable hash of the post id. Each pass reads its posts back, dedupes, matches and
   scores them, and writes their brand_mentions and the model's dead letters. Copies of
   a post share its id and creation time, so they land in the same slice and part; a
   text repeated in two slices is scored in both.
3. **Metrics**: reads every staged brand mention and post back and computes the
   metrics, topic metrics, alerts and the response queue from all of them, as a one-pass run does.
   Mentions are counted into per-day accumulators as they are read, and complaints
   meet the brand's replies through a side input; authors are counted in bounded
   distinct counters (`transforms.distinct`), and the alerts' top terms read the staged
   mentions again once the alert keys are known. What this pass holds grows with the
   number of (brand, period, platform, language) rows, not with the mentions.

Passes 2 and 3 apply the job's one composite (`transforms.job.SocialListening`), the
one a one-pass run applies to everything: its SCORE steps to each slice, its
AGGREGATE steps once to all of them. `plan_slices` is the plan; nothing of the job is
composed here a second time.

Every pass writes into the run's snapshot; each but the last also writes its counts
there (`_counts/`), and the last pass ends with the job's commit stage
(`transforms.commit.CommitRun`), which sums them and commits the snapshot like a
one-pass run's: every table is replaced, and a run that dies half way leaves the
previous outputs as they were. The outputs equal a one-pass run's (`tests/test_chunked.py`); the extra cost
is writing and reading the posts once more as Parquet, and one pipeline start per slice.
"""

from __future__ import annotations

import datetime
import logging
import typing

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from transforms.write_tables import write_tables
from schemas import Mention
from schemas.tables import TABLES
from transforms.commit import CommitPlan, CommitRun, WriteCounts, written_counts
from transforms.dedupe import post_hash
from transforms.fetch import ReadSources
from transforms.incremental import ReadCommitted, partition_day, partition_rows
from transforms.job import AGGREGATE, SCORE, JobSpec, SocialListening, read_counts

if typing.TYPE_CHECKING:
    from pipelines.plan import RunPlan

LOG = logging.getLogger("social_listening")
CHUNKS_DIR = "_chunks"
# What ComputeMetrics reads from a post: who wrote it, what it replies to, where and when.
_REPLY_COLUMNS = ("id", "platform", "created_at", "author_handle", "reply_to")
# What the alerts read from a brand mention (transforms.alerts.ALERT_MENTION_COLUMNS: the texts, and what the
# representative posts show and rank by).
_TERM_COLUMNS = ("mention_id", "brand_id", "platform", "created_at", "text", "lang", "topics", "sentiment", "url",
                 "author_handle", "author_followers", "likes", "reposts", "replies", "quotes", "is_repost")


class Slice(typing.NamedTuple):
    """What one scoring pass reads: the staged posts of days [start, end), the `part`-th of `parts` by post id."""

    start: datetime.date
    end: datetime.date
    part: int = 0
    parts: int = 1

    def __str__(self):
        days = f"{self.start} .. {self.end} (exclusive)"
        return days if self.parts == 1 else f"{days}, part {self.part + 1} of {self.parts} by post id"


def plan_slices(day_posts: typing.Mapping[datetime.date, int], chunk_days: int, chunk_posts: int
                ) -> list[Slice]:
    """The scoring passes: consecutive days with posts, oldest first, at most `chunk_days` calendar days
    and `chunk_posts` staged posts each (0: no limit of that kind).

    A day with more than `chunk_posts` posts alone is split into ceil(posts / chunk_posts)
    parts by a stable hash of the post id (`in_part`): the copies of a post share its id and
    day, so the dedupe still sees them together.

    Args:
        day_posts: Staged posts per creation day (days without posts may be left out).
        chunk_days: Most calendar days a slice spans (first to last day + 1); 0: any.
        chunk_posts: Most posts a slice holds; 0: any.
    """
    if chunk_days < 0 or chunk_posts < 0 or not (chunk_days or chunk_posts):
        raise ValueError("chunk_days and chunk_posts must not be negative, and one of them positive")
    planned: list[Slice] = []
    start: datetime.date | None = None
    last, held = None, 0
    for day in sorted(d for d, n in day_posts.items() if n > 0):
        posts = day_posts[day]
        alone = chunk_posts and posts > chunk_posts  # split into parts, in slices of its own
        if start is not None and (alone or (chunk_days and (day - start).days >= chunk_days)
                                  or (chunk_posts and held + posts > chunk_posts)):
            planned.append(Slice(start, last + datetime.timedelta(days=1)))
            start, held = None, 0
        if alone:
            parts = -(-posts // chunk_posts)
            planned.extend(Slice(day, day + datetime.timedelta(days=1), part, parts) for part in range(parts))
            continue
        if start is None:
            start = day
        last, held = day, held + posts
    if start is not None:
        planned.append(Slice(start, last + datetime.timedelta(days=1)))
    return planned


def in_part(mention: Mention, part: int, parts: int) -> bool:
    """Whether a post belongs to the `part`-th of `parts` of its day (by its platform and id: copies stay together)."""
    return post_hash(mention) % parts == part


def _counts(written: beam.PCollection, *others: beam.PCollection) -> beam.PCollection:
    """A pass's (name, value) counts for the manifest: its written tables' and the others given."""
    return (written | "WrittenCounts" >> beam.FlatMap(written_counts),) + others | "AllCounts" >> beam.Flatten()


def build_stage(pipeline: beam.Pipeline, plan: RunPlan, chunks_dir: str) -> beam.PCollection:
    """Pass 1: input -> staged posts by creation day, and the reading's dead letters; returns its counts."""
    read = pipeline | "ReadMentions" >> ReadSources(plan.config.inputs, plan.config.max_text_chars, None)
    # The staged posts are the run's scratch under chunks_dir, not its `posts` table: they are not counted.
    write_tables({"posts": read["mentions"]}, chunks_dir, label="Staged")
    written = write_tables({"dead_letters": read["dead_letters"]}, plan.staging_dir, {"dead_letters": "part-read"})
    return _counts(written, *read_counts(read))


def build_score(pipeline: beam.Pipeline, plan: RunPlan, job: JobSpec, posts_dir: str, piece: Slice
                ) -> beam.PCollection:
    """Pass 2, one slice: its staged posts -> the job's SCORE steps -> brand_mentions and the model's dead letters;
    returns its counts."""
    def in_slice(path: str) -> bool:
        day = partition_day(path)
        return day is not None and piece.start <= day < piece.end

    posts = TABLES["posts"]
    mentions = pipeline | "ReadMentions" >> ReadCommitted(posts_dir, posts.record, posts.schema, in_slice)
    if piece.parts > 1:
        mentions = mentions | "InPart" >> beam.Filter(in_part, piece.part, piece.parts)
    scored = {"mentions": mentions} | "SocialListening" >> SocialListening(job, steps=(SCORE,))
    # Parts of one day write into the same partitions: each pass under its own file names.
    part = "" if piece.parts == 1 else f"-{piece.part + 1}of{piece.parts}"
    written = write_tables(scored, plan.staging_dir, {"brand_mentions": f"part{part}",
                                                      "rejected_matches": f"part{part}",
                                                      "dead_letters": f"part-s{piece.start:%Y%m%d}{part}"})
    return _counts(written, scored["counts"])


def build_metrics(pipeline: beam.Pipeline, plan: RunPlan, job: JobSpec, posts_dir: str) -> beam.PCollection:
    """Pass 3: every staged brand mention and post -> the job's AGGREGATE steps -> metrics, lang/topic metrics,
    alerts and the response queue; returns its written files."""
    mentions, posts = TABLES["brand_mentions"], TABLES["posts"]
    staged_mentions = FileSystems.join(plan.staging_dir, mentions.name)
    inputs = {
        "brand_mentions": pipeline | "CommittedMentions" >> ReadCommitted(staged_mentions, mentions.record,
                                                                          mentions.schema),
        # Every valid post (copies too: a copy of a brand's reply changes no reply time, and no day), read
        # for the brand accounts' replies and the run's days only: the columns those need.
        "posts": pipeline | "ReadPosts" >> ReadCommitted(posts_dir, posts.record, posts.schema,
                                                         columns=_REPLY_COLUMNS),
        # The alerts read the alerted brands' mentions (texts, reach) once the alert keys are known. Their own
        # read of the staged mentions runs then (it waits for its side input), so no text is held meanwhile.
        "alert_mentions": pipeline | "TermMentions" >> ReadCommitted(staged_mentions, mentions.record,
                                                                     mentions.schema, columns=_TERM_COLUMNS),
    }
    tables = inputs | "SocialListening" >> SocialListening(job, steps=(AGGREGATE,))
    return write_tables(tables, plan.staging_dir)


def run_in_slices(make_pipeline: typing.Callable[[], beam.Pipeline], plan: RunPlan, job: JobSpec,
                  commit: CommitPlan) -> typing.Any:
    """Runs the passes one after another into `plan.staging_dir` (the run's snapshot); the last one commits it.

    Args:
        make_pipeline: A new pipeline with the run's options, for each pass.
        plan: The planned run (a full run from files; its `chunk_days` and `chunk_posts` bound the slices).
        job: What the job's composite needs.
        commit: The run's commit plan, for the commit stage that ends the last pass.

    Returns:
        The last pass's result.
    """
    chunks_dir = FileSystems.join(plan.staging_dir, CHUNKS_DIR)
    posts_dir = FileSystems.join(chunks_dir, "posts")

    def run_pass(label, build, *args):
        pipeline = make_pipeline()
        built = build(pipeline, plan, *args)
        if label is None:  # the last pass: its written files go to the commit stage
            empty = pipeline | "NoCounts" >> beam.Create([]).with_output_types(tuple[str, int])
            _ = {"written": built, "counts": empty} | "CommitRun" >> CommitRun(commit)
        else:
            _ = built | "WriteCounts" >> WriteCounts(plan.staging_dir, label)
        result = pipeline.run()
        result.wait_until_finish()
        return result

    run_pass("0-stage", build_stage, chunks_dir)
    # Without any valid post one empty slice still runs, so that brand_mentions gets its schema-only file.
    planned = (plan_slices(partition_rows(posts_dir), plan.chunk_days, plan.chunk_posts)
               or [Slice(datetime.date.min, datetime.date.min)])
    for i, piece in enumerate(planned, 1):
        LOG.info("slice %d of %d: %s", i, len(planned), piece)
        run_pass(f"1-slice-{i:05d}", build_score, job, posts_dir, piece)
    return run_pass(None, build_metrics, job, posts_dir)
