"""A fast Beam coder for the pipeline's records: NamedTuples, UTC datetimes and dates.

Beam encodes elements that carry no type hint (and every nested value it has no coder
for) with `FastPrimitivesCoder`, which handles str, int, float, bytes, tuples, lists and
dicts natively and pickles everything else, one object at a time. Our elements are
mostly NamedTuples holding timezone-aware datetimes, and pickling those is slow (a
`Mention` took 22 us and 313 bytes; its `timezone.utc` alone is re-pickled on every
datetime). `RecordsCoder` is `FastPrimitivesCoder` with a better fallback:

- a NamedTuple of one of the coder's `types` -> a tag byte and its fields as a plain
  tuple (encoded by the fast path again, so nested records work too);
- a datetime in UTC -> microseconds since the epoch; a date -> its ordinal;
- anything else -> pickled, exactly as before.

Where Beam asks for a deterministic coder (GroupByKey keys) it gets Beam's own
deterministic `FastPrimitivesCoder`: our keys are strings and tuples of them. Record
types that travel with a type hint keep the `RowCoder` that `schemas.fields.record_type`
registers for them; this coder is for the elements without one (tuples of records,
accumulators, keyed pairs), which are most of what crosses a shuffle.

The tag of a type is its position in `types`, which travels inside the (pickled) coder
object, so the process that encodes and the one that decodes always agree on it.
`register(types)` makes the coder Beam's default for every PCollection whose element
type has no registered coder (`transforms/coders.py` does so for all our record types).
"""

from __future__ import annotations

import datetime
import typing

from apache_beam.coders import coder_impl, coders, typecoders

_UTC = datetime.timezone.utc
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=_UTC)
_MICROSECOND = datetime.timedelta(microseconds=1)
_DATETIME, _DATE, _OTHER, _FIRST_RECORD = 0, 1, 2, 3


class _RecordsFallbackImpl(coder_impl.StreamCoderImpl):
    """What `FastPrimitivesCoderImpl` calls for values it cannot encode itself."""

    def __init__(self, types: tuple[type, ...]):
        self._types = types
        self._tags = {t: _FIRST_RECORD + i for i, t in enumerate(types)}
        # The fast path, with this object as its fallback: fields of records go through it.
        self.primitives = coder_impl.FastPrimitivesCoderImpl(self)
        self._other = coders.PickleCoder().get_impl()

    def encode_to_stream(self, value, stream, nested):
        t = type(value)
        tag = self._tags.get(t)
        if tag is not None:
            stream.write_byte(tag)
            self.primitives.encode_to_stream(tuple(value), stream, True)
        elif t is datetime.datetime and value.tzinfo is _UTC:
            stream.write_byte(_DATETIME)
            stream.write_var_int64((value - _EPOCH) // _MICROSECOND)
        elif t is datetime.date:
            stream.write_byte(_DATE)
            stream.write_var_int64(value.toordinal())
        else:
            stream.write_byte(_OTHER)
            self._other.encode_to_stream(value, stream, True)

    def decode_from_stream(self, stream, nested):
        tag = stream.read_byte()
        if tag >= _FIRST_RECORD:
            return self._types[tag - _FIRST_RECORD]._make(self.primitives.decode_from_stream(stream, True))
        if tag == _DATETIME:
            return _EPOCH + datetime.timedelta(microseconds=stream.read_var_int64())
        if tag == _DATE:
            return datetime.date.fromordinal(stream.read_var_int64())
        return self._other.decode_from_stream(stream, True)


class RecordsCoder(coders.FastCoder):
    """`FastPrimitivesCoder` that also encodes `types` (NamedTuples), UTC datetimes and dates natively.

    Args:
        types: The NamedTuple classes to encode by field; their order fixes the tags.
    """

    def __init__(self, types: typing.Sequence[type] = ()):
        for t in types:
            if not (issubclass(t, tuple) and hasattr(t, "_fields")):
                raise TypeError(f"{t.__name__} is not a NamedTuple")
        if len(types) > 255 - _FIRST_RECORD:
            raise ValueError("too many record types for one tag byte")
        self._types = tuple(types)

    def _create_impl(self):
        return _RecordsFallbackImpl(self._types).primitives

    def is_deterministic(self) -> bool:
        return False

    def as_deterministic_coder(self, step_label, error_message=None):
        return coders.FastPrimitivesCoder().as_deterministic_coder(step_label, error_message)

    def to_type_hint(self):
        return typing.Any

    def from_type_hint(self, typehint, registry):  # the registry's fallback: any type hint
        return self

    def __eq__(self, other):
        return type(self) is type(other) and self._types == other._types

    def __hash__(self):
        return hash((type(self), self._types))


_REGISTERED: set[RecordsCoder] = set()


def register(types: typing.Sequence[type]) -> RecordsCoder:
    """Makes `RecordsCoder(types)` Beam's coder for element types that have no registered coder.

    Returns:
        The coder; registering again with the same types changes nothing.
    """
    coder = RecordsCoder(types)
    if coder not in _REGISTERED:
        typecoders.registry.register_fallback_coder(coder)
        _REGISTERED.add(coder)
    return coder
