"""The brand query language: its syntax tree and its parser (no matching here).

A brand's ``query:`` in the config is a boolean search in the style listening
tools use::

    (nike OR найк OR "just do it" OR #JustDoIt OR @Nike) NOT (nikers OR author:nike_fan)
    apple NEAR/3 (iphone OR ipad OR macbook)
    (zara ONEAR/2 dostav*) lang:hr

Grammar (operators are upper case; precedence from loosest to tightest)::

    query   := or
    or      := and ("OR" and)*
    and     := unary (["AND"] unary)*          juxtaposition is AND
    unary   := "NOT" unary | near
    near    := primary (("NEAR/" n | "ONEAR/" n) primary)*
    primary := "(" or ")" | atom
    atom    := word | word"*" | '"' phrase '"' | "@"handle | "#"hashtag
             | "lang:"code | "author:"handle

A query is at most MAX_QUERY_CHARS characters and MAX_QUERY_ATOMS terms, nested at
most MAX_DEPTH levels deep (each '(', NOT and NEAR of a chain is one level). Both
sides of NEAR/ONEAR must be positional: a word, a phrase, a wildcard, a tag,
another NEAR, or a parenthesised OR of those. Every top-level OR branch
must contain a term outside NOT (a rule that could count a post that names
nothing is an error). `parse_query` raises `QueryError` with the position
(1-based character column) of the problem. The matcher that evaluates these
trees is `transforms.matching`; this module only knows the syntax, so the
config can be validated at start without importing the matcher.
"""

from __future__ import annotations

import re
import reprlib
import typing

MAX_NEAR = 100
# Bounds on what a query may be, so that a pathological one is a config error, not a stack overflow or a
# hang in the matcher: listening tools' own limits are of this order (a few thousand characters).
MAX_QUERY_CHARS = 20_000
MAX_QUERY_ATOMS = 1_000
MAX_DEPTH = 50
PREVIEW_CHARS = 60
# `fullmatch`, never `$`: Python's `$` also matches before a trailing newline.
_CODE_RE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})?", re.IGNORECASE)
_TAG_BODY_RE = re.compile(r"\w+")
_AUTHOR_RE = re.compile(r"@?[\w.\-]{1,100}")
_NEAR_RE = re.compile(r"(O?NEAR)(?:/(.*))?", re.IGNORECASE | re.DOTALL)
_FIELD_RE = re.compile(r"^([A-Za-z_]+):")
_WORD_CHAR = re.compile(r"\w")
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = PREVIEW_CHARS
OPERATORS = ("AND", "OR", "NOT")
FIELDS = ("lang", "author")


def preview(value: typing.Any, limit: int = PREVIEW_CHARS) -> str:
    """A bounded repr of a value for an error message: at most about `limit` characters of it.

    A long string shows its first characters, an ellipsis and its full length; any other value
    a cut `reprlib` form, whose cost does not grow with the value (a YAML alias bomb in a field
    would take minutes and gigabytes to `repr()` in full).

    Args:
        value: The bad value.
        limit: How many characters of it to show.

    Returns:
        The text to put in the message.
    """
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value):,} characters)"
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


class QueryError(ValueError):
    """A query that does not parse; `position` is the 1-based character column."""

    def __init__(self, message: str, position: int):
        super().__init__(f"{message} at position {position}")
        self.message = message
        self.position = position


class Term(typing.NamedTuple):
    """An untagged word or phrase (`phrase` when quoted); `wildcard` for a trailing '*'."""

    text: str
    wildcard: bool = False
    phrase: bool = False
    start: int = 0
    end: int = 0


class Tag(typing.NamedTuple):
    """A tagged atom: '@' handle or '#' hashtag (name without the sigil)."""

    sigil: str
    name: str
    start: int = 0
    end: int = 0


class Field(typing.NamedTuple):
    """A filter on the post: lang:xx or author:handle (value lower-cased, no '@')."""

    name: str
    value: str
    start: int = 0
    end: int = 0


class Not(typing.NamedTuple):
    child: typing.Any
    start: int = 0
    end: int = 0


class And(typing.NamedTuple):
    children: tuple
    start: int = 0
    end: int = 0


class Or(typing.NamedTuple):
    children: tuple
    start: int = 0
    end: int = 0


class Near(typing.NamedTuple):
    """`left` within `distance` words of `right` (words between them); `ordered`: left first."""

    left: typing.Any
    right: typing.Any
    distance: int
    ordered: bool = False
    start: int = 0
    end: int = 0


Node = typing.Union[Term, Tag, Field, Not, And, Or, Near]
POSITIONAL = (Term, Tag, Near)


class _Token(typing.NamedTuple):
    kind: str  # '(', ')', 'AND', 'OR', 'NOT', 'NEAR', 'ATOM', 'END'
    text: str
    start: int  # 0-based
    end: int
    value: typing.Any = None


def _tokens(source: str) -> list[_Token]:
    out: list[_Token] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "()":
            out.append(_Token(ch, ch, i, i + 1))
            i += 1
            continue
        if ch in "\"“”„«»":
            closers = {"\"": "\"", "“": "”", "”": "”", "„": "“”", "«": "»", "»": "«"}[ch]
            j = i + 1
            while j < n and source[j] not in closers and source[j] != "\"":
                j += 1
            if j >= n:
                raise QueryError("unterminated quote", i + 1)
            body = source[i + 1:j].strip()
            wildcard = body.endswith("*")
            if wildcard:
                body = body[:-1].rstrip()
            if not _WORD_CHAR.search(body):
                raise QueryError("empty phrase", i + 1)
            if "*" in body:
                raise QueryError("'*' is only allowed at the end of a word or phrase", i + 2 + body.index("*"))
            out.append(_Token("ATOM", source[i:j + 1], i, j + 1, Term(body, wildcard, True, i, j + 1)))
            i = j + 1
            continue
        j = i
        while j < n and not source[j].isspace() and source[j] not in "()\"“”„«»":
            j += 1
        out.append(_chunk(source[i:j], i))
        i = j
    out.append(_Token("END", "", n, n))
    return out


def _chunk(text: str, start: int) -> _Token:
    """Classifies one unquoted chunk: an operator, a field, a tag or a word."""
    end = start + len(text)
    pos = start + 1
    if text in OPERATORS:
        return _Token(text, text, start, end)
    if text.upper() in OPERATORS:
        raise QueryError(f"lower-case operator {text!r}: write {text.upper()} (or \"{text}\" to search for the word)",
                         pos)
    near = _NEAR_RE.fullmatch(text)
    if near:
        op, dist = near.group(1), near.group(2)
        if op != op.upper():
            raise QueryError(f"lower-case operator {preview(text)}: write {op.upper()}/n", pos)
        if dist is None or not dist.isdigit():
            raise QueryError(f"{op} needs a distance in words, e.g. {op}/3", pos)
        # The length first: int() refuses strings of more than 4,300 digits with a plain ValueError.
        if len(dist) > 4 or int(dist) > MAX_NEAR:
            shown = dist if len(dist) <= 8 else dist[:8] + "..."
            raise QueryError(f"{op}/{shown}: the distance may be at most {MAX_NEAR} words", pos)
        return _Token("NEAR", text, start, end, (int(dist), op == "ONEAR"))
    if text[0] in "@#":
        body = text[1:]
        if not _TAG_BODY_RE.fullmatch(body):
            what = "handle" if text[0] == "@" else "hashtag"
            raise QueryError(f"{preview(text)}: a {what} may only hold letters, digits and '_'", pos)
        return _Token("ATOM", text, start, end, Tag(text[0], body, start, end))
    field = _FIELD_RE.match(text)
    if field and not text.startswith(("http:", "https:")):
        name, value = field.group(1), text[field.end():]
        if name not in FIELDS:
            raise QueryError(f"unknown field {preview(name + ':')} (known: lang:, author:); quote it to search for "
                             "the text",
                             pos)
        if name == "lang" and not _CODE_RE.fullmatch(value):
            raise QueryError(f"lang: expects a language code such as lang:en or lang:sr, got {preview(value)}", pos)
        if name == "author" and not _AUTHOR_RE.fullmatch(value):
            raise QueryError(f"author: expects a handle such as author:nike, got {preview(value)}", pos)
        return _Token("ATOM", text, start, end, Field(name, value.lstrip("@").lower(), start, end))
    if text.startswith("-"):
        raise QueryError(f"{preview(text)}: a term cannot start with '-'; write NOT {text[1:PREVIEW_CHARS]}", pos)
    wildcard = text.endswith("*")
    body = text[:-1] if wildcard else text
    if "*" in body:
        raise QueryError("'*' is only allowed at the end of a word or phrase", start + 1 + body.index("*"))
    if not _WORD_CHAR.search(body):
        raise QueryError(f"{preview(text)} has no letters or digits to search for", pos)
    if wildcard and len(_WORD_CHAR.findall(body)) < 3:
        raise QueryError(f"{preview(text)}: a wildcard needs at least 3 letters before '*'", pos)
    return _Token("ATOM", text, start, end, Term(body, wildcard, False, start, end))


class _Parser:
    def __init__(self, source: str):
        self.source = source
        self.toks = _tokens(source)
        self.i = 0
        self.depth = 0
        atoms = [t for t in self.toks if t.kind == "ATOM"]
        if len(atoms) > MAX_QUERY_ATOMS:
            raise QueryError(f"more than {MAX_QUERY_ATOMS:,} terms ({len(atoms):,}); split the brand's query",
                             atoms[MAX_QUERY_ATOMS].start + 1)

    def _nest(self, tok: _Token, levels: int = 1) -> None:
        """Counts `levels` more nesting (a '(', a NOT, a NEAR in a chain) and stops past MAX_DEPTH.

        The bound keeps the parser's recursion, and the matcher's walks over the tree, far from
        Python's recursion limit.
        """
        self.depth += levels
        if self.depth > MAX_DEPTH:
            raise QueryError(f"nesting deeper than {MAX_DEPTH} levels (parentheses, NOT, NEAR)", tok.start + 1)

    @property
    def tok(self) -> _Token:
        return self.toks[self.i]

    def _unexpected(self, expected: str) -> QueryError:
        tok = self.tok
        if tok.kind == "END":
            return QueryError(f"unexpected end of query, expected {expected}", tok.start + 1)
        return QueryError(f"unexpected {preview(tok.text)}, expected {expected}", tok.start + 1)

    def parse(self) -> Node:
        if self.tok.kind == "END":
            raise QueryError("empty query", 1)
        node = self.parse_or()
        if self.tok.kind != "END":
            tok = self.tok
            raise QueryError(f"unexpected {preview(tok.text)}", tok.start + 1)
        return node

    def parse_or(self) -> Node:
        items = [self.parse_and()]
        while self.tok.kind == "OR":
            self.i += 1
            items.append(self.parse_and())
        if len(items) == 1:
            return items[0]
        return Or(tuple(items), items[0].start, items[-1].end)

    def parse_and(self) -> Node:
        items = [self.parse_unary()]
        while self.tok.kind in ("AND", "NOT", "ATOM", "("):
            if self.tok.kind == "AND":
                self.i += 1
            items.append(self.parse_unary())
        if len(items) == 1:
            return items[0]
        return And(tuple(items), items[0].start, items[-1].end)

    def parse_unary(self) -> Node:
        if self.tok.kind == "NOT":
            start = self.tok.start
            self._nest(self.tok)
            self.i += 1
            child = self.parse_unary()
            self.depth -= 1
            return Not(child, start, child.end)
        return self.parse_near()

    def parse_near(self) -> Node:
        left = self.parse_primary()
        chained = 0
        while self.tok.kind == "NEAR":
            op = self.tok
            self._nest(op)  # each NEAR of a chain nests the tree one level deeper
            chained += 1
            self.i += 1
            right = self.parse_primary()
            for side, node in (("left", left), ("right", right)):
                if not is_positional(node):
                    raise QueryError(f"{op.text} needs a word, phrase, tag or (a OR b) group on its {side}",
                                     op.start + 1)
            distance, ordered = op.value
            left = Near(left, right, distance, ordered, left.start, right.end)
        self.depth -= chained
        return left

    def parse_primary(self) -> Node:
        tok = self.tok
        if tok.kind == "(":
            self._nest(tok)
            self.i += 1
            if self.tok.kind == ")":
                raise QueryError("empty parentheses", self.tok.start + 1)
            node = self.parse_or()
            if self.tok.kind != ")":
                if self.tok.kind == "END":
                    raise QueryError("unclosed '('", tok.start + 1)
                raise self._unexpected("')'")
            close = self.tok
            self.i += 1
            self.depth -= 1
            # Keep the parentheses in the node's span so a rule's text reads as written.
            return node._replace(start=tok.start, end=close.end)
        if tok.kind == "ATOM":
            self.i += 1
            return tok.value
        raise self._unexpected("a word, \"phrase\", @handle, #hashtag, field or '('")


def is_positional(node: Node) -> bool:
    """True if the node has positions in the text (a NEAR operand)."""
    if isinstance(node, POSITIONAL):
        return True
    return isinstance(node, Or) and all(is_positional(c) for c in node.children)


def needs_term(node: Node) -> bool:
    """True if every way of satisfying the node involves a term or tag found in the post."""
    if isinstance(node, (Term, Tag, Near)):
        return True
    if isinstance(node, And):
        return any(needs_term(c) for c in node.children)
    if isinstance(node, Or):
        return all(needs_term(c) for c in node.children)
    return False  # Not, Field


def branches(node: Node) -> tuple[Node, ...]:
    """The top-level OR branches of a query (the rules a match is attributed to)."""
    return node.children if isinstance(node, Or) else (node,)


def atoms(node: Node) -> typing.Iterator[Node]:
    """Every Term, Tag and Field in the tree, in source order."""
    if isinstance(node, (Term, Tag, Field)):
        yield node
    elif isinstance(node, Not):
        yield from atoms(node.child)
    elif isinstance(node, Near):
        yield from atoms(node.left)
        yield from atoms(node.right)
    else:
        for child in node.children:
            yield from atoms(child)


def parse_query(source: str) -> Node:
    """Parses a query into its syntax tree.

    Args:
        source: The query as written in the config.

    Returns:
        The tree (Term, Tag, Field, Not, And, Or, Near nodes, each with its source span).

    Raises:
        QueryError: with a message and the 1-based position of the problem.
    """
    if len(source) > MAX_QUERY_CHARS:
        raise QueryError(f"longer than {MAX_QUERY_CHARS:,} characters ({len(source):,}); split the brand's query",
                         MAX_QUERY_CHARS + 1)
    node = _Parser(source).parse()
    for branch in branches(node):
        if not needs_term(branch):
            text = source[branch.start:branch.end]
            raise QueryError(f"{preview(text)} can match a post that names nothing: it needs a word, phrase or tag "
                             "outside NOT", branch.start + 1)
    return node


def render(node: Node) -> str:
    """Writes a tree back as query text (used to show what the simple config form compiles to)."""
    if isinstance(node, Term):
        text = node.text + ("*" if node.wildcard else "")
        return f'"{text}"' if node.phrase or not re.fullmatch(r"[\w'.&+-]+\*?", text) else text
    if isinstance(node, Tag):
        return node.sigil + node.name
    if isinstance(node, Field):
        return f"{node.name}:{node.value}"
    if isinstance(node, Not):
        return "NOT " + _group(node.child)
    if isinstance(node, And):
        return " AND ".join(_group(c) for c in node.children)
    if isinstance(node, Or):
        return " OR ".join(_group(c) if isinstance(c, Or) else render(c) for c in node.children)
    op = "ONEAR" if node.ordered else "NEAR"
    return f"{_group(node.left)} {op}/{node.distance} {_group(node.right)}"


def _group(node: Node) -> str:
    return f"({render(node)})" if isinstance(node, (Or, And)) else render(node)
