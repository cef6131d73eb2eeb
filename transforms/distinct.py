"""Distinct counts in bounded memory: exact while small, a HyperLogLog sketch beyond.

`unique_authors` is a distinct count per (brand, period, platform, language): exact sets
of author ids would grow with the input (a quarter's set holds every author of the
quarter, and every row of every period holds its own), so a large run would hold
them all at once in the combine's accumulators and shuffles. `DistinctCounter`
instead keeps:

- **exact mode**: the distinct 64-bit hashes (blake2b) of the ids, as a sorted array,
  while there are at most `EXACT_LIMIT` of them (2,048: 16 KiB, the size of the sketch).
  Two ids collide with probability about n^2 / 2^65 (10^-13 for 2,048 ids): exact;
- **sketch mode**: beyond that, a HyperLogLog sketch of 2^14 one-byte registers
  (16 KiB), whose relative standard error is 1.04 / sqrt(2^14) = 0.81 %. The estimate
  is Ertl's "improved raw estimator" (O. Ertl, New cardinality estimation algorithms for
  HyperLogLog sketches, 2017, algorithm 6), unbiased over the whole range without the
  empirical bias tables of HyperLogLog++.

Merging two counters is exact where both are exact and the union stays small, and
otherwise the register-wise maximum: the sketch of a union is the union of the
sketches, so merging days into weeks, or bundles on different workers, gives the same
sketch as counting everything in one place.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

PRECISION = 14  # 2^14 registers
REGISTERS = 1 << PRECISION
EXACT_LIMIT = 2048  # exact hashes kept before the sketch takes over
_Q = 64 - PRECISION  # bits of a hash left after the register index
_LOW = (1 << _Q) - 1
_ALPHA_INF = 0.5 / math.log(2)


def id_hash(value: str) -> int:
    """A stable 64-bit hash of an id (the same in every process and Python version)."""
    return int.from_bytes(hashlib.blake2b(value.encode("utf-8"), digest_size=8).digest(), "little")


def _register(h: int) -> tuple[int, int]:
    """A hash's register index (its top PRECISION bits) and value (1 + leading zeros of the other bits)."""
    return h >> _Q, _Q + 1 - (h & _LOW).bit_length()


def _registers_of(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_register` over an array of hashes (uint64): register indexes and values."""
    low = hashes & np.uint64(_LOW)
    length = np.zeros(hashes.size, dtype=np.int64)  # bit_length of each, by binary search on the shifts
    for shift in (32, 16, 8, 4, 2, 1):
        high = low >= np.uint64(1 << shift)
        length[high] += shift
        low[high] >>= np.uint64(shift)
    length += (low > 0)
    return (hashes >> np.uint64(_Q)).astype(np.intp), (_Q + 1 - length).astype(np.uint8)


_NO_HASHES = np.zeros(0, dtype=np.uint64)
_LOOSE = 256  # hashes held unsorted (added one by one, or merged in) before they join the sorted array
_LOOSE_SKETCHED = 4096  # exact hashes merged into a sketch, held to be sketched together (32 KiB)


class DistinctCounter:
    """A distinct count of hashed ids: exact up to `EXACT_LIMIT`, a HyperLogLog sketch beyond.

    While exact, the hashes are a sorted array of uint64 (8 bytes each, not a Python set's
    ~70). Hashes added one by one wait in a small set, and merged counters' arrays in a
    list, until there are as many as sorted ones (at least `_LOOSE`; `_LOOSE_SKETCHED` once
    a sketch): then they are sorted (or sketched) in, in bulk, so that merging many small
    counters costs a list append each, not a sort each.
    """

    __slots__ = ("_hashes", "_pending", "_merged", "_loose", "_registers")

    def __init__(self):
        self._hashes: np.ndarray = _NO_HASHES
        self._pending: set[int] = set()
        self._merged: list[np.ndarray] = []
        self._loose = 0  # hashes in _pending and _merged
        self._registers: np.ndarray | None = None

    def __getstate__(self):
        # Pickling only reads the counter, never flushes it in place: a runner may serialize an element
        # while another thread reads it (a Dask worker sends a task's result to another worker from its
        # event-loop thread while a task merges the same counter), and an in-place flush empties the
        # loose hashes before the sorted array holds them, so that merge lost ids (issue 15).
        flushed = self._flushed()
        # Bytes pickle faster than arrays.
        return flushed._hashes.tobytes(), None if flushed._registers is None else flushed._registers.tobytes()

    def __setstate__(self, state):
        hashes, registers = state
        self._hashes = np.frombuffer(hashes, dtype=np.uint64)  # read-only: only ever replaced, never written
        self._registers = None if registers is None else np.frombuffer(bytearray(registers), dtype=np.uint8)
        self._pending, self._merged, self._loose = set(), [], 0

    def __eq__(self, other):
        if not isinstance(other, DistinctCounter):
            return NotImplemented
        self._flush()
        other._flush()
        if self._registers is None or other._registers is None:
            return self._registers is other._registers and np.array_equal(self._hashes, other._hashes)
        return bool(np.array_equal(self._registers, other._registers))

    def __repr__(self):
        n, estimated = self.result()
        return f"DistinctCounter({'estimated' if estimated else 'exact'} {n})"

    def add(self, h: int) -> None:
        """Adds one hash (see `id_hash`)."""
        if self._registers is None:
            if h not in self._pending:
                self._pending.add(h)
                self._loose += 1
                if self._loose >= _LOOSE and self._loose >= self._hashes.size:
                    self._flush()
        else:
            index, value = _register(h)
            if self._registers[index] < value:
                self._registers[index] = value

    def _unsorted(self) -> list[np.ndarray]:
        arrays = list(self._merged) or [_NO_HASHES]
        if self._pending:
            arrays.append(np.fromiter(self._pending, dtype=np.uint64, count=len(self._pending)))
        return arrays

    def _flush(self) -> None:
        """Sorts the loose hashes into the array (or, for a sketch, into its registers); past the limit, the
        counter becomes a sketch."""
        if self._loose:
            loose = np.concatenate(self._unsorted())
            self._pending, self._merged, self._loose = set(), [], 0
            if self._registers is None:
                self._hashes = np.unique(np.concatenate([self._hashes, loose]))
            else:
                self._sketch(loose)
        if self._registers is None and self._hashes.size > EXACT_LIMIT:
            self._registers = np.zeros(REGISTERS, dtype=np.uint8)
            self._sketch(self._hashes)
            self._hashes = _NO_HASHES

    def _flushed(self) -> "DistinctCounter":
        """This counter with its loose hashes sorted (or sketched) in: itself if none are loose, else a copy."""
        if not self._loose:
            return self
        copy = DistinctCounter.__new__(DistinctCounter)
        copy._hashes = self._hashes  # arrays are replaced, never written in place
        copy._pending = set(self._pending)
        copy._merged = list(self._merged)
        copy._loose = self._loose
        copy._registers = None if self._registers is None else self._registers.copy()  # a flush writes these
        copy._flush()
        return copy

    def _sketch(self, hashes: np.ndarray) -> None:
        index, value = _registers_of(hashes)
        np.maximum.at(self._registers, index, value)

    def merge(self, other: "DistinctCounter") -> "DistinctCounter":
        """Adds `other`'s ids to this counter (in place; `other` is left as it is). Returns self."""
        if other._registers is not None and self._registers is None:
            loose = [self._hashes] + self._unsorted()
            self._registers = other._registers.copy()
            self._hashes, self._pending, self._merged = _NO_HASHES, set(), loose
            self._loose = sum(a.size for a in loose)
        elif other._registers is not None:
            np.maximum(self._registers, other._registers, out=self._registers)
        # Exact hashes wait in the list (arrays are never written in place, so holding other's is safe)
        # and are sorted, or sketched, in bulk.
        for array in (other._hashes, *other._merged):
            if array.size:
                self._merged.append(array)
                self._loose += array.size
        if other._pending:
            self._pending.update(other._pending)
            self._loose += len(other._pending)
        if self._loose >= (_LOOSE_SKETCHED if self._registers is not None else max(_LOOSE, self._hashes.size)):
            self._flush()
        return self

    def result(self) -> tuple[int, bool]:
        """The number of distinct ids added, and whether it is the sketch's estimate (rounded) rather than exact."""
        self._flush()
        if self._registers is None:
            return int(self._hashes.size), False
        return round(estimate(self._registers)), True


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        previous = z
        z += x * y
        y += y
        if z == previous:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y, z = 1.0, 1.0 - x
    while True:
        x = math.sqrt(x)
        previous = z
        y *= 0.5
        z -= (1.0 - x) ** 2 * y
        if z == previous:
            return z / 3.0


def estimate(registers: np.ndarray) -> float:
    """Ertl's improved raw estimate of the distinct count behind HyperLogLog registers (values 0..64-p+1)."""
    m = registers.size
    counts = np.bincount(registers, minlength=_Q + 2)
    z = m * _tau(1.0 - counts[_Q + 1] / m)
    for k in range(_Q, 0, -1):
        z = 0.5 * (z + counts[k])
    z += m * _sigma(counts[0] / m)
    return _ALPHA_INF * m * m / z
