"""Deduplication by (platform, id): a post read twice (two files, two queries) counts once."""

from __future__ import annotations


import apache_beam as beam

from schemas import Mention
from transforms.coders import RECORDS_CODER
from transforms.distinct import id_hash

_CODER = RECORDS_CODER.get_impl()


def post_key(mention: Mention) -> tuple[str, str]:
    """(platform, id): a tuple, so that no two posts collide whatever their platform and id hold.

    (A joined string 'platform:id' made {"platform": "x", "id": "1:2"} and
    {"platform": "x:1", "id": "2"} one post.)
    """
    return mention.platform, mention.id


def post_hash(mention: Mention) -> int:
    """A stable 64-bit hash of the post's (platform, id), the same for every copy of it.

    The platform goes in with its length, so that, like `post_key`, two posts never share
    the hashed string.
    """
    return id_hash(f"{len(mention.platform)}:{mention.platform}:{mention.id}")


_NEVER = float("-inf")  # the fetch time of a copy that has none


class KeepFreshestFn(beam.CombineFn):
    """Keeps the freshest copy of a post and how many copies were seen.

    The freshest fetch has the most up-to-date engagement counts. The accumulator is
    `(fetch time, the copy encoded, copies)`: a runner that keeps a shuffle in memory
    (the DirectRunner) then holds one bytes object per post instead of a tree of
    Python objects, and between equally fresh copies the larger encoding wins, the
    same choice on every runner. `extract_output` gives `(mention, copies)`.
    """

    def create_accumulator(self):
        return _NEVER, b"", 0

    def add_input(self, acc, mention):
        fresh = (mention.fetched_at.timestamp() if mention.fetched_at else _NEVER, _CODER.encode(mention))
        if acc[2] == 0 or fresh > acc[:2]:
            return fresh + (acc[2] + 1,)
        return acc[0], acc[1], acc[2] + 1

    def merge_accumulators(self, accs):
        best, total = None, 0
        for acc in accs:
            total += acc[2]
            if acc[2] and (best is None or acc[:2] > best):
                best = acc[:2]
        return (best or (_NEVER, b"")) + (total,)

    def extract_output(self, acc):
        return (_CODER.decode(acc[1]) if acc[2] else None), acc[2]


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
