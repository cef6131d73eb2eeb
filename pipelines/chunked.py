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

from pipelines.tables import write_table
from schemas import BRAND_MENTION_SCHEMA, MENTION_SCHEMA, BrandMention, Mention
from transforms.alerts import DetectAlerts
from transforms.dedupe import DedupeMentions, post_hash
from transforms.fetch import ReadSources
from transforms.incremental import ReadCommitted, partition_day, partition_rows
from transforms.matching import MatchBrands
from transforms.metrics import ComputeMetrics, MentionDays
from transforms.metrics_topics import ComputeTopicMetrics
from transforms.response_queue import ComputeResponseQueue
from transforms.sentiment import ScoreSentiment
from transforms.commit import CommitPlan, CommitRun, WriteCounts, counted, summed, written_counts

LOG = logging.getLogger("social_listening")
CHUNKS_DIR = "_chunks"
# What ComputeMetrics reads from a post: who wrote it, what it replies to, where and when.
_REPLY_COLUMNS = ("id", "platform", "created_at", "author_handle", "reply_to")
# What the alerts' top terms read from a brand mention (transforms.alerts.NegativeMention, and the sentiment).
_TERM_COLUMNS = ("brand_id", "created_at", "text", "topics", "sentiment")


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
                ) -> typing.List[Slice]:
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
    planned: typing.List[Slice] = []
    start: typing.Optional[datetime.date] = None
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


def _counts(written: typing.Sequence[beam.PCollection], *others: beam.PCollection) -> beam.PCollection:
    """A pass's (name, value) counts for the manifest: its written tables' and the others given."""
    files = written | "AllFiles" >> beam.Flatten()
    return (files | "WrittenCounts" >> beam.FlatMap(written_counts),) + others | "AllCounts" >> beam.Flatten()


def build_stage(pipeline: beam.Pipeline, job, chunks_dir: str) -> beam.PCollection:
    """Pass 1: input -> staged posts by creation day, and the reading's dead letters; returns its counts."""
    read = pipeline | "ReadMentions" >> ReadSources(job.inputs, job.max_text_chars, None)
    # The staged posts are the run's scratch, not one of its tables: they are not counted as written.
    _ = write_table("posts", read["mentions"], chunks_dir, label="StagedPosts")
    written = (write_table("dead_letters", read["dead_letters"], job.staging_dir, file_prefix="part-read"),)
    return _counts(written, counted(read["mentions"], "read.mentions", "ValidMentions"),
                   counted(read["mentions"], "read.records", "ReadMentions"),
                   counted(read["dead_letters"], "read.records", "UnreadRecords"))


def build_score(pipeline: beam.Pipeline, job, posts_dir: str, piece: Slice) -> beam.PCollection:
    """Pass 2, one slice: its staged posts -> dedupe, match, score -> brand_mentions and the model's dead letters;
    returns its counts."""
    def in_slice(path: str) -> bool:
        day = partition_day(path)
        return day is not None and piece.start <= day < piece.end

    mentions = pipeline | "ReadMentions" >> ReadCommitted(posts_dir, Mention, MENTION_SCHEMA, in_slice)
    if piece.parts > 1:
        mentions = mentions | "InPart" >> beam.Filter(in_part, piece.part, piece.parts)
    deduped = mentions | "Dedupe" >> DedupeMentions()
    matched = deduped["mentions"] | "MatchBrands" >> MatchBrands(job.brands)
    scored = matched.matched | "ScoreSentiment" >> ScoreSentiment(job.model_handler)
    # Parts of one day write into the same partitions: each pass under its own file names.
    part = "" if piece.parts == 1 else f"-{piece.part + 1}of{piece.parts}"
    written = (write_table("brand_mentions", scored["brand_mentions"], job.staging_dir, file_prefix=f"part{part}"),
               write_table("dead_letters", scored["dead_letters"], job.staging_dir,
                           file_prefix=f"part-s{piece.start:%Y%m%d}{part}"))
    return _counts(written, summed(deduped["duplicates"], "dedupe.duplicates", "Duplicates"),
                   counted(matched.matched, "match.matched_mentions", "Matched"),
                   counted(matched.unmatched, "match.unmatched_mentions", "Unmatched"))


def build_metrics(pipeline: beam.Pipeline, job, posts_dir: str) -> beam.PCollection:
    """Pass 3: every staged brand mention and post -> metrics, lang/topic metrics, alerts and the response queue;
    returns its written files."""
    brand_mentions = pipeline | "CommittedMentions" >> ReadCommitted(
        FileSystems.join(job.staging_dir, "brand_mentions"), BrandMention, BRAND_MENTION_SCHEMA)
    # Every valid post (copies too: a copy of a brand's reply changes no reply time, and no day), read
    # for the brand accounts' replies and the run's days only: the columns those need.
    posts = pipeline | "ReadPosts" >> ReadCommitted(posts_dir, Mention, MENTION_SCHEMA, columns=_REPLY_COLUMNS)
    dates = posts | "MentionDates" >> MentionDays()
    computed = ({"brand_mentions": brand_mentions, "mention_dates": dates, "posts": posts}
                | "ComputeMetrics" >> ComputeMetrics(job.brands))
    metrics = computed["metrics"]
    topic_metrics = (brand_mentions, dates) | "ComputeTopicMetrics" >> ComputeTopicMetrics()
    # The alerts' top terms read the negative mentions' texts once the alert keys are known. Their own
    # read of the staged mentions runs then (it waits for its side input), so no text is held meanwhile.
    term_mentions = pipeline | "TermMentions" >> ReadCommitted(
        FileSystems.join(job.staging_dir, "brand_mentions"), BrandMention, BRAND_MENTION_SCHEMA,
        columns=_TERM_COLUMNS)
    alerts = (metrics, term_mentions) | "DetectAlerts" >> DetectAlerts(job.brands)
    # The queue's candidates (mentions that call for an answer) are few: they are held, not the mentions.
    queue = ({"brand_mentions": brand_mentions, "mention_dates": dates, "posts": posts}
             | "ComputeResponseQueue" >> ComputeResponseQueue(job.brands))
    written = (write_table("metrics", metrics, job.staging_dir),
               write_table("response_queue", queue["response_queue"], job.staging_dir),
               write_table("queue_metrics", queue["queue_metrics"], job.staging_dir),
               write_table("lang_metrics", computed["lang_metrics"], job.staging_dir),
               write_table("topic_metrics", topic_metrics, job.staging_dir),
               write_table("alerts", alerts, job.staging_dir))
    return written | "AllFiles" >> beam.Flatten()


def run_in_slices(make_pipeline: typing.Callable[[], beam.Pipeline], job, chunk_days: int, chunk_posts: int,
                  plan: CommitPlan) -> typing.Any:
    """Runs the passes one after another into `job.staging_dir` (the run's snapshot); the last one commits it.

    Args:
        make_pipeline: A new pipeline with the run's options, for each pass.
        job: The run's `pipelines.run.JobConfig` (a full run from files).
        chunk_days: Most days per slice (0: any).
        chunk_posts: Most staged posts per slice (0: any); a larger day is split by post id.
        plan: The run's commit plan, for the commit stage that ends the last pass.

    Returns:
        The last pass's result.
    """
    chunks_dir = FileSystems.join(job.staging_dir, CHUNKS_DIR)
    posts_dir = FileSystems.join(chunks_dir, "posts")

    def run_pass(label, build, *args):
        pipeline = make_pipeline()
        built = build(pipeline, job, *args)
        if label is None:  # the last pass: its written files go to the commit stage
            empty = pipeline | "NoCounts" >> beam.Create([]).with_output_types(typing.Tuple[str, int])
            _ = {"written": built, "counts": empty} | "CommitRun" >> CommitRun(plan)
        else:
            _ = built | "WriteCounts" >> WriteCounts(job.staging_dir, label)
        result = pipeline.run()
        result.wait_until_finish()
        return result

    run_pass("0-stage", build_stage, chunks_dir)
    # Without any valid post one empty slice still runs, so that brand_mentions gets its schema-only file.
    planned = (plan_slices(partition_rows(posts_dir), chunk_days, chunk_posts)
               or [Slice(datetime.date.min, datetime.date.min)])
    for i, piece in enumerate(planned, 1):
        LOG.info("slice %d of %d: %s", i, len(planned), piece)
        run_pass(f"1-slice-{i:05d}", build_score, posts_dir, piece)
    return run_pass(None, build_metrics, posts_dir)
