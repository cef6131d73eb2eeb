"""The job's command line with the lexicon double (`tests.support.fake_model`), for tests that run it in a subprocess.

    python -m tests.support.fake_job --config brands.yaml --input 'in/*.jsonl' --output_dir out/

Exits like `python -m pipelines.run` (2 with the message for a misconfiguration or a held lease);
the crash-injection tests run it with SOCIAL_LISTENING_CRASH_AT set and see it killed.
"""

from __future__ import annotations

import sys
import typing

from pipelines import run
from tests.support.fake_model import FakeSentimentHandler


def main(argv: typing.Sequence[str] | None = None) -> int:
    """Runs the job with the fake model; 2 and the message on a ConfigError."""
    return run.main(argv, model_handler=FakeSentimentHandler())


if __name__ == "__main__":
    sys.exit(main())
