"""Brand matching: which configured brands a post mentions, why, and whether tagged or untagged.

`BrandMatcher` compiles every brand's rules ONCE (per worker) into structures shared
by all brands:

- one Aho-Corasick automaton (pyahocorasick) over every untagged term of every
  brand, in every spelling and word form (`transforms.inflection`), plus the
  brands' exclusion phrases;
- one dict from folded (@|#, name) to the tag atoms that use it;
- per brand, its rules as small trees over term and tag ids (`schemas.query`).

Per post: fold the text once, run the automaton once, check each hit's word
boundaries and ending, look up the post's @handles and #hashtags, and evaluate
the boolean rules of only the brands whose terms or tags were hit. The cost per
post does not grow with a loop over brands.

Boundaries: a term matches as a whole word, or as the start of a word followed by
an allowed ending ("Спрайтом", "Coca-Colu", "Appleov"); not inside a word
("spritesheet", "pineapple"), not inside an @handle or an e-mail address; inside
a #hashtag at its start or at a CamelCase/underscore/digit boundary
("#LoveSprite", "#iPhone15" but not "#spritesheet"). An untagged term inside one
of the brand's `exclude` phrases does not count; another occurrence does.

Each `Match` says how the post counted: `kind` ('tagged' when any satisfied rule
has an @handle/#hashtag hit, else 'untagged'), `term` (the config term of that
hit, as written) and `rule` (which rule: 'names', 'handles', 'hashtags', or
'query: <the top-level OR branch as written>').

`MatchBrands` is the Beam step: matched posts go to the main output as
`(mention, matches)`, posts that mention no brand to the `unmatched` output.
"""

from __future__ import annotations

import bisect
import re
import typing

import ahocorasick
import apache_beam as beam
from apache_beam.utils import shared

from schemas import Mention
from schemas.config import Brand, BrandConfig, ConfigError
from schemas.query import And, Field, Node, Not, Or, Tag, Term, atoms
from transforms.inflection import FOLD, fold, normalize, spellings, word_forms

__all__ = ["BrandMatcher", "Match", "MatchBrands", "MatchBrandsFn", "normalize"]

_TAG_RE = re.compile(r"(?<![@#\w])([@#])(\w+)|(?<=\w)([#@])(\w+)")
_EMAIL_TAIL = re.compile(r"\w+(?:[.\-]\w+)*\.\w")
_WORD_RUN = re.compile(r"\w*")
_TOKEN_RE = re.compile(r"[@#]?\w+(?:'\w+)*")
_SPACES = re.compile(r" {2,}")
_WILDCARD = None  # the endings of a wildcard key: any
_TERM, _EXCLUDE = 0, 1
TAGGED, UNTAGGED = "tagged", "untagged"


class Match(typing.NamedTuple):
    """One brand found in one post."""

    brand_id: str
    kind: str  # 'tagged' or 'untagged'
    term: str  # the config term as written, '@Handle' / '#Tag' for tagged
    rule: str = ""  # 'names', 'handles', 'hashtags' or 'query: <branch>'


class _View(typing.NamedTuple):
    """A post as the matcher sees it: folded text plus where its tags are."""

    text: str
    tags: tuple[tuple[str, str, int, int], ...]  # (sigil, folded name, start, end)
    hashtag_starts: list[int]  # body start of each hashtag, sorted
    hashtag_spans: list["_Hashtag"]
    handle_at: frozenset[int]  # offsets of the '@' of real handles


class _Hashtag:
    """A hashtag's body in the view: [start, end), and (computed on first use) where words start or end."""

    __slots__ = ("_bounds", "body", "end", "start")

    def __init__(self, start: int, end: int, body: str):
        self.start, self.end, self.body, self._bounds = start, end, body, None

    @property
    def bounds(self) -> frozenset[int]:
        """Offsets from `start` at '_', CamelCase, letter/digit and script changes, and both ends."""
        if self._bounds is None:
            bounds, n, body = {0}, 0, self.body
            for i, ch in enumerate(body):
                if i and _breaks(body, i):
                    bounds.add(n)
                piece = _TAG_FOLD[ord(ch)]
                if piece == " ":
                    bounds.update((n, n + 1))
                n += len(piece)
            bounds.add(n)
            self._bounds = frozenset(bounds)
        return self._bounds


class _TagFoldTable(dict):
    """FOLD, with '_' as a space: inside a hashtag, '_' separates words."""

    def __missing__(self, code: int) -> str:
        out = self[code] = " " if code == ord("_") else FOLD[code]
        return out


_TAG_FOLD = _TagFoldTable()


def _breaks(body: str, i: int) -> bool:
    a, b = body[i - 1], body[i]
    if a.islower() and b.isupper():
        return True  # loveSprite
    if a.isupper() and b.isupper() and i + 1 < len(body) and body[i + 1].islower():
        return True  # XSMax
    if a.isdigit() != b.isdigit():
        return True  # iPhone15
    return a.isalpha() and b.isalpha() and (a < "\u0400") != (b < "\u0400")  # script change


def make_view(text: str) -> _View:
    """Folds a post's text for matching and records its @handles and #hashtags."""
    if "#" not in text and "@" not in text:
        return _View(_SPACES.sub(" ", text.translate(FOLD)), (), [], [], frozenset())
    pieces: list[str] = []
    tags, starts, spans, handles = [], [], [], set()
    n, pos = 0, 0
    for m in _TAG_RE.finditer(text):
        sigil, body = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        if sigil == "@" and m.group(3) and _EMAIL_TAIL.match(text, m.start() + 1):
            continue  # name@example.com is an e-mail address, not a handle
        head = _SPACES.sub(" ", text[pos:m.start()].translate(FOLD))
        pieces.append(head)
        n += len(head)
        if sigil == "#":
            vbody = body.translate(_TAG_FOLD)
            starts.append(n + 1)
            spans.append(_Hashtag(n + 1, n + 1 + len(vbody), body))
        else:
            vbody = body.translate(FOLD)
            handles.add(n)
        tags.append((sigil, fold(body), n, n + 1 + len(vbody)))
        pieces.append(sigil + vbody)
        n += 1 + len(vbody)
        pos = m.end()
    pieces.append(_SPACES.sub(" ", text[pos:].translate(FOLD)))
    return _View("".join(pieces), tuple(tags), starts, spans, frozenset(handles))


class _Compiled(typing.NamedTuple):
    """One brand, compiled: its id and its rules as (label, tree over term/tag ids, atom order).

    The atom order ranks the rule's terms and tags as written (term id, or -1 - tag id, to its
    first position), so the term a match reports is the first one of the rule the post has.
    """

    brand_id: str
    rules: tuple[tuple[str, tuple, dict[int, int]], ...]


class BrandMatcher:
    """All brands' rules compiled into one automaton, one tag dict and small per-brand trees.

    Args:
        config: The validated brand configuration.

    Raises:
        ConfigError: when a term has nothing left to match once folded (e.g. only punctuation).
    """

    def __init__(self, config: BrandConfig):
        self._term_ids: dict[tuple, int] = {}
        self._term_display: list[str] = []
        self._term_brands: list[set[int]] = []
        self._tag_ids: dict[tuple, int] = {}
        self._tag_display: list[str] = []
        self._tag_brands: list[set[int]] = []
        self._tag_lookup: dict[tuple[str, str], list[int]] = {}
        self._keys: dict[str, dict[tuple[int, int], set[str] | None]] = {}
        self._brands: list[_Compiled] = []
        for b, brand in enumerate(config.brands):
            where = f"{config.source}: brands[{b}]"
            rules = tuple((rule.label, self._compile(rule.node, b, brand, where),
                           self._order(rule.node, b, brand, where)) for rule in brand.rules())
            self._brands.append(_Compiled(brand.id, rules))
            for j, phrase in enumerate(brand.exclude):
                wildcard = phrase.endswith("*")
                text = phrase[:-1].rstrip() if wildcard else phrase
                for spelling in spellings(text, brand.transliterate):
                    key = normalize(spelling)
                    self._add_key(key, (_EXCLUDE, b), _WILDCARD if wildcard else {""}, f"{where}.exclude[{j}]")
        self._automaton = None
        if self._keys:
            automaton = ahocorasick.Automaton()
            for key, entries in self._keys.items():
                frozen = tuple((kind, ref, None if rests is None else frozenset(rests))
                               for (kind, ref), rests in entries.items())
                automaton.add_word(key, (len(key), frozen))
            automaton.make_automaton()
            self._automaton = automaton

    def _add_key(self, key: str, ref: tuple[int, int], rests, where: str) -> None:
        if not key.strip():
            raise ConfigError(f"{where}: nothing left to match once case and punctuation are folded")
        entries = self._keys.setdefault(key, {})
        current = entries.get(ref, ())
        if rests is _WILDCARD or current is _WILDCARD:
            entries[ref] = _WILDCARD
        else:
            entries[ref] = set(current) | set(rests)

    def _term_id(self, term: Term, brand: Brand, b: int, where: str) -> int:
        ident = (term.text, term.wildcard, brand.inflect, brand.transliterate)
        tid = self._term_ids.get(ident)
        if tid is None:
            tid = self._term_ids[ident] = len(self._term_display)
            self._term_display.append(term.text + ("*" if term.wildcard else ""))
            self._term_brands.append(set())
            for spelling in spellings(term.text, brand.transliterate):
                if term.wildcard:
                    self._add_key(normalize(spelling), (_TERM, tid), _WILDCARD, where)
                    continue
                for key, rests in word_forms(spelling, brand.inflect):
                    self._add_key(key, (_TERM, tid), rests, where)
        self._term_brands[tid].add(b)
        return tid

    def _tag_id(self, tag: Tag, brand: Brand, b: int) -> int:
        ident = (tag.sigil, fold(tag.name), brand.transliterate and tag.sigil == "#")
        tid = self._tag_ids.get(ident)
        if tid is None:
            tid = self._tag_ids[ident] = len(self._tag_display)
            self._tag_display.append(tag.sigil + tag.name)
            self._tag_brands.append(set())
            names = spellings(tag.name, True) if ident[2] else [tag.name]
            for name in {fold(n) for n in names if "'" not in n and " " not in n}:
                self._tag_lookup.setdefault((tag.sigil, name), []).append(tid)
        self._tag_brands[tid].add(b)
        return tid

    def _order(self, node: Node, b: int, brand: Brand, where: str) -> dict[int, int]:
        order: dict[int, int] = {}
        for atom in atoms(node):
            if isinstance(atom, Term):
                order.setdefault(self._term_id(atom, brand, b, where), len(order))
            elif isinstance(atom, Tag):
                order.setdefault(-1 - self._tag_id(atom, brand, b), len(order))
        return order

    def _compile(self, node: Node, b: int, brand: Brand, where: str) -> tuple:
        """A query tree as tuples over term/tag ids; ORs of plain terms and tags become one set node "S"."""
        if isinstance(node, Term):
            return ("S", frozenset([self._term_id(node, brand, b, where)]), frozenset())
        if isinstance(node, Tag):
            return ("S", frozenset(), frozenset([self._tag_id(node, brand, b)]))
        if isinstance(node, Field):
            return ("F", node.name, node.value)
        if isinstance(node, Not):
            return ("N", self._compile(node.child, b, brand, where))
        if isinstance(node, And):
            return ("A", tuple(self._compile(c, b, brand, where) for c in node.children))
        if isinstance(node, Or):
            children = tuple(self._compile(c, b, brand, where) for c in node.children)
            if all(c[0] == "S" for c in children):
                return ("S", frozenset().union(*(c[1] for c in children)),
                        frozenset().union(*(c[2] for c in children)))
            return ("O", children)
        return ("R", self._compile(node.left, b, brand, where), self._compile(node.right, b, brand, where),
                node.distance, node.ordered)

    # -- matching -----------------------------------------------------------------------------------

    def match(self, post: Mention | str, lang: str | None = None,
              author: str | None = None) -> list[Match]:
        """Finds the brands a post mentions.

        Args:
            post: A Mention (its text, lang and author_handle are used) or a plain text.
            lang: The post's language code, when `post` is a text (for `lang:` rules).
            author: The author's handle, when `post` is a text (for `author:` rules).

        Returns:
            One Match per brand, ordered by where the deciding hit is in the text.
        """
        if not isinstance(post, str):
            text, lang, author = post.text, post.lang, post.author_handle
        else:
            text = post
        view = make_view(text)
        term_hits, exclusions = self._term_hits(view)
        tag_hits: dict[int, list[tuple[int, int]]] = {}
        for sigil, name, start, end in view.tags:
            for tid in self._tag_lookup.get((sigil, name), ()):
                tag_hits.setdefault(tid, []).append((start, end))
        if not term_hits and not tag_hits:
            return []
        candidates: set[int] = set()
        for tid in term_hits:
            candidates |= self._term_brands[tid]
        for tid in tag_hits:
            candidates |= self._tag_brands[tid]
        post_ctx = _Post(self, view, term_hits, tag_hits, exclusions,
                         (lang or "").lower(), (author or "").lstrip("@").casefold())
        found = []
        for b in sorted(candidates):
            best = post_ctx.evaluate(b, self._brands[b].rules)
            if best is not None:
                (rank, start, term), label = best
                found.append((start, Match(self._brands[b].brand_id, TAGGED if rank == 0 else UNTAGGED, term, label)))
        found.sort(key=lambda x: x[0])
        return [m for _, m in found]

    def _term_hits(self, view: _View):
        text = view.text
        hits: dict[int, list[tuple[int, int]]] = {}
        exclusions: dict[int, list[tuple[int, int]]] = {}
        if self._automaton is None or not text:
            return hits, exclusions
        for last, (length, entries) in self._automaton.iter(text):
            start, end = last - length + 1, last + 1
            span = _hashtag_at(view, start) if view.hashtag_starts else None
            if start:
                prev = text[start - 1]
                if prev == "@":
                    continue
                if (prev.isalnum() or prev == "_") and (span is None or start - span.start not in span.bounds):
                    continue
            if span is not None and end <= span.end:
                ends = self._ends_in_hashtag(text, end, span, entries)
            else:
                rest = _WORD_RUN.match(text, end).group()
                stop = end + len(rest)
                if stop < len(text) and text[stop] == "@" and stop not in view.handle_at:
                    continue  # glued to an e-mail address
                # A word ending the term allows ("" = none); digits only after a whole word: iPhone15.
                ends = [(kind, ref, stop) for kind, ref, rests in entries
                        if rests is None or rest in rests or (rest.isdigit() and "" in rests)]
            for kind, ref, stop in ends:
                (hits if kind == _TERM else exclusions).setdefault(ref, []).append((start, stop))
        return hits, exclusions

    @staticmethod
    def _ends_in_hashtag(text, end, span, entries):
        body_start, body_end, bounds = span.start, span.end, span.bounds
        out = []
        for kind, ref, rests in entries:
            if rests is None:
                out.append((kind, ref, end))
                continue
            for rest in rests:
                stop = end + len(rest)
                if stop <= body_end and stop - body_start in bounds and text.startswith(rest, end):
                    out.append((kind, ref, stop))
                    break
        return out


def _hashtag_at(view: _View, offset: int):
    i = bisect.bisect_right(view.hashtag_starts, offset) - 1
    if i >= 0 and offset < view.hashtag_spans[i].end:
        return view.hashtag_spans[i]
    return None


class _Post:
    """The hits of one post and the evaluation of brand rules over them."""

    def __init__(self, matcher: BrandMatcher, view: _View, term_hits, tag_hits, exclusions, lang, author):
        self.m = matcher
        self.view = view
        self.term_hits = term_hits
        self.tag_hits = tag_hits
        self.exclusions = exclusions
        self.lang = lang
        self.author = author
        self.brand = -1
        self._token_starts: list[int] | None = None

    def evaluate(self, b: int, rules):
        """Returns ((rank, start, term), rule label) of the deciding hit, or None if no rule holds.

        Within a rule the deciding hit is a tag before a term, then the rule's first atom as written
        that the post has, then the earliest; across rules, a tag first, then the earliest hit.
        """
        self.brand = b
        best = None
        for label, tree, order in rules:
            witnesses = self._truth(tree)
            if witnesses:
                rank, _, start, term = min((w[0], order.get(w[2], 0), w[1], w[3]) for w in witnesses)
                if best is None or (rank, start) < best[0][:2]:
                    best = ((rank, start, term), label)
        return best

    def _spans(self, node) -> list[tuple]:
        """Positional nodes: [(start, end, witnesses)] in text offsets."""
        op = node[0]
        if op == "S":
            _, term_ids, tag_ids = node
            out = []
            excl = self.exclusions.get(self.brand)
            for tid, hits in self.term_hits.items():
                if tid in term_ids:
                    term = self.m._term_display[tid]
                    out += [(s, e, ((1, s, tid, term),)) for s, e in hits
                            if not (excl and any(a <= s and e <= z for a, z in excl))]
            for tid, hits in self.tag_hits.items():
                if tid in tag_ids:
                    term = self.m._tag_display[tid]
                    out += [(s, e, ((0, s, -1 - tid, term),)) for s, e in hits]
            return out
        if op == "O":
            return [span for child in node[1] for span in self._spans(child)]
        _, left, right, distance, ordered = node
        lefts, rights = self._spans(left), self._spans(right)
        out = []
        for ls, le, lw in lefts:
            for rs, re_, rw in rights:
                a0, a1, b0, b1 = self._token(ls), self._token(le - 1), self._token(rs), self._token(re_ - 1)
                if a1 < b0:
                    gap = b0 - a1 - 1
                elif b1 < a0 and not ordered:
                    gap = a0 - b1 - 1
                else:
                    continue
                if gap <= distance:
                    out.append((min(ls, rs), max(le, re_), lw + rw))
        return out

    def _truth(self, node) -> list | None:
        """Boolean value of a node: None when false, else the hits that make it true (maybe [])."""
        op = node[0]
        if op in ("S", "R"):
            return [w for _, _, ws in self._spans(node) for w in ws] or None
        if op == "A":
            acc = []
            for child in node[1]:
                got = self._truth(child)
                if got is None:
                    return None
                acc += got
            return acc
        if op == "O":
            acc = None
            for child in node[1]:
                got = self._truth(child)
                if got is not None:
                    acc = (acc or []) + got
            return acc
        if op == "N":
            return [] if self._truth(node[1]) is None else None
        _, name, value = node
        if name == "lang":
            ok = self.lang == value or self.lang.startswith(value + "-")
        else:
            ok = self.author == value.casefold()
        return [] if ok else None

    def _token(self, offset: int) -> int:
        if self._token_starts is None:
            self._token_starts = [m.start() for m in _TOKEN_RE.finditer(self.view.text)]
        return bisect.bisect_right(self._token_starts, offset) - 1


class MatchBrandsFn(beam.DoFn):
    """Emits `(mention, matches)` for posts that mention a brand; others to UNMATCHED.

    The compiled matcher is shared by every thread of a worker process (`Shared`), so it is built
    once per worker.
    """

    UNMATCHED = "unmatched"

    def __init__(self, config: BrandConfig):
        self._config = config
        self._shared = shared.Shared()
        self._matcher: BrandMatcher | None = None
        self._matched = beam.metrics.Metrics.counter("match", "matched_mentions")
        self._unmatched = beam.metrics.Metrics.counter("match", "unmatched_mentions")

    def setup(self):
        self._matcher = self._shared.acquire(lambda: BrandMatcher(self._config))

    def process(self, mention: Mention):
        matches = self._matcher.match(mention)
        if matches:
            self._matched.inc()
            yield mention, tuple(matches)
        else:
            self._unmatched.inc()
            yield beam.pvalue.TaggedOutput(self.UNMATCHED, mention)


class MatchBrands(beam.PTransform):
    """Mentions in; `matched` = (mention, matches) and `unmatched` = mentions out.

    Compiles the rules once at construction, so a term that cannot match stops the run at start.
    """

    def __init__(self, config: BrandConfig):
        super().__init__()
        BrandMatcher(config)
        self._config = config

    def expand(self, mentions):
        return mentions | "Match" >> beam.ParDo(MatchBrandsFn(self._config)).with_outputs(
            MatchBrandsFn.UNMATCHED, main="matched")
