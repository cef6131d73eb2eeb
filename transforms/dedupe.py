"""Deduplication by (platform, id): a post read twice (two files, two queries) counts once."""

from __future__ import annotations

import apache_beam as beam

from schemas import Mention


def post_key(mention: Mention) -> str:
    """'platform:id': a platform name has no ':', so the key is unambiguous."""
    return f"{mention.platform}:{mention.id}"


def _freshness(mention: Mention) -> tuple:
    # The freshest fetch has the most up-to-date engagement counts; repr() only makes
    # the choice between equally fresh copies deterministic on every runner.
    fetched = mention.fetched_at.timestamp() if mention.fetched_at else float("-inf")
    return (fetched, repr(mention))


class KeepFreshestFn(beam.CombineFn):
    """Keeps the freshest copy of a post and how many copies were seen."""

    def create_accumulator(self):
        return None, 0

    def add_input(self, acc, mention):
        best, n = acc
        if best is None or _freshness(mention) > _freshness(best):
            best = mention
        return best, n + 1

    def merge_accumulators(self, accs):
        best, total = None, 0
        for cand, n in accs:
            total += n
            if cand is not None and (best is None or _freshness(cand) > _freshness(best)):
                best = cand
        return best, total

    def extract_output(self, acc):
        return acc


class DedupeMentions(beam.PTransform):
    """Mentions -> {'mentions': one per (platform, id), 'duplicates': one int per dropped copy count}."""

    def expand(self, mentions):
        kept = (
            mentions
            | "KeyByPost" >> beam.Map(lambda m: (post_key(m), m))
            | "KeepFreshest" >> beam.CombinePerKey(KeepFreshestFn())
        )
        unique = kept | "Unique" >> beam.Map(lambda kv: kv[1][0]).with_output_types(Mention)
        duplicates = (
            kept
            | "Copies" >> beam.Map(lambda kv: kv[1][1] - 1)
            | "Dropped" >> beam.Filter(lambda n: n > 0)
        )
        return {"mentions": unique, "duplicates": duplicates}
