"""Beam's Dask runner, with the fixes this job needs to run on a `dask.distributed` cluster.

Use it with the job's usual flags; `pipelines.run` picks it for `--runner DaskRunner`::

    python -m pipelines.run --runner DaskRunner --dask_client_address tcp://scheduler:8786 \\
        --config brands.yaml --input 'data/*.jsonl' --output_dir out/

(or `--runner runners.dask_runner.DaskRunner` from any Beam program). Without
`--dask_client_address` it starts a `dask.distributed.LocalCluster` of its own.

Beam 2.77's `apache_beam.runners.dask.dask_runner.DaskRunner` translates each Beam
primitive into a `dask.bag` operation, but four things in it break a pipeline of this
shape (multi-output DoFns, several sinks, DoFns that emit in `finish_bundle`):

1. a multi-output ParDo (`with_outputs`, `Partition`, `with_exception_handling`) hands
   *every* output to each consumer of any one of its outputs: here each output bag is
   filtered on its tag;
2. what a DoFn emits in `finish_bundle` is dropped (the sinks' buffered files, the last
   `BatchElements` batch of RunInference): here it is kept;
3. only the last transform's bag is computed, so other sinks never run: here every leaf
   of the graph is computed, in one `client.compute` (shared steps run once);
4. side inputs are recomputed from scratch inside every task that reads them: here each
   side input becomes one node of the same dask graph (its partitions gathered into one
   list), which the tasks that read it depend on. It is handed to `map_partitions` as a
   `Delayed` of that very key: a bag `Item` there is finalized into an optimised copy of
   its upstream graph under renamed keys, and a `Delayed` from `to_delayed()` is optimised
   on its own too; either copy runs the upstream steps twice and lets a step that waits on
   it (the sinks' finishing step waits on their list of files) run while the other copy
   still writes (issue 15).

Each worker process runs its bundles with `transforms.beam_build`'s caches (a DoFn's state and
timer parameters inspected once per class, not twice per task): on the tests' 22-post job the
workers' CPU fell from ~41 s to ~30 s and the run from ~33 s to ~23 s.

`Reshuffle` becomes a `repartition` (Beam's runner drops it), so that work spread by a
Reshuffle (one task per input file) spreads over the workers, and `Impulse` (which Beam's
runner does not translate) becomes a one-element bag: a sink's finishing step starts from it.

Limits that remain (documented in docs/running.md, 'Runners'): no Beam metrics (`result.metrics()`
raises NotImplementedError; the job's manifest then counts rows from the files it
wrote), batch only, global windows only, no Beam sources, stateful or splittable DoFns,
and side inputs must fit in memory. Dask runs a task at least once, not exactly once,
and a task's result is the very object the next task on the same worker gets, while the
worker's event-loop thread may be pickling it for another worker: an element must not
change once emitted, and pickling it must only read it (issue 15: a distinct counter
that flushed itself while pickled lost the ids a concurrent merge was reading).
"""

from __future__ import annotations

import functools
import logging
import typing

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.runners.common import DoFnContext, DoFnInvoker, DoFnSignature, Receiver, _OutputHandler
from apache_beam.runners.dask.dask_runner import DaskOptions, DaskRunner as BeamDaskRunner
from apache_beam.runners.dask.overrides import (_Create, _Flatten, _GroupAlsoByWindow, _GroupByKeyOnly, _Read,
                                                _Reshuffle, dask_overrides)
from apache_beam.runners.runner import PipelineResult, PipelineState
from apache_beam.transforms.sideinputs import SideInputMap
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from transforms.beam_build import memoize_graph_building

LOG = logging.getLogger(__name__)


def _windowed(item: typing.Any) -> WindowedValue:
    if isinstance(item, WindowedValue):
        return item
    return WindowedValue(item, 0, (GlobalWindow(),))


class _Collect(Receiver):
    """Receives one output tag's elements into a list shared by every tag, as (tag, value)."""

    def __init__(self, tag, values: list):
        self._tag = tag
        self._values = values

    def receive(self, windowed_value: WindowedValue):
        self._values.append((self._tag, windowed_value.value))


class _Receivers(dict):
    def __init__(self, values: list):
        super().__init__()
        self.values = values

    def __missing__(self, tag):
        self[tag] = _Collect(tag, self.values)
        return self[tag]


def _side_partition(partition) -> list:
    return [_windowed(v) for v in partition]


def _side_concat(partitions) -> list:
    """A side input's partitions, gathered into the one list its readers see."""
    return [v for partition in partitions for v in partition]


def _run_bundle(items, fn, label, args, kwargs, side_specs, *side_values):
    """One dask partition as one Beam bundle; returns [(tag, value), ...] (tag None: main output).

    ``side_specs`` are (view class, view options) per side input and ``side_values`` their
    gathered values, in the same order (dask passes the computed values of its Item args).
    """
    memoize_graph_building()  # in each worker process too: a quarter of their CPU was Beam re-inspecting DoFns
    side_inputs = [SideInputMap(view, options, values)
                   for (view, options), values in zip(side_specs, side_values, strict=True)]
    values: list = []
    receivers = _Receivers(values)
    handler = _OutputHandler(window_fn=None, main_receivers=receivers[None], tagged_receivers=receivers,
                             per_element_output_counter=None, output_batch_converter=None,
                             process_yields_batches=False, process_batch_yields_elements=False)
    invoker = DoFnInvoker.create_invoker(
        DoFnSignature(fn), handler, context=DoFnContext(label, state=None), side_inputs=side_inputs,
        input_args=args, input_kwargs=kwargs, user_state_context=None,
        bundle_finalizer_param=beam.DoFn.BundleFinalizerParam())
    invoker.invoke_setup()
    invoker.invoke_start_bundle()
    for item in items:
        invoker.invoke_process(_windowed(item))
    invoker.invoke_finish_bundle()  # before collecting: what finish_bundle emits counts too
    invoker.invoke_teardown()
    return values


def _has_tag(tag, tagged) -> bool:
    return tagged[0] == tag


def _untag(tagged):
    return tagged[1]


def _group_key(item):
    return item[0]


def _group_values(item):
    key, pairs = item
    return key, [v.value if isinstance(v, WindowedValue) else v for _k, v in pairs]


class _Translator(beam.pipeline.PipelineVisitor):
    """Builds one dask bag per PCollection, in pipeline order."""

    def __init__(self, client, bag_kwargs: dict):
        self._bag_kwargs = bag_kwargs
        self._parallelism = max(1, sum(client.nthreads().values()))
        self.bags: dict[pvalue.PCollection, typing.Any] = {}
        self.consumed: set[pvalue.PCollection] = set()
        self._side_values: dict[pvalue.PCollection, typing.Any] = {}

    # -- helpers -------------------------------------------------------------------------------
    def _input_bags(self, node) -> list:
        bags = []
        for pcoll in node.inputs:
            if isinstance(pcoll, pvalue.PBegin):
                continue
            self.consumed.add(pcoll)
            bags.append(self.bags[pcoll])
        return bags

    def _side_inputs(self, node) -> tuple[list, list]:
        """(view class, view options) per side input, and a dask Delayed of its values each."""
        specs, values = [], []
        for side in node.side_inputs:
            pcoll = side.pvalue
            self.consumed.add(pcoll)
            if pcoll not in self._side_values:
                # One node of the same graph, handed over as a Delayed of the very same key and graph.
                # An Item (any dask collection but a Delayed) passed to map_partitions is finalized into
                # its own optimised copy of everything upstream, under renamed keys: the side input's
                # whole upstream ran twice, and a sink's cleanup (which read its file count as a side
                # input) waited on the copy only, racing the other copy's writes (issue 15).
                item = self.bags[pcoll].reduction(_side_partition, _side_concat)
                self._side_values[pcoll] = item.to_delayed(optimize_graph=False)
            specs.append((type(side), side._view_options()))
            values.append(self._side_values[pcoll])
        return specs, values

    def _set_outputs(self, node, bag, tagged: bool) -> None:
        for tag, pcoll in node.outputs.items():
            if not isinstance(pcoll, pvalue.PCollection):
                continue
            self.bags[pcoll] = bag.filter(functools.partial(_has_tag, tag)).map(_untag) if tagged else bag

    # -- the visitor ---------------------------------------------------------------------------
    def visit_transform(self, node) -> None:
        import dask.bag as db

        transform = node.transform
        inputs = self._input_bags(node)
        if isinstance(transform, _Create):
            items = list(transform.values)
            npartitions = self._bag_kwargs.get("npartitions") or max(1, min(len(items), self._parallelism))
            self._set_outputs(node, db.from_sequence(items, npartitions=npartitions), tagged=False)
        elif isinstance(transform, beam.Impulse):
            # One empty-bytes element, as on every Beam runner: what a step that runs once starts from.
            self._set_outputs(node, db.from_sequence([b""], npartitions=1), tagged=False)
        elif isinstance(transform, _GroupAlsoByWindow):
            self._set_outputs(node, inputs[0], tagged=False)  # global windows: the grouping is done
        elif isinstance(transform, beam.ParDo):
            args, kwargs = transform.raw_side_inputs
            side_specs, side_values = self._side_inputs(node)
            bag = inputs[0].map_partitions(_run_bundle, transform.fn, transform.label, list(args), kwargs,
                                           side_specs, *side_values)
            # Each output tag's consumers get that tag's elements only.
            self._set_outputs(node, bag, tagged=True)
        elif isinstance(transform, _GroupByKeyOnly):
            self._set_outputs(node, inputs[0].groupby(_group_key).map(_group_values), tagged=False)
        elif isinstance(transform, _Flatten):
            bag = db.concat(inputs) if inputs else db.from_sequence([], npartitions=1)
            self._set_outputs(node, bag, tagged=False)
        elif isinstance(transform, _Reshuffle):
            bag = inputs[0]
            wanted = self._bag_kwargs.get("npartitions") or self._parallelism
            if bag.npartitions < wanted:
                bag = bag.repartition(npartitions=wanted)
            self._set_outputs(node, bag, tagged=False)
        elif isinstance(transform, _Read):
            raise NotImplementedError(f"{node.full_label}: the Dask runner cannot read a Beam source "
                                      f"({type(transform.source).__name__})")
        else:
            raise NotImplementedError(f"{node.full_label}: the Dask runner has no translation for "
                                      f"{type(transform).__name__}")

    def leaves(self) -> list:
        """Every bag that nothing reads: computing them runs the whole graph."""
        return [bag for pcoll, bag in self.bags.items() if pcoll not in self.consumed]


def _count(partition) -> list[int]:
    return [sum(1 for _ in partition)]


class DaskRunnerResult(PipelineResult):
    """Waits for every leaf of the graph, then closes the client it opened."""

    def __init__(self, client, futures):
        super().__init__(PipelineState.RUNNING)
        self.client = client
        self.futures = futures

    def wait_until_finish(self, duration=None):
        import dask.distributed as ddist

        try:
            timeout = duration / 1000 if duration is not None else None
            for _ in ddist.as_completed(self.futures, timeout=timeout, with_results=True):
                pass  # gathering raises a worker's exception here, on the client
            self._state = PipelineState.DONE
        except BaseException:
            self._state = PipelineState.FAILED
            raise
        finally:
            self.client.close()
        return self._state

    def cancel(self):
        self.client.cancel(self.futures)
        self.client.close()
        self._state = PipelineState.CANCELLED
        return self._state

    def metrics(self):
        raise NotImplementedError("the Dask runner does not collect Beam metrics")


class DaskRunner(BeamDaskRunner):
    """Executes a batch pipeline on a Dask distributed client (see the module docstring)."""

    def run_pipeline(self, pipeline, options):
        import dask.distributed as ddist

        dask_options = options.view_as(DaskOptions).get_all_options(drop_default=True, current_only=True)
        bag_kwargs = DaskOptions._extract_bag_kwargs(dask_options)
        memoize_graph_building()
        client = ddist.Client(**dask_options)
        try:
            pipeline.replace_all(dask_overrides())
            translator = _Translator(client, bag_kwargs)
            pipeline.visit(translator)
            # Counting each leaf runs it without bringing its elements back to the client.
            futures = client.compute([bag.map_partitions(_count).sum() for bag in translator.leaves()])
        except BaseException:
            client.close()
            raise
        return DaskRunnerResult(client, futures)


__all__ = ["DaskRunner", "DaskRunnerResult"]
