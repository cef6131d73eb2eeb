"""Beam building blocks: reading, dedupe, brand matching, sentiment, metrics and Parquet sinks."""
