"""A frozen clock: a stand-in for the `datetime` module of one module under test, whose `datetime.now()` is fixed.

A connector stamps what it fetches with the time it fetched it; a test that asserts on
the day of that stamp would depend on the day it runs (and fail, or be skipped, when a
run crosses midnight). `freeze(monkeypatch, module, at)` replaces `module.datetime` for
the test, so that `datetime.datetime.now(tz)` in that module returns `at`. Everything else
of the `datetime` module is the real one, and every constructor returns a plain
`datetime.datetime`, so that what the module builds is what it would build at `at`.
"""

from __future__ import annotations

import datetime
import types


def frozen_datetime_module(at: datetime.datetime) -> types.ModuleType:
    """A copy of the `datetime` module whose `datetime.now(tz)` returns `at` (timezone-aware) in `tz`.

    Args:
        at: The frozen instant, timezone-aware. `now()` without a zone returns it as naive UTC.
    """
    if at.tzinfo is None:
        raise ValueError("the frozen instant must be timezone-aware")

    class FrozenDateTime(datetime.datetime):
        def __new__(cls, *args, **kwargs):  # fromtimestamp, fromisoformat, ... build through here
            return datetime.datetime(*args, **kwargs)

        @classmethod
        def now(cls, tz=None):
            if tz is None:
                return at.astimezone(datetime.timezone.utc).replace(tzinfo=None)
            return at.astimezone(tz)

    module = types.ModuleType("datetime", "The datetime module with a frozen clock (tests/support/clock.py).")
    module.__dict__.update({k: v for k, v in vars(datetime).items() if not k.startswith("__")})
    module.datetime = FrozenDateTime
    return module


def freeze(monkeypatch, module: types.ModuleType, at: datetime.datetime) -> None:
    """Freezes `module`'s clock at `at` for the current test (`monkeypatch` undoes it)."""
    monkeypatch.setattr(module, "datetime", frozen_datetime_module(at))
