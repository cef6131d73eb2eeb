"""Dead letters: rejected records with the step and the reason, never dropped silently."""

from __future__ import annotations

import datetime
import typing

import apache_beam as beam

from connectors.files import carried, render_record
from schemas import DeadLetter


def dead_letter(step: str, reason: str, record: typing.Any, source: str | None = None) -> DeadLetter:
    """Builds a DeadLetter and counts it under the `dead_letters` namespace.

    Every string is made valid Unicode (a lone surrogate written as its escape), so that
    the dead letter of a record with one can itself be carried and written.

    Args:
        step: The pipeline step that rejected the record.
        reason: Why, in words a user can act on.
        record: The record as received: a string is kept verbatim, anything else is
            rendered as JSON (NamedTuples as objects).
        source: Where the record came from (file and line, query and cursor).

    Returns:
        The DeadLetter row.
    """
    beam.metrics.Metrics.counter("dead_letters", step).inc()
    return DeadLetter(
        step=step,
        reason=carried(str(reason)),
        record=carried(record) if isinstance(record, str) else render(record),
        source=None if source is None else carried(str(source)),
        time=datetime.datetime.now(datetime.timezone.utc),
    )


def render(record: typing.Any) -> str:
    """Renders a record as JSON for the dead-letter table (never raises; valid Unicode)."""
    return render_record(record)
