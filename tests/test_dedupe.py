"""DedupeMentions: one post per (platform, id), the freshest copy, and every dropped copy counted."""

from __future__ import annotations

import datetime

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas import Mention
from transforms.dedupe import DedupeMentions, KeepFreshestFn, post_hash, post_key

UTC = datetime.timezone.utc


def _mention(mid: str, platform: str = "x", fetched_hour: int = 10, likes=None, text: str = "Nimbus again") -> Mention:
    values = {name: None for name in Mention._fields}
    values.update(id=mid, platform=platform, text=text, connector="file", likes=likes,
                  created_at=datetime.datetime(2026, 9, 7, 9, tzinfo=UTC),
                  fetched_at=datetime.datetime(2026, 9, 7, fetched_hour, tzinfo=UTC))
    return Mention(**values)


def test_keeps_one_freshest_copy_per_post_and_counts_the_dropped_copies():
    posts = [
        _mention("1", fetched_hour=10, likes=3),
        _mention("1", fetched_hour=12, likes=9),  # fresher: its counts win
        _mention("1", fetched_hour=11, likes=5),
        _mention("2"),
        _mention("2"),  # an identical copy: kept once
        _mention("1", platform="reddit"),  # same id on another platform: another post
        _mention("3"),
    ]
    with TestPipeline() as p:
        out = p | beam.Create(posts) | DedupeMentions()
        assert_that(out["mentions"] | "Keys" >> beam.Map(lambda m: (m.platform, m.id, m.likes)),
                    equal_to([("x", "1", 9), ("x", "2", None), ("reddit", "1", None), ("x", "3", None)]),
                    label="OnePerPost")
        assert_that(out["duplicates"], equal_to([2, 1]), label="DroppedCopies")


def test_posts_in_equal_dropped_plus_out_on_many_posts():
    posts = [_mention(str(i)) for i in range(500)] + [_mention(str(i), fetched_hour=11) for i in range(0, 500, 7)]
    with TestPipeline() as p:
        out = p | beam.Create(posts, reshuffle=False) | DedupeMentions()
        assert_that(out["mentions"] | "Count" >> beam.combiners.Count.Globally(), equal_to([500]),
                    label="Unique")
        assert_that(out["duplicates"] | "Sum" >> beam.CombineGlobally(sum), equal_to([len(range(0, 500, 7))]),
                    label="Dropped")
        fresher = out["mentions"] | "Fresher" >> beam.Filter(lambda m: m.fetched_at.hour == 11)
        assert_that(fresher | "Ids" >> beam.Map(lambda m: int(m.id)), equal_to(list(range(0, 500, 7))),
                    label="FreshestKept")


def test_without_copies_nothing_is_dropped():
    posts = [_mention(str(i)) for i in range(20)]
    with TestPipeline() as p:
        out = p | beam.Create(posts) | DedupeMentions()
        assert_that(out["mentions"] | beam.Map(lambda m: m.id), equal_to([str(i) for i in range(20)]),
                    label="All")
        assert_that(out["duplicates"], equal_to([]), label="None")


def test_unique_mentions_keep_the_record_type():
    with TestPipeline() as p:
        out = p | beam.Create([_mention("1"), _mention("1", fetched_hour=12)]) | DedupeMentions()
        assert out["mentions"].element_type is Mention
        assert_that(out["mentions"] | beam.Map(lambda m: type(m).__name__), equal_to(["Mention"]))


def test_post_key_and_tie_break_between_equally_fresh_copies():
    assert post_key(_mention("42", platform="bluesky")) == ("bluesky", "42")
    a, b = _mention("1", likes=1), _mention("1", likes=2)
    fn = KeepFreshestFn()
    one = fn.extract_output(fn.add_input(fn.add_input(fn.create_accumulator(), a), b))
    other = fn.extract_output(fn.add_input(fn.add_input(fn.create_accumulator(), b), a))
    assert one == other and one[1] == 2  # the same copy whatever the order
    merged = fn.merge_accumulators([fn.add_input(fn.create_accumulator(), b), fn.add_input(fn.create_accumulator(), a)])
    assert fn.extract_output(merged) == one
    assert fn.extract_output(fn.merge_accumulators([fn.create_accumulator()])) == (None, 0)


def test_a_colon_in_platform_or_id_never_merges_two_posts():
    # Joined as 'platform:id' both were 'x:1:2', and one was dropped as a copy of the other.
    a, b = _mention("1:2", platform="x"), _mention("2", platform="x:1")
    assert post_key(a) != post_key(b) and post_hash(a) != post_hash(b)
    assert post_hash(a) == post_hash(_mention("1:2", platform="x", fetched_hour=12))  # copies hash alike
    with TestPipeline() as p:
        out = p | beam.Create([a, b, _mention("1:2", platform="x", fetched_hour=12)]) | DedupeMentions()
        assert_that(out["mentions"] | beam.Map(lambda m: (m.platform, m.id)), equal_to([("x", "1:2"), ("x:1", "2")]),
                    label="BothKept")
        assert_that(out["duplicates"], equal_to([1]), label="OnlyTheRealCopy")
