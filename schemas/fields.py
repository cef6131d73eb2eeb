"""One field list per record: the NamedTuple, the pyarrow schema and the docs come from it.

A record type is declared once as a tuple of `Field`s. `record_type` builds the
`typing.NamedTuple` that Beam carries (registered with `RowCoder`), `arrow_schema`
builds the pyarrow schema the Parquet sinks write, and the data dictionary (docs/data-dictionary.md)
is generated from the same `doc` strings, so the three cannot drift apart.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

import apache_beam as beam
import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Field:
    """One column of a record.

    Attributes:
        name: Column name, the same in Python, Parquet and SQL.
        pytype: The Python type of a non-null value (str, int, float, bool,
            datetime.datetime, datetime.date, or typing.List[str]).
        arrow: The pyarrow type written to Parquet.
        nullable: Whether the value may be None; unknown is null, never 0.
        doc: One line for the data dictionary.
    """

    name: str
    pytype: typing.Any
    arrow: pa.DataType
    nullable: bool
    doc: str


def f(name: str, pytype: typing.Any, arrow: pa.DataType, doc: str, nullable: bool = True) -> Field:
    """Shorthand constructor used by the record modules."""
    return Field(name, pytype, arrow, nullable, doc)


def record_type(name: str, fields: typing.Sequence[Field], module: str) -> type:
    """Builds a NamedTuple from `fields` and registers it with Beam's RowCoder.

    Args:
        name: Class name.
        fields: The record's fields, in column order.
        module: `__name__` of the defining module, so instances pickle by reference.

    Returns:
        The NamedTuple class.
    """
    annotations = [
        (fld.name, typing.Optional[fld.pytype] if fld.nullable else fld.pytype) for fld in fields
    ]
    cls = typing.NamedTuple(name, annotations)
    cls.__module__ = module
    beam.coders.registry.register_coder(cls, beam.coders.RowCoder)
    return cls


def arrow_schema(fields: typing.Sequence[Field], title: str) -> pa.Schema:
    """Builds the pyarrow schema for `fields`, with each column's doc as field metadata."""
    return pa.schema(
        [pa.field(fld.name, fld.arrow, nullable=fld.nullable, metadata={"doc": fld.doc}) for fld in fields],
        metadata={"record": title},
    )


def to_arrow_table(rows: typing.Sequence[typing.Any], schema: pa.Schema) -> pa.Table:
    """Converts NamedTuple rows (or dicts) to a pyarrow Table with `schema`."""
    names = schema.names
    if rows and isinstance(rows[0], dict):
        columns = [[row.get(n) for row in rows] for n in names]
    else:
        columns = [list(col) for col in zip(*rows)] if rows else [[] for _ in names]
    arrays = [pa.array(col, type=schema.field(n).type) for col, n in zip(columns, names)]
    for array, fld in zip(arrays, schema):
        # pyarrow does not enforce nullable=False itself; a null there is a bug upstream.
        if not fld.nullable and array.null_count:
            raise ValueError(f"column {fld.name!r} is required but {array.null_count} row(s) are null")
    return pa.Table.from_arrays(arrays, schema=schema)


def markdown_dictionary(fields: typing.Sequence[Field]) -> str:
    """Renders the fields as a Markdown table (column, type, nullable, meaning)."""
    lines = ["| column | type | nullable | meaning |", "|---|---|---|---|"]
    for fld in fields:
        lines.append(f"| `{fld.name}` | {fld.arrow} | {'yes' if fld.nullable else 'no'} | {fld.doc} |")
    return "\n".join(lines)


__all__ = [
    "Field",
    "TIMESTAMP",
    "arrow_schema",
    "f",
    "markdown_dictionary",
    "record_type",
    "to_arrow_table",
]
