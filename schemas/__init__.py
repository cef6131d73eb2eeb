"""Records the pipeline carries and writes, each with its pyarrow schema, and the tables (`schemas.tables`).

This package imports nothing else of the project's.
"""

from schemas.records import (
    BRAND_MENTION_FIELDS,
    BRAND_MENTION_SCHEMA,
    DEAD_LETTER_FIELDS,
    DEAD_LETTER_SCHEMA,
    MATCH_KINDS,
    MENTION_FIELDS,
    MENTION_SCHEMA,
    METRIC_FIELDS,
    METRIC_SCHEMA,
    PERIODS,
    SENTIMENTS,
    BrandMention,
    DeadLetter,
    Mention,
    Metric,
)
from schemas.tables import TABLES, TableSpec

__all__ = [
    "BRAND_MENTION_FIELDS",
    "BRAND_MENTION_SCHEMA",
    "DEAD_LETTER_FIELDS",
    "DEAD_LETTER_SCHEMA",
    "MATCH_KINDS",
    "MENTION_FIELDS",
    "MENTION_SCHEMA",
    "METRIC_FIELDS",
    "METRIC_SCHEMA",
    "PERIODS",
    "SENTIMENTS",
    "TABLES",
    "BrandMention",
    "DeadLetter",
    "Mention",
    "Metric",
    "TableSpec",
]
