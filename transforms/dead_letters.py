"""Dead letters: rejected records with the step and the reason, never dropped silently."""

from __future__ import annotations

import datetime
import json
import typing

import apache_beam as beam

from schemas import DeadLetter


def dead_letter(step: str, reason: str, record: typing.Any, source: typing.Optional[str] = None) -> DeadLetter:
    """Builds a DeadLetter and counts it under the `dead_letters` namespace.

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
        reason=reason,
        record=record if isinstance(record, str) else render(record),
        source=source,
        time=datetime.datetime.now(datetime.timezone.utc),
    )


def render(record: typing.Any) -> str:
    """Renders a record as JSON for the dead-letter table."""
    if hasattr(record, "_asdict"):
        record = record._asdict()
    return json.dumps(record, ensure_ascii=False, default=str, sort_keys=True)
