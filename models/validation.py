"""Checks that the taxonomy (:mod:`models.taxonomy`) and the relevance profiles (:mod:`models.relevance`) share.

Both are lists of named things described by phrases: names must follow a pattern and be unique,
phrases must be non-empty strings, and each needs phrases unless its name is exempted (``other``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any


def check_named_phrases(
    items: Sequence[Any], kind: str, pattern: re.Pattern[str], rule: str, may_lack_phrases: Collection[str] = ()
) -> None:
    """Checks each item's ``name`` and ``phrases``.

    Args:
        items: Things with a ``name`` and a tuple of ``phrases``.
        kind: What they are, in messages ("topic", "profile").
        pattern: What a name must match.
        rule: How to write a name that matches, in messages.
        may_lack_phrases: Names that may come without phrases.

    Raises:
        ValueError: On a name that does not match, a name listed twice, a phrase that is not a
            non-empty string, or an item without phrases (unless exempted).
    """
    seen: set[str] = set()
    for item in items:
        if not pattern.match(item.name):
            raise ValueError(f"{kind} name {item.name!r}: use {rule}")
        if item.name in seen:
            raise ValueError(f"{kind} {item.name!r} is listed twice")
        seen.add(item.name)
        if not item.phrases and item.name not in may_lack_phrases:
            raise ValueError(f"{kind} {item.name!r} needs at least one description or example phrase")
        if any(not isinstance(p, str) or not p.strip() for p in item.phrases):
            raise ValueError(f"{kind} {item.name!r}: phrases must be non-empty strings")
