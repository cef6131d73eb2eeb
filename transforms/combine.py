"""Per-key aggregation of exploded elements, combined inside each bundle first.

The metrics count every mention under many keys at once (4 periods x brand, platform
and language cuts: 12 keys per mention). As `FlatMap(explode) | CombinePerKey(fn)`
each of those keys becomes an element that Beam's runner hands from step to step, so
the runner's per-element cost is paid 12 times per mention. `CombineExploded` keeps
one element per mention: a DoFn adds the exploded values straight into a table of
accumulators, one per key, and emits the table at the end of the bundle (or when it
passes `max_keys`, so that memory stays bounded); `CombinePerKey` then merges the
partial accumulators of all bundles and workers. The result is the same as
`FlatMap(explode) | CombinePerKey(fn)`.

Where many keys are coarser cuts of one fine key (a week is 7 days), aggregate the
fine keys first and merge their accumulators into the coarse ones: `extract=False`
outputs the accumulators, and `CombinePerKey(MergeAccumulatorsFn(fn))` merges them.
"""

from __future__ import annotations

import typing

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

ExplodeFn = typing.Callable[[typing.Any], typing.Iterable[tuple[typing.Any, typing.Any]]]


class _AccumulateFn(beam.DoFn):
    """element -> explode -> add_input into this bundle's accumulators; emits (key, accumulator)."""

    def __init__(self, explode: ExplodeFn, combine_fn: beam.CombineFn, max_keys: int):
        self._explode = explode
        self._combine_fn = combine_fn
        self._max_keys = max_keys
        self._table: dict[typing.Any, typing.Any] = {}

    def setup(self):
        self._combine_fn.setup()

    def start_bundle(self):
        self._table = {}

    def process(self, element):
        table = self._table
        fn = self._combine_fn
        for key, value in self._explode(element):
            acc = table.get(key)
            if acc is None:
                if len(table) >= self._max_keys:
                    yield from self._table.items()
                    self._table = table = {}
                acc = fn.create_accumulator()
            table[key] = fn.add_input(acc, value)

    def finish_bundle(self):
        for item in self._table.items():
            yield GlobalWindows.windowed_value(item)
        self._table = {}

    def teardown(self):
        self._combine_fn.teardown()


class MergeAccumulatorsFn(beam.CombineFn):
    """`combine_fn` whose inputs are its own accumulators.

    Args:
        combine_fn: The CombineFn whose accumulators come in.
        extract: Output `combine_fn`'s extracted result (True) or the merged accumulator
            itself (False: for a further level of merging, e.g. days into months).
    """

    def __init__(self, combine_fn: beam.CombineFn, extract: bool = True):
        self._fn = combine_fn
        self._extract = extract

    def setup(self, *args, **kwargs):
        self._fn.setup(*args, **kwargs)

    def create_accumulator(self):
        return self._fn.create_accumulator()

    def add_input(self, acc, partial):
        return self._fn.merge_accumulators([acc, partial])

    def merge_accumulators(self, accs):
        return self._fn.merge_accumulators(accs)

    def compact(self, acc):
        return self._fn.compact(acc)

    def extract_output(self, acc):
        return self._fn.extract_output(acc) if self._extract else acc

    def teardown(self, *args, **kwargs):
        self._fn.teardown(*args, **kwargs)


class CombineExploded(beam.PTransform):
    """elements -> (key, combine_fn's output) per key over every (key, value) that `explode` yields.

    The input is a PCollection or a tuple of them (combined together, as if flattened).

    Args:
        explode: element -> iterable of (key, value); keys must be hashable and have a
            deterministic encoding (strings, numbers, tuples of them, None).
        combine_fn: The CombineFn over the values of a key.
        max_keys: Accumulators one bundle holds before it emits them early.
        extract: False: output each key's merged accumulator instead of the extracted
            result (to merge further with `MergeAccumulatorsFn`).
    """

    def __init__(self, explode: ExplodeFn, combine_fn: beam.CombineFn, max_keys: int = 20000,
                 extract: bool = True):
        super().__init__()
        self._explode = explode
        self._combine_fn = combine_fn
        self._max_keys = max_keys
        self._extract = extract

    def expand(self, pcolls):
        # Several inputs are accumulated each on its own and only the partial accumulators are
        # flattened: flattening the inputs themselves could make a runner copy every element.
        if isinstance(pcolls, beam.PCollection):
            pcolls = (pcolls,)
        accumulate = _AccumulateFn(self._explode, self._combine_fn, self._max_keys)
        partials = [pcoll | f"AccumulateInBundle{i or ''}" >> beam.ParDo(accumulate) for i, pcoll in enumerate(pcolls)]
        if len(partials) > 1:
            partials = [tuple(partials) | "Partials" >> beam.Flatten()]
        return partials[0] | "MergeAccumulators" >> beam.CombinePerKey(
            MergeAccumulatorsFn(self._combine_fn, self._extract))
