"""Reading mentions from files: the file connector as a Beam transform.

`ReadMentionsFromFiles` matches the input patterns (local paths, globs or any
filesystem Beam knows, e.g. gs://), reads every file as a stream (no file is held
in memory) and emits valid `Mention`s on the main output and `DeadLetter`s for
records that cannot be parsed or validated, so that

    records read = mentions + dead letters.
"""

from __future__ import annotations

import datetime
import typing

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes

from connectors.files import (DEFAULT_MAX_TEXT_CHARS, InvalidRecord, decompresses_itself, detect_format,
                              iter_file_records, open_decompressed, parse_mention)
from transforms.dead_letters import dead_letter
from transforms.progress import POSTS_READ, PROGRESS

DEAD = "dead_letters"


class ParseFileFn(beam.DoFn):
    """Streams one matched file into Mentions (main) and DeadLetters (DEAD).

    Faults stay at their level: a record that cannot be parsed or validated is a dead
    letter; a file that cannot be opened, or whose stream fails part way (a corrupt
    gzip member, a bad Parquet row group), keeps what was read before the fault and
    adds one dead letter naming the file and the position. No exception leaves the DoFn
    for one file, so the other files go on.
    """

    def __init__(self, max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
                 now: datetime.datetime | None = None):
        self._max_text_chars = max_text_chars
        self._now = now
        self._records = beam.metrics.Metrics.counter("read", "records")
        self._valid = beam.metrics.Metrics.counter("read", "mentions")

    def process(self, readable: fileio.ReadableFile):
        path = readable.metadata.path
        try:
            fmt = detect_format(path)
        except ValueError as exc:
            self._records.inc()
            yield beam.pvalue.TaggedOutput(DEAD, dead_letter("read", str(exc), "", path))
            return
        # Parquet needs random access, so it is opened without decompression; .gz and .bz2 are
        # decompressed by `open_decompressed`, which reports a truncated or corrupt stream.
        compression = (CompressionTypes.UNCOMPRESSED if fmt == "parquet" or decompresses_itself(path)
                       else CompressionTypes.AUTO)
        now = self._now or datetime.datetime.now(datetime.timezone.utc)
        read = 0
        try:
            with readable.open(compression_type=compression) as fh:
                for raw in iter_file_records(path, open_decompressed(path, fh), fmt):
                    read += 1
                    self._records.inc()
                    PROGRESS.add(POSTS_READ)
                    if raw.data is None:
                        yield beam.pvalue.TaggedOutput(DEAD, dead_letter("parse", raw.error, raw.raw, raw.source))
                        continue
                    try:
                        mention = parse_mention(raw.data, connector="file", query=path,
                                                max_text_chars=self._max_text_chars, now=now)
                    except InvalidRecord as exc:
                        yield beam.pvalue.TaggedOutput(
                            DEAD, dead_letter("validate", str(exc), raw.raw or raw.data, raw.source))
                        continue
                    self._valid.inc()
                    yield mention
        except Exception as exc:  # opening failed, or a reader fault no rule foresaw: this file ends here
            self._records.inc()
            yield beam.pvalue.TaggedOutput(DEAD, dead_letter(
                "read", f"file not read after {read} record(s): {type(exc).__name__}: {exc}", "", path))


class ReadMentionsFromFiles(beam.PTransform):
    """Input patterns -> {'mentions', 'dead_letters'}.

    Args:
        patterns: File paths or globs (JSON Lines, CSV, Parquet; optionally compressed).
        max_text_chars: Texts longer than this go to dead letters.
    """

    def __init__(self, patterns: typing.Sequence[str], max_text_chars: int = DEFAULT_MAX_TEXT_CHARS):
        super().__init__()
        self._patterns = list(patterns)
        self._max_text_chars = max_text_chars

    def expand(self, pbegin):
        parsed = (
            pbegin
            | "Patterns" >> beam.Create(self._patterns)
            # A pattern that matches nothing is a misconfiguration; the pipeline checks it at start.
            | "MatchFiles" >> fileio.MatchAll(fileio.EmptyMatchTreatment.ALLOW)
            # Reshuffle so that files, not patterns, spread over workers.
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadMatches" >> fileio.ReadMatches()
            | "Parse" >> beam.ParDo(ParseFileFn(self._max_text_chars)).with_outputs(DEAD, main="mentions")
        )
        return {"mentions": parsed.mentions, "dead_letters": parsed[DEAD]}
