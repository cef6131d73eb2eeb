"""The cached DoFn introspection and option views answer what Beam's own do, for the job and for the hard cases."""

from __future__ import annotations

import datetime
import gc
import pickle
import weakref

import apache_beam as beam
import pytest
from apache_beam.coders import VarIntCoder
from apache_beam.transforms import userstate
from apache_beam.options import pipeline_options
from apache_beam.options.pipeline_options import DebugOptions, PipelineOptions, StandardOptions
from apache_beam.transforms.core import CallableWrapperDoFn
from apache_beam.transforms.timeutil import TimeDomain

from pipelines import plan as planning
from pipelines.compose import build_social_listening
from pipelines.options import validate
from tests.support.fake_model import FakeSentimentHandler
from tests.support.inputs import write_brands, write_mixed_jsonl
from transforms.beam_build import memoize_dofn_specs, memoize_option_views

memoize_dofn_specs()
memoize_option_views()
ORIGINAL = userstate.get_dofn_specs.__wrapped__
CACHED = userstate.get_dofn_specs
ORIGINAL_VIEW_AS = PipelineOptions.view_as.__wrapped__

COUNT = userstate.BagStateSpec("count", VarIntCoder())
FLUSH = userstate.TimerSpec("flush", TimeDomain.WATERMARK)


class CountPerKey(beam.DoFn):
    """A stateful DoFn with a timer, as a user of the cache would write one."""

    def process(self, element, count=beam.DoFn.StateParam(COUNT), flush=beam.DoFn.TimerParam(FLUSH)):
        count.add(1)
        flush.set(0)
        yield element

    @userstate.on_timer(FLUSH)
    def on_flush(self, count=beam.DoFn.StateParam(COUNT)):
        yield sum(count.read())


class TwiceTheTimestamp(beam.DoFn):
    def process(self, element, first=beam.DoFn.TimestampParam, second=beam.DoFn.TimestampParam):
        yield element


def _every_dofn_of_the_job(tmp_path) -> list[beam.DoFn]:
    brands, posts = write_brands(tmp_path), write_mixed_jsonl(tmp_path)
    options = PipelineOptions(["--config", str(brands), "--input", str(posts), "--output_dir", str(tmp_path / "out")])
    config = validate(options)
    now = datetime.datetime(2026, 12, 7, tzinfo=datetime.timezone.utc)
    plan = planning.plan_run(config, now, None, "test-run")
    pipeline = beam.Pipeline(options=options)
    build_social_listening(pipeline, plan, plan.job(FakeSentimentHandler()))
    dofns = []

    class Collect(beam.pipeline.PipelineVisitor):
        def visit_transform(self, node):
            if isinstance(node.transform, beam.ParDo):
                dofns.append(node.transform.fn)

    pipeline.visit(Collect())
    return dofns


def test_every_dofn_of_the_job_gets_beams_own_answer_twice_over(tmp_path):
    dofns = _every_dofn_of_the_job(tmp_path)
    assert len(dofns) > 100
    for dofn in dofns:
        expected = ORIGINAL(dofn)
        assert CACHED(dofn) == expected, dofn
        assert CACHED(dofn) == expected, dofn  # the second answer comes from the cache


def test_state_and_timer_specs_are_found_and_callers_cannot_change_the_cache():
    specs = CACHED(CountPerKey())
    assert specs == ({COUNT}, {FLUSH}) == ORIGINAL(CountPerKey())
    specs[0].clear()
    assert CACHED(CountPerKey()) == ({COUNT}, {FLUSH})
    assert userstate.is_stateful_dofn(CountPerKey())
    userstate.validate_stateful_dofn(CountPerKey())


def test_a_repeated_parameter_raises_every_time_as_without_the_cache():
    for _ in range(2):
        with pytest.raises(ValueError, match="duplicate"):
            CACHED(TwiceTheTimestamp())


def test_wrapped_callables_get_beams_answer_for_each_callable():
    # beam.Map's DoFn, built directly (ParDo refuses the second callable on construction).
    clean = CallableWrapperDoFn(lambda x: x)
    twice = CallableWrapperDoFn(lambda x, a=beam.DoFn.TimestampParam, b=beam.DoFn.TimestampParam: x)
    assert type(clean) is type(twice)
    for dofn in (clean, twice, clean, twice):
        assert CACHED(dofn) == ORIGINAL(dofn)


def test_a_bound_method_stored_on_the_instance_is_read_as_beam_reads_it():
    class Plain(beam.DoFn):
        def process(self, element):
            yield element

    assert CACHED(Plain()) == (set(), set())
    odd = Plain()
    odd.extra = CountPerKey().process  # a bound method with state parameters, on this instance only
    assert CACHED(odd) == ORIGINAL(odd) == ({COUNT}, {FLUSH})
    assert CACHED(Plain()) == (set(), set())


def test_memoizing_twice_wraps_once():
    memoize_dofn_specs()
    assert userstate.get_dofn_specs is CACHED


# ------------------------------------------------------------------ option views


def _every_options_class() -> list[type]:
    found, todo = [], [PipelineOptions]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def _values(view) -> dict:
    return {name: getattr(view, name) for name in view._visible_option_list()}


JOB_FLAGS = ["--config", "brands.yaml", "--input", "data/*.jsonl", "--output_dir", "out", "--runner", "DirectRunner",
             "--direct_num_workers", "2", "--experiments", "a", "--experiments", "b"]


def test_every_options_class_views_the_job_flags_as_beam_does():
    classes = _every_options_class()
    assert len(classes) > 20 and StandardOptions in classes
    cached, fresh = PipelineOptions(JOB_FLAGS), PipelineOptions(JOB_FLAGS)
    for cls in classes:
        first, second = cached.view_as(cls), cached.view_as(cls)
        assert second is first, cls  # the second view comes from the cache
        assert type(first) is cls and _values(first) == _values(ORIGINAL_VIEW_AS(fresh, cls)), cls
    assert cached.get_all_options() == fresh.get_all_options()
    assert cached.view_as(DebugOptions).experiments == ["a", "b"]


def test_a_write_through_one_view_is_seen_through_every_view_and_by_no_other_options():
    options, other = PipelineOptions(["--runner", "DirectRunner"]), PipelineOptions(["--runner", "DirectRunner"])
    options.view_as(StandardOptions).runner = "DaskRunner"
    options.view_as(DebugOptions).add_experiment("only_here")
    assert options.view_as(StandardOptions).runner == "DaskRunner"
    assert ORIGINAL_VIEW_AS(options, StandardOptions).runner == "DaskRunner"
    assert options.get_all_options()["runner"] == "DaskRunner"
    assert options.view_as(DebugOptions).lookup_experiment("only_here")
    assert other.view_as(StandardOptions).runner == "DirectRunner"
    assert not other.view_as(DebugOptions).lookup_experiment("only_here")


def test_views_are_per_options_object_and_go_with_it():
    a, b = PipelineOptions(["--runner", "A"]), PipelineOptions(["--runner", "B"])
    assert (a.view_as(StandardOptions).runner, b.view_as(StandardOptions).runner) == ("A", "B")
    assert a.view_as(StandardOptions) is not b.view_as(StandardOptions)
    gone = weakref.ref(a)
    del a
    gc.collect()
    assert gone() is None  # the cache holds options weakly


def test_options_pickle_as_without_the_cache():
    options = PipelineOptions(["--runner", "DirectRunner", "--experiments", "x"])
    options.view_as(StandardOptions), options.view_as(DebugOptions)
    copy = pickle.loads(pickle.dumps(options))
    assert set(vars(options)) == set(vars(PipelineOptions([]))) == set(vars(copy))
    assert copy.get_all_options() == options.get_all_options()
    assert copy.view_as(DebugOptions).experiments == ["x"]


def test_memoizing_views_twice_wraps_once():
    view_as = PipelineOptions.view_as
    memoize_option_views()
    assert PipelineOptions.view_as is view_as is pipeline_options.PipelineOptions.view_as
