"""Target marking for stance: which span of a post the sentiment is asked about.

The sentiment model reads a post whose target is wrapped in :data:`TARGET_OPEN` and
:data:`TARGET_CLOSE` ("[[Bolt]] > Uber in Tallinn") as "the sentiment toward Bolt", and
an unmarked post as the post's own sentiment; it was trained on both (see
:mod:`models.train_head`). The markers survive :func:`models.text.model_text`, and a
marked text is an ordinary text to every backend, so marking costs nothing but the
extra pass per target.

Pure Python: importing this module loads no model.
"""

from __future__ import annotations

import unicodedata

TARGET_OPEN = "[["
TARGET_CLOSE = "]]"


def mark_target(text: str, start: int, end: int) -> str:
    """Wraps ``text[start:end]`` in the target markers.

    Args:
        text: The post.
        start: First character of the target.
        end: One past its last character.

    Returns:
        The text with the markers inserted.

    Raises:
        ValueError: When the span is empty or outside the text.
    """
    if not 0 <= start < end <= len(text):
        raise ValueError(f"target span [{start}, {end}) is not inside a text of {len(text)} characters")
    return f"{text[:start]}{TARGET_OPEN}{text[start:end]}{TARGET_CLOSE}{text[end:]}"


def _fold_char(ch: str) -> str:
    # One character in, at most one out: offsets in the folded text are offsets in the original.
    base = unicodedata.normalize("NFD", ch)[:1] or ch
    folded = base.casefold()
    return folded if len(folded) == 1 else ch.lower()[:1] or ch


def _fold(text: str) -> str:
    return "".join(_fold_char(ch) for ch in text)


def find_target(text: str, name: str) -> tuple[int, int] | None:
    """Finds where a post names a target: the first whole-word occurrence, with its inflected ending.

    Case and diacritics are ignored ("zaru" finds "Zaru"); the match starts a word and
    runs to the word's end, so an inflected form is marked whole ("Spriteom", "Uberu").

    Args:
        text: The post.
        name: The name as written in a config or label ("Bolt", "@Bolt", "#bolt").

    Returns:
        ``(start, end)`` of the span in ``text``, or None when the name does not occur.
    """
    needle = _fold(name.strip())
    if not needle:
        return None
    haystack = _fold(text)
    at = haystack.find(needle)
    while at >= 0:
        before = text[at - 1] if at else " "
        if not (before.isalnum() or before == "_"):
            end = at + len(needle)
            while end < len(text) and (text[end].isalnum() or text[end] == "_"):
                end += 1
            return at, end
        at = haystack.find(needle, at + 1)
    return None
