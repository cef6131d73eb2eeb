"""Small JSON files through Beam's FileSystems: the connectors' state, the run log, the manifest.

Written indented with sorted keys (a diff between two runs reads line by line); read back as one
JSON object, or with an error that names the file and says what to do about it.
"""

from __future__ import annotations

import json
import typing

from apache_beam.io.filesystems import FileSystems


def read_json_object(path: str, what: str, remedy: str) -> dict:
    """The JSON object stored at `path`, or {} when there is no such file.

    Args:
        path: Local path or URL (gs://...).
        what: What the file is, for the error ("state file", "run log").
        remedy: What the user can do when it is unreadable, for the error.

    Returns:
        The object.

    Raises:
        ValueError: naming the file, when it is not UTF-8 JSON or not an object.
    """
    if not FileSystems.exists(path):
        return {}
    with FileSystems.open(path) as fh:
        raw = fh.read()
    try:
        value = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a valid {what} ({exc}); {remedy}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path}: not a valid {what} (expected a JSON object)")
    return value


def write_json(path: str, value: typing.Any) -> None:
    """Writes `value` as indented JSON with sorted keys (UTF-8, non-ASCII kept as is)."""
    with FileSystems.create(path) as fh:
        fh.write(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True).encode("utf-8"))
