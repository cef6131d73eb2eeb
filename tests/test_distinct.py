"""Distinct counts: exact while small, a HyperLogLog sketch beyond; merges equal counting in one place."""

from __future__ import annotations

import datetime
import pickle

import numpy as np
import pytest

from transforms.coders import RECORDS_CODER
from transforms.distinct import EXACT_LIMIT, REGISTERS, DistinctCounter, estimate, id_hash


def _counter(ids) -> DistinctCounter:
    c = DistinctCounter()
    for i in ids:
        c.add(id_hash(i))
    return c


def test_id_hash_is_stable_64_bit():
    # Pinned: author hashes must agree between workers, processes and Python versions (no hash()).
    assert id_hash("u1") == 15378189911849802130 and id_hash("автор") == 17353502006882064447
    assert id_hash("u1") != id_hash("u2")
    assert all(0 <= id_hash(f"author-{i}") < 2 ** 64 for i in range(100))


def test_exact_up_to_the_limit_then_estimated():
    ids = [f"u{i}" for i in range(EXACT_LIMIT)]
    c = _counter(ids + ids[:100])  # repeats are not counted twice
    assert c.result() == (EXACT_LIMIT, False)
    c.add(id_hash("one-more"))
    n, estimated = c.result()
    assert estimated and abs(n - (EXACT_LIMIT + 1)) <= 0.03 * EXACT_LIMIT


@pytest.mark.parametrize("n", [3_000, 20_000, 60_000, 250_000])
def test_estimate_within_four_standard_errors(n):
    # Relative standard error 1.04 / sqrt(2^14) = 0.81 %; the ids are fixed, so this is deterministic.
    got, estimated = _counter(f"author-{n}-{i}" for i in range(n)).result()
    assert estimated and abs(got / n - 1) < 4 * 0.0081


def test_estimate_of_empty_and_full_registers():
    assert estimate(np.zeros(REGISTERS, dtype=np.uint8)) == 0.0
    # Every register at 1 (each saw one hash with a leading 1 bit): about m / ln 2 ... m ln m distinct.
    assert REGISTERS < estimate(np.ones(REGISTERS, dtype=np.uint8)) < REGISTERS * 10


@pytest.mark.parametrize("sizes", [(10, 20), (1_500, 1_500), (3_000, 40), (40, 3_000), (5_000, 7_000)])
def test_merge_equals_counting_everything_in_one_place(sizes):
    a_ids = [f"a{i}" for i in range(sizes[0])]
    b_ids = [f"b{i}" for i in range(sizes[1])] + a_ids[: sizes[0] // 2]  # overlapping sets
    a, b = _counter(a_ids), _counter(b_ids)
    b_before = pickle.dumps(b)
    merged = a.merge(b)
    assert merged is a and pickle.dumps(b) == b_before  # the other counter is left as it was
    whole = _counter(a_ids + b_ids)
    assert merged == whole and merged.result() == whole.result()
    n, estimated = merged.result()
    assert estimated == (len(set(a_ids + b_ids)) > EXACT_LIMIT)
    if not estimated:
        assert n == len(set(a_ids + b_ids))


def test_merge_is_order_independent():
    parts = [_counter(f"p{j}-{i}" for i in range(n)) for j, n in enumerate((10, 2_500, 700, 4_000))]
    forward, backward = DistinctCounter(), DistinctCounter()
    for p in parts:
        forward.merge(p)
    for p in reversed(parts):
        backward.merge(p)
    assert forward == backward


@pytest.mark.parametrize("n", [0, 5, 5_000])
def test_round_trips_through_pickle_and_the_records_coder(n):
    c = _counter(f"u{i}" for i in range(n))
    for copy in (pickle.loads(pickle.dumps(c)), RECORDS_CODER.decode(RECORDS_CODER.encode(c))):
        assert copy == c and copy.result() == c.result()


def _loose_counter(sketched: bool) -> tuple[DistinctCounter, list[str]]:
    """A counter whose last ids were merged in and wait, unsorted, to be sorted (or sketched) in."""
    ids = [f"s{i}" for i in range(3_000 if sketched else 100)]
    counter = _counter(ids)
    assert counter.result()[1] == sketched  # sorted in (or sketched) now; the ids merged next wait
    for j in range(3):
        part = [f"p{j}-{i}" for i in range(20)]
        counter.merge(_counter(part))
        ids += part
    return counter, ids


@pytest.mark.parametrize("sketched", [False, True])
def test_merging_a_counter_while_another_thread_pickles_it_keeps_every_id(sketched, monkeypatch):
    """Issue 15: on Dask, 1 run in 4 had too few unique_authors.

    A Dask worker pickles a task's result for another worker in its event-loop thread while its
    task thread merges the same counter (a day's accumulator is merged into 12 period keys). Pickling
    used to flush the counter in place, and a merge that ran between the flush emptying the loose
    hashes and storing them sorted got none of them. Here the merge runs at exactly that point:
    inside the step of pickling that sorts (or sketches) the loose hashes.
    """
    import transforms.distinct as distinct

    counter, ids = _loose_counter(sketched)
    merged, interleaved = DistinctCounter(), []

    def merging_meanwhile(sort_or_sketch):
        def step(*args, **kwargs):
            if pickling and not interleaved:
                interleaved.append(True)
                merged.merge(counter)  # what the task thread does, with the GIL, at this instant
            return sort_or_sketch(*args, **kwargs)
        return step

    if sketched:
        monkeypatch.setattr(distinct, "_registers_of", merging_meanwhile(distinct._registers_of))
    else:
        monkeypatch.setattr(distinct.np, "unique", merging_meanwhile(np.unique))
    pickling = True
    copy = pickle.loads(pickle.dumps(counter))
    pickling = False
    assert interleaved == [True]
    whole = _counter(ids)
    assert merged == whole and copy == whole
    assert merged.result() == whole.result() and whole.result()[1] == sketched


def test_size_is_bounded():
    # Exact: 8 bytes a hash; a sketch: one byte a register, whatever the count.
    exact = _counter(f"u{i}" for i in range(EXACT_LIMIT))
    small, large = _counter(f"u{i}" for i in range(3_000)), _counter(f"u{i}" for i in range(300_000))
    assert len(pickle.dumps(exact)) < 8 * EXACT_LIMIT + 400
    assert len(pickle.dumps(small)) == len(pickle.dumps(large)) < REGISTERS + 400


def test_bulk_and_one_by_one_sketching_agree():
    hashes = [id_hash(f"v{i}") for i in range(5_000)] + [0, 1, 2 ** 50 - 1, 2 ** 50, 2 ** 64 - 1]
    one_by_one = DistinctCounter()
    one_by_one.merge(_counter(["x"] * 1)).merge(_counter(f"w{i}" for i in range(3_000)))  # dense from here on
    bulk = DistinctCounter().merge(one_by_one)
    for h in hashes:
        one_by_one.add(h)
    part = DistinctCounter()
    for h in hashes[:1_000]:
        part.add(h)
    rest = DistinctCounter()
    for h in hashes[1_000:]:
        rest.add(h)
    bulk.merge(part).merge(rest)
    assert one_by_one == bulk


def test_metrics_flag_estimated_author_counts(tmp_path_factory):
    from tests.support.metric_rows import UTC, bm, compute_metrics

    day = datetime.datetime(2026, 9, 7, 12, tzinfo=UTC)
    # Sprite: 3,000 distinct authors on one day (estimated), Fanta: 3 authors, one of them twice (exact).
    rows = [bm(f"s{i}", "sprite", day, author=f"user{i}") for i in range(3_000)]
    rows += [bm(f"f{i}", "fanta", day, author=a) for i, a in enumerate(("x", "y", "z", "x", None))]
    got = compute_metrics(tmp_path_factory, "distinct", {"brand_mentions": rows, "mention_dates": [day.date()]})
    sprite = got[("sprite", "day", "2026-09-07", None, None)]
    assert sprite.mentions == 3_000 and sprite.unique_authors_estimated
    assert abs(sprite.unique_authors - 3_000) < 4 * 0.0081 * 3_000
    # The language breakdown of the same mentions (lang 'und') holds the same authors: the same sketch.
    assert got[("sprite", "day", "2026-09-07", None, "und")].unique_authors == sprite.unique_authors
    fanta = got[("fanta", "week", "2026-09-07", None, None)]
    assert (fanta.mentions, fanta.unique_authors, fanta.unique_authors_estimated) == (5, 3, False)
