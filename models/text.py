"""What the model reads: a post's text normalised for scoring and for deduplication.

Links and @handles carry no sentiment but differ between copies of the same post (a
shortened link per repost, a different account tagged), and a plain repost repeats
its original behind ``RT @account:``. :func:`model_text` replaces links by ``http``
and handles by ``@user`` (the convention of Twitter-trained sentiment models), drops
a leading ``RT @user:``, applies Unicode NFC and collapses whitespace. The model is
trained and evaluated on the same normalisation, and the pipeline scores each
distinct normalised text once (:func:`text_key`).

Pure Python: importing this module loads no model.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_URL = re.compile(r"(?:\bhttps?://|\bwww\.)\S+", re.IGNORECASE)
# Not inside an e-mail address or a word (name@example.com keeps its '@').
_HANDLE = re.compile(r"(?<![\w@])@\w{1,50}")
_RETWEET = re.compile(r"^(?:RT\s+@user\b\s*:?\s*)+")


def model_text(text: str) -> str:
    """Normalises a post's text the way the model was trained on it.

    Args:
        text: The post's text as received.

    Returns:
        NFC text with links as ``http``, handles as ``@user``, no leading
        ``RT @user:`` and single spaces; idempotent.
    """
    text = unicodedata.normalize("NFC", text)
    text = _URL.sub("http", text)
    text = _HANDLE.sub("@user", text)
    text = " ".join(text.split())
    return _RETWEET.sub("", text)


def text_key(text: str) -> str:
    """Returns the deduplication key of a text: the SHA-1 of its :func:`model_text`."""
    return hashlib.sha1(model_text(text).encode("utf-8")).hexdigest()
