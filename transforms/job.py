"""The job, composed once: posts in, the job's tables out (`SocialListening`).

Steps: [Window, for a windowed run] -> Dedupe -> DetectLanguage -> MatchBrands -> ScoreTexts ->
JudgeRelevance (the SCORE steps; matches on ambiguous names judged from context,
`transforms.relevance`), then ComputeMetrics, ComputeTopicMetrics, ComputeResponseQueue ->
DetectAlerts, and for a windowed run the merge with the committed periods (the
AGGREGATE steps). A one-pass run applies both to what it read; a sliced run
(`pipelines.chunked`) applies the same composite to each slice of posts with SCORE
only, then once with AGGREGATE only to every scored mention and post: slicing is a plan
over this one composition, not a second one.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import ModelHandler

from schemas import DeadLetter
from schemas.config import BrandConfig
from schemas.tables import TABLES
from transforms.alerts import DetectAlerts
from transforms.commit import counted, summed
from transforms.dedupe import DedupeMentions
from transforms.incremental import MergeRecomputed, ReadCommitted, RunWindow, SplitByWindow, context_file
from transforms.language import DetectLanguage
from transforms.matching import MatchBrands
from transforms.metrics import ComputeMetrics, MentionDays
from transforms.metrics_topics import ComputeTopicMetrics
from transforms.relevance import JudgeRelevance, relevance_plan
from transforms.response_queue import ComputeResponseQueue, max_horizon, queue_recompute_from
from transforms.scoring import ScoreTexts

SCORE = "score"
AGGREGATE = "aggregate"
# The periodic tables a windowed run recomputes from its window on and merges with the committed earlier periods.
_MERGED = ("metrics", "lang_metrics", "topic_metrics", "alerts")


@dataclass(frozen=True)
class JobSpec:
    """What the job's steps need.

    Attributes:
        brands: The validated brand config.
        model_handler: The sentiment/topic model.
        window: A windowed run's window (None: a full run).
        output_dir: Where a windowed run reads the committed tables around its window.
        reply_coverage: (brand id, platform) pairs whose brand replies were fetched (`Connector.reply_coverage`).
    """

    brands: BrandConfig
    model_handler: ModelHandler
    window: RunWindow | None = None
    output_dir: str | None = None
    reply_coverage: tuple[tuple[str, str], ...] = ()


class SocialListening(beam.PTransform):
    """{'mentions', 'dead_letters', ...} -> the job's tables, by name (see `schemas.tables`).

    Inputs (a dict of PCollections):
        mentions: The valid posts read (SCORE).
        dead_letters: The reading's dead letters (optional), written with the scoring's.
        brand_replies, account_snapshots: A platform run's (optional; the metrics read them).
        brand_mentions, posts: Scored mentions and every valid post, when SCORE is not among the steps.
        alert_mentions: The mentions the alerts read their top terms from (optional; default brand_mentions).

    Outputs: 'brand_mentions', 'rejected_matches' (matches on ambiguous names judged not about the brand) and
    'dead_letters' (SCORE), 'metrics', 'lang_metrics', 'topic_metrics', 'alerts',
    'response_queue', 'queue_metrics' (AGGREGATE), and with SCORE also 'unmatched' (posts no brand matched),
    'duplicates' (the count of copies dropped) and 'counts' ((name, value) pairs for the manifest: duplicates,
    matched, unmatched, outside the window; `transforms.commit.CommitRun` sums them).

    Args:
        job: The job's configuration.
        steps: SCORE and/or AGGREGATE.
    """

    def __init__(self, job: JobSpec, steps: typing.Sequence[str] = (SCORE, AGGREGATE)):
        super().__init__()
        self._job = job
        self._steps = tuple(steps)

    def expand(self, inputs: dict[str, beam.PCollection]) -> dict[str, beam.PCollection]:
        job, window, out = self._job, self._job.window, {}
        pipeline = inputs[next(iter(inputs))].pipeline
        dead = [inputs["dead_letters"]] if "dead_letters" in inputs else []
        if SCORE in self._steps:
            if window is None:
                deduped = inputs["mentions"] | "Dedupe" >> DedupeMentions()
                mentions = posts = deduped["mentions"]
            else:
                # Only the window's posts are scored; those of the context still answer complaints (posts).
                # The split comes first, so that a window's shuffles hold its own posts, not the whole input
                # (copies of a post share its creation time, so they land on the same side).
                split = inputs["mentions"] | "Window" >> SplitByWindow(window)
                deduped = split["window"] | "Dedupe" >> DedupeMentions()
                mentions = deduped["mentions"]
                # Context posts (counted as outside the window, copies included) only answer complaints: a
                # copy of a brand's reply changes no reply time, so they go to the metrics without a dedupe,
                # and as a second PCollection rather than flattened (a runner may copy a flattened input).
                posts = (mentions, split["context"])
            # Before matching: a brand query's `lang:` sees the detected language too.
            detected = mentions | "DetectLanguage" >> DetectLanguage(job.brands.languages)
            dead.append(detected["dead_letters"])
            matched = detected["mentions"] | "MatchBrands" >> MatchBrands(job.brands)
            ambiguous, profiles = relevance_plan(job.brands)
            handler, judged_brands = job.model_handler, []
            if profiles and hasattr(handler, "with_profiles"):
                # The model scores the ambiguous brands' profiles in the same pass as the sentiment.
                handler = handler.with_profiles(profiles)
                judged_brands = [p.name for p in profiles]
            scored = matched.matched | "ScoreTexts" >> ScoreTexts(handler, judged_brands=judged_brands)
            judged = scored["brand_mentions"] | "JudgeRelevance" >> JudgeRelevance(job.brands, ambiguous)
            brand_mentions = out["brand_mentions"] = judged["brand_mentions"]
            out["rejected_matches"] = judged["rejected_matches"]
            dead.append(scored["dead_letters"])
            out.update(unmatched=matched.unmatched, duplicates=deduped["duplicates"])
            # The manifest's counts, counted inside the pipeline (the commit stage adds the written rows).
            counts = [summed(deduped["duplicates"], "dedupe.duplicates", "Duplicates"),
                      counted(matched.matched, "match.matched_mentions", "Matched"),
                      counted(matched.unmatched, "match.unmatched_mentions", "Unmatched"),
                      counted(judged["rejected_matches"], "relevance.rejected_matches", "RejectedMatches")]
            if window is not None:  # outside = read - in the window (before the dedupe)
                counts += [counted(inputs["mentions"], "window.outside_mentions", "AllMentions"),
                           counted(split["window"], "window.outside_mentions", "WindowMentions")
                           | "Negate" >> beam.Map(lambda kv: (kv[0], -kv[1]))]
            out["counts"] = tuple(counts) | "AllCounts" >> beam.Flatten()
        else:
            brand_mentions, posts = inputs["brand_mentions"], inputs["posts"]
            mentions = posts
        if dead:
            out["dead_letters"] = tuple(dead) | "AllDeadLetters" >> beam.Flatten().with_output_types(DeadLetter)
        if AGGREGATE in self._steps:
            out.update(self._aggregate(pipeline, inputs, brand_mentions, mentions, posts))
        return out

    def _aggregate(self, pipeline: beam.Pipeline, inputs: dict[str, beam.PCollection],
                   brand_mentions: beam.PCollection, mentions: beam.PCollection, posts: typing.Any
                   ) -> dict[str, beam.PCollection]:
        """The metrics, topic metrics, alerts and response queue from the scored mentions and the posts."""
        job, window = self._job, self._job.window
        spec = TABLES["brand_mentions"]
        if window is None:
            metric_mentions = brand_mentions
            dates = mentions | "MentionDates" >> MentionDays()
        else:
            # Metrics are recomputed from the mentions: this window's, and the committed ones around it.
            committed = pipeline | "CommittedMentions" >> ReadCommitted(
                FileSystems.join(job.output_dir, spec.name), spec.record, spec.schema, context_file(window))
            metric_mentions = ((brand_mentions, committed)
                               | "WindowAndCommittedMentions" >> beam.Flatten().with_output_types(spec.record))
            dates = pipeline | "WindowDates" >> beam.Create(window.date_bounds())
        # Every valid post goes in too: the brand accounts' own replies among them answer complaints.
        metric_inputs = {"brand_mentions": metric_mentions, "mention_dates": dates, "posts": posts}
        metric_inputs.update({k: inputs[k] for k in ("brand_replies", "account_snapshots") if k in inputs})
        computed = metric_inputs | "ComputeMetrics" >> ComputeMetrics(job.brands, list(job.reply_coverage))
        tables = {"metrics": computed["metrics"], "lang_metrics": computed["lang_metrics"]}
        tables["topic_metrics"] = (metric_mentions, dates) | "ComputeTopicMetrics" >> ComputeTopicMetrics()
        alert_mentions = inputs.get("alert_mentions", metric_mentions)
        tables["alerts"] = (tables["metrics"], alert_mentions) | "DetectAlerts" >> DetectAlerts(job.brands)
        # The response queue meets the same mentions and posts (and so the same replies) as the metrics.
        queue = metric_inputs | "ComputeResponseQueue" >> ComputeResponseQueue(job.brands)
        tables.update(response_queue=queue["response_queue"], queue_metrics=queue["queue_metrics"])
        if window is not None:
            # The periods the window touches (and later ones) from this run, earlier periods as committed.
            recompute_from = {"queue_metrics": queue_recompute_from(window.start, max_horizon(job.brands))}
            for name in _MERGED + ("queue_metrics",):
                table = TABLES[name]
                earlier = pipeline | f"Committed{table.label}" >> ReadCommitted(
                    FileSystems.join(job.output_dir, name), table.record, table.schema)
                tables[name] = (tables[name], earlier) | f"Merge{table.label}" >> MergeRecomputed(
                    window, table.record, *([recompute_from[name]] if name in recompute_from else []))
        return tables


def read_counts(read: typing.Mapping[str, beam.PCollection]) -> list[beam.PCollection]:
    """The manifest's counts of what `transforms.fetch.ReadSources` read: records, valid mentions, the fetch's own.

    Every record read is either a valid mention or one of the reading's dead letters.
    """
    counts = [counted(read["mentions"], "read.mentions", "ValidMentions"),
              counted(read["mentions"], "read.records", "ReadMentions"),
              counted(read["dead_letters"], "read.records", "UnreadRecords")]
    if "counts" in read:
        counts.append(read["counts"])
    return counts


def dead_letter_prefix(window: RunWindow | None) -> str:
    """File names of the dead letters: a windowed run's carry its window, so that a rerun replaces them."""
    return "part" if window is None else f"part-{window.key}"
