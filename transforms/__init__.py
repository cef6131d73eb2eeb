"""Beam building blocks: reading, dedupe, brand matching, sentiment, metrics and Parquet sinks."""

from transforms import coders as _coders  # noqa: E402,F401  (registers the records coder with Beam)
