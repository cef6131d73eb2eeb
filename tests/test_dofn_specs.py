"""The cached DoFn introspection answers what Beam's own does, for every DoFn the job builds and for the hard cases."""

from __future__ import annotations

import datetime

import apache_beam as beam
import pytest
from apache_beam.coders import VarIntCoder
from apache_beam.transforms import userstate
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.core import CallableWrapperDoFn
from apache_beam.transforms.timeutil import TimeDomain

from pipelines import plan as planning
from pipelines.compose import build_social_listening
from pipelines.options import validate
from tests.support.fake_model import FakeSentimentHandler
from tests.support.inputs import write_brands, write_mixed_jsonl
from transforms.dofn_specs import memoize_dofn_specs

memoize_dofn_specs()
ORIGINAL = userstate.get_dofn_specs.__wrapped__
CACHED = userstate.get_dofn_specs

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
