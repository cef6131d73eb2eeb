"""Kept for imports written before `tests/support/`: the lexicon double lives in `tests.support.fake_model`."""

from tests.support.fake_model import FakeSentimentHandler

__all__ = ["FakeSentimentHandler"]
