"""Registers `schemas.coders.RecordsCoder` for every record type the pipeline's PCollections carry.

Imported by `transforms/__init__.py`, so that building any of our transforms makes the
coder Beam's default: elements without a registered coder (our NamedTuples, datetimes,
dates, and tuples of them) are then encoded by field instead of pickled. The order of
`RECORD_TYPES` is the order of the tags; it travels inside the coder, so adding a type
anywhere in the list is safe.
"""

from __future__ import annotations

from apache_beam.ml.inference.base import PredictionResult

from schemas import coders
from schemas.records import (AccountSnapshot, Alert, BrandMention, BrandReply, DeadLetter, LangMetric, Mention,
                             Metric, TopicMetric)
from transforms.alerts import AlertMention, Copies, Evidence, Figures
from transforms.matching import Match
from transforms.metrics import Facts, MentionFacts

RECORD_TYPES = (Mention, BrandMention, DeadLetter, Metric, LangMetric, TopicMetric, Alert, AccountSnapshot,
                BrandReply, Match, Facts, MentionFacts, Figures, PredictionResult, AlertMention, Copies, Evidence)

RECORDS_CODER = coders.register(RECORD_TYPES)
