"""Kept for imports written before `tests/support/`: the lexicon double lives in `tests.support.fake_model`."""

from tests.support.fake_model import OTHER_SENSE, FakeSentimentHandler

__all__ = ["FakeSentimentHandler", "OTHER_SENSE"]
