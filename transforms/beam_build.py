"""Two answers Beam recomputes while it builds a job, computed once: about half of a small run's CPU.

**DoFn specs.** While a pipeline is built, translated and run on the DirectRunner, Beam asks
`apache_beam.transforms.userstate.get_dofn_specs` about every DoFn about ten times
(ParDo's constructor, the DirectRunner's override visitors, the translation to the
runner API, each bundle processor's DoFnSignature). Each call runs `inspect.signature`
over every method the DoFn has (~60 with the base class's), so a job of ~230 steps
spends ~2 s of CPU recomputing the same answer: the state and timer specs a DoFn
declares as default values of its methods' parameters.

:func:`memoize_dofn_specs` wraps the function with a cache keyed by what the answer
depends on:

- a DoFn whose class defines no ``_inspect_*`` hook: its class (the answer comes from
  the class's methods alone);
- a DoFn with such a hook (`beam.Map`'s wrapper reads the wrapped callable's
  signature): the instance itself, held weakly;
- a DoFn with a bound method stored on the instance: not cached (Beam reads those too).

Errors are not cached: a DoFn whose methods repeat a parameter raises every time,
as without the cache. The wrapper returns fresh sets, so a caller that changes them
changes nothing shared.

**Option views.** Beam calls `PipelineOptions.view_as(cls)` ~1,300 times for one run of
the job (type checks, runner and translation code), and each call builds a new argparse
parser of every option of `cls` and parses the flags again (~1 ms each). A view holds no
state of its own: its attributes live in the options' `_all_options` dict, which every
view shares, and its own namespace only lists the names it shows. :func:`memoize_option_views`
returns the view made by the first `view_as(cls)` on the same options object again, from a
cache held weakly per options object (nothing is added to the object, so pickling it is
unchanged). What a caller sees is the same: the same values, writes through any view seen
by all; only `a.view_as(X) is a.view_as(X)` becomes true.

:func:`memoize_graph_building` applies both; `pipelines.run` calls it before it builds a job,
and the tests' conftest at import, so that every test builds its pipelines the way the job does.
Both are idempotent.
"""

from __future__ import annotations

import functools
import threading
import types
import typing
import weakref

from apache_beam.options import pipeline_options
from apache_beam.transforms import userstate

_Specs = tuple[frozenset, frozenset]
_LOCK = threading.Lock()


def _has_inspect_hook(cls: type) -> bool:
    return any(name.startswith("_inspect_") for name in dir(cls))


def _cached(original: typing.Callable[[typing.Any], tuple[set, set]]) -> typing.Callable[[typing.Any], tuple[set, set]]:
    by_class: dict[type, _Specs] = {}
    by_instance: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
    hooked: dict[type, bool] = {}

    @functools.wraps(original)
    def get_dofn_specs(dofn: typing.Any) -> tuple[set, set]:
        if any(isinstance(value, types.MethodType) for value in getattr(dofn, "__dict__", {}).values()):
            return original(dofn)
        cls = type(dofn)
        with _LOCK:
            per_instance = hooked.get(cls)
            if per_instance is None:
                per_instance = hooked[cls] = _has_inspect_hook(cls)
            try:
                specs = by_instance.get(dofn) if per_instance else by_class.get(cls)
            except TypeError:  # an instance that cannot be weakly referenced
                return original(dofn)
        if specs is None:
            state, timers = original(dofn)
            specs = (frozenset(state), frozenset(timers))
            with _LOCK:
                if per_instance:
                    by_instance[dofn] = specs
                else:
                    by_class[cls] = specs
        return set(specs[0]), set(specs[1])

    get_dofn_specs.__wrapped_by_social_listening__ = True  # type: ignore[attr-defined]
    return get_dofn_specs


def memoize_dofn_specs() -> None:
    """Replaces `userstate.get_dofn_specs` with its cached form; calling it again changes nothing."""
    with _LOCK:
        if getattr(userstate.get_dofn_specs, "__wrapped_by_social_listening__", False):
            return
        userstate.get_dofn_specs = _cached(userstate.get_dofn_specs)


def _cached_view_as(original: typing.Callable) -> typing.Callable:
    views: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    @functools.wraps(original)
    def view_as(self, cls):
        try:
            per_cls = views.get(self)
            if per_cls is None:
                per_cls = views.setdefault(self, {})
        except TypeError:  # options that cannot be weakly referenced or hashed: as Beam does
            return original(self, cls)
        view = per_cls.get(cls)
        if view is None:
            view = per_cls.setdefault(cls, original(self, cls))
        return view

    view_as.__wrapped_by_social_listening__ = True  # type: ignore[attr-defined]
    return view_as


def memoize_option_views() -> None:
    """Replaces `PipelineOptions.view_as` with its cached form; calling it again changes nothing."""
    with _LOCK:
        current = pipeline_options.PipelineOptions.view_as
        if getattr(current, "__wrapped_by_social_listening__", False):
            return
        pipeline_options.PipelineOptions.view_as = _cached_view_as(current)


def memoize_graph_building() -> None:
    """Both caches of this module (see its docstring)."""
    memoize_dofn_specs()
    memoize_option_views()
