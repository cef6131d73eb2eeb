"""Shared fixtures: a small brand config, realistic input files with every kind of bad record, and runs of the job
that several test modules read (each run once per session and only read by the tests).

The data itself lives in `tests/support/inputs.py`; the fixtures write it into temporary directories.
Under pytest-xdist (`make test` runs two workers) a shared run is made once for all workers: the first
worker to ask makes it under a file lock, in the temporary directory the workers share, and the others read it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pathlib
import shutil
import typing

import pytest

from pipelines.run import run
from tests.support.fake_model import FakeSentimentHandler
from tests.support.inputs import (METRICS_BRANDS_YAML, metrics_posts, write_brands, write_jsonl, write_mixed_jsonl,
                                  write_six_weeks)
from transforms.beam_build import memoize_graph_building

# Every pipeline a test builds is built the way the job builds its own (`pipelines.run` does the same).
memoize_graph_building()


@pytest.fixture
def brands_file(tmp_path: pathlib.Path) -> pathlib.Path:
    """The three-brand config of `tests.support.inputs.BRANDS_YAML`."""
    return write_brands(tmp_path)


@pytest.fixture
def no_work(monkeypatch):
    """Replaces the first steps that do work (loading the model, building the job) with failures, for tests of a
    misconfiguration that must stop the run before them."""
    from pipelines import plan
    from pipelines import run as job

    def started(*args, **kwargs):
        raise AssertionError("the run started working before rejecting its configuration")

    monkeypatch.setattr(plan, "model_handler", started)
    monkeypatch.setattr(job, "build_social_listening", started)


@pytest.fixture
def mixed_jsonl(tmp_path: pathlib.Path) -> pathlib.Path:
    """Good records, one exact duplicate, a blank line and every kind of bad record."""
    return write_mixed_jsonl(tmp_path)


@contextlib.contextmanager
def _locked(path: pathlib.Path) -> typing.Iterator[None]:
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def made_once(tmp_path_factory, name: str, make: typing.Callable[[pathlib.Path], None]) -> pathlib.Path:
    """`<shared tmp>/<name>`, filled by `make(folder)` once per test session, whatever the number of xdist workers."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's directory, above each worker's own
    folder, done = root / name, root / f"{name}.done"
    with _locked(root / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed attempt left
            folder.mkdir()
            make(folder)
            done.touch()
    return folder


def _mixed_run(root: pathlib.Path) -> None:
    brands, inputs = write_brands(root), write_mixed_jsonl(root)
    run(["--config", str(brands), "--input", str(inputs), "--output_dir", str(root / "out")],
        model_handler=FakeSentimentHandler())


@pytest.fixture(scope="session")
def mixed_run(tmp_path_factory) -> tuple[pathlib.Path, pathlib.Path, pathlib.Path, dict]:
    """One run of the job on the mixed input (`mixed_jsonl`'s records), with the lexicon model.

    Returns:
        (brands file, input file, output directory, manifest). Read by tests/test_pipeline.py,
        tests/test_tables.py and tests/test_sinks.py; a test that writes into the output directory (a rerun)
        works on a copy (`shutil.copytree(out, copy, symlinks=True)`: the links inside are relative).
    """
    root = made_once(tmp_path_factory, "mixed_run", _mixed_run)
    out = root / "out"
    return root / "brands.yaml", root / "in" / "mixed.jsonl", out, json.loads((out / "manifest.json").read_text())


def _metrics_job(root: pathlib.Path) -> None:
    brands = write_brands(root, METRICS_BRANDS_YAML)
    posts = write_jsonl(root / "posts.jsonl", metrics_posts())
    run(["--config", str(brands), "--input", str(posts), "--output_dir", str(root / "out")],
        model_handler=FakeSentimentHandler())


@pytest.fixture(scope="session")
def metrics_job(tmp_path_factory) -> pathlib.Path:
    """The output directory of one run of the job on `metrics_posts()` (five weeks, a spike), with the lexicon model.

    Read by tests/test_metrics_pipeline.py and tests/test_report.py; a test that writes into it must copy it first.
    """
    return made_once(tmp_path_factory, "metrics_job", _metrics_job) / "out"


@pytest.fixture(scope="session")
def six_weeks_run(tmp_path_factory):
    """One full run of the job on `write_six_weeks` (six weeks of posts, every bad line, three files).

    Returns:
        (brands file, input glob, output directory): read by tests/test_incremental.py (the full run a chain
        of incremental runs must equal) and tests/test_runners.py (the DirectRunner's outputs the other runners
        must give); a test that writes into the output directory must copy it first.
    """
    root = made_once(tmp_path_factory, "six_weeks", _six_weeks_run)
    return root / "brands.yaml", str(root / "in" / "*.jsonl"), root / "direct"


def _six_weeks_run(root: pathlib.Path) -> None:
    brands, inputs = write_brands(root), write_six_weeks(root / "in")
    run(["--config", str(brands), "--input", inputs, "--output_dir", str(root / "direct")],
        model_handler=FakeSentimentHandler())


# The modules that take longest, longest first (measured with `--junitxml`, docs/testing.md). `make test`
# runs them first (with `--no-loadscope-reorder`, xdist hands modules out in this order): a long module
# started last would leave one worker running it alone at the end. Order only: what runs is unchanged.
LONGEST_FIRST = ("test_chaos_platforms", "test_runners", "test_chunked", "test_lease", "test_commit", "test_models",
                 "test_incremental", "test_fetch_pipeline", "test_response_queue", "test_models_inference")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(pathlib.Path(item.nodeid.partition("::")[0]).stem, len(rank)))
