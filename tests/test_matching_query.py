"""The query language: parsing (every operator, precedence, errors with positions), config errors, semantics."""

from __future__ import annotations

import pytest

from schemas.config import ConfigError, load_config, parse_config
from schemas.query import And, Field, Near, Not, QueryError, Tag, Term, branches, parse_query, render
from transforms.matching import BrandMatcher, MatchBrands


def shape(node):
    """The tree without source positions, for comparisons."""
    if isinstance(node, Term):
        return ("term", node.text) + (("*",) if node.wildcard else ()) + (("phrase",) if node.phrase else ())
    if isinstance(node, Tag):
        return (node.sigil, node.name)
    if isinstance(node, Field):
        return (node.name + ":", node.value)
    if isinstance(node, Not):
        return ("NOT", shape(node.child))
    if isinstance(node, Near):
        return ("ONEAR" if node.ordered else "NEAR", node.distance, shape(node.left), shape(node.right))
    return ("AND" if isinstance(node, And) else "OR",) + tuple(shape(c) for c in node.children)


A, B, C, D = (("term", x) for x in "abcd")


@pytest.mark.parametrize("query, expected", [
    ("a", A),
    ("a AND b", ("AND", A, B)),
    ("a b", ("AND", A, B)),  # juxtaposition is AND
    ("a OR b", ("OR", A, B)),
    ("a NOT b", ("AND", A, ("NOT", B))),
    ("a AND NOT b", ("AND", A, ("NOT", B))),
    ("NOT b a", ("AND", ("NOT", B), A)),
    ("(a OR b) c", ("AND", ("OR", A, B), C)),
    ('"just do it"', ("term", "just do it", "phrase")),
    ("„Coca-Cola“ OR «Кока-Кола»", ("OR", ("term", "Coca-Cola", "phrase"), ("term", "Кока-Кола", "phrase"))),
    ("adidas*", ("term", "adidas", "*")),
    ("@Nike", ("@", "Nike")),
    ("#JustDoIt", ("#", "JustDoIt")),
    ("a lang:sr", ("AND", A, ("lang:", "sr"))),
    ("a author:@Nike_Store", ("AND", A, ("author:", "nike_store"))),
    ("a NEAR/3 b", ("NEAR", 3, A, B)),
    ("a ONEAR/0 b", ("ONEAR", 0, A, B)),
    ("(a OR b) NEAR/2 (c OR @d)", ("NEAR", 2, ("OR", A, B), ("OR", C, ("@", "d")))),
    ("a NEAR/1 b NEAR/2 c", ("NEAR", 2, ("NEAR", 1, A, B), C)),
    ("Coca-Cola Lay's 7up", ("AND", ("term", "Coca-Cola"), ("term", "Lay's"), ("term", "7up"))),
    # Precedence: NEAR > NOT > AND > OR.
    ("a OR b AND c", ("OR", A, ("AND", B, C))),
    ("a AND b OR c AND d", ("OR", ("AND", A, B), ("AND", C, D))),
    ("a b OR c", ("OR", ("AND", A, B), C)),
    ("a NEAR/2 b OR c", ("OR", ("NEAR", 2, A, B), C)),
    ("NOT a NEAR/2 b c", ("AND", ("NOT", ("NEAR", 2, A, B)), C)),
    ("((a))", A),
])
def test_parse(query, expected):
    assert shape(parse_query(query)) == expected


@pytest.mark.parametrize("query, message, position", [
    ("(a OR b))", "unexpected ')'", 9),
    ("a OR", "unexpected end of query", 5),
    ("a AND", "unexpected end of query", 6),
    ("OR a", "unexpected 'OR'", 1),
    ("a OR OR b", "unexpected 'OR'", 6),
    ("(a OR b", "unclosed '('", 1),
    ("a ()", "empty parentheses", 4),
    ('a "b c', "unterminated quote", 3),
    ('a ""', "empty phrase", 3),
    ("a and b", "lower-case operator 'and'", 3),
    ("a Or b", "lower-case operator 'Or'", 3),
    ("a NEAR b", "NEAR needs a distance", 3),
    ("a NEAR/x b", "NEAR needs a distance", 3),
    ("a near/2 b", "lower-case operator", 3),
    ("a NEAR/500 b", "at most 100", 3),
    ("a NEAR/2 (b AND c)", "NEAR/2 needs a word, phrase, tag or (a OR b) group on its right", 3),
    ("NOT a NEAR/2 b", "can match a post that names nothing", 1),
    ("(NOT a) ONEAR/1 b", "ONEAR/1 needs a word, phrase, tag or (a OR b) group on its left", 9),
    ("ad*", "at least 3 letters", 1),
    ("a*b", "'*' is only allowed at the end", 2),
    ("#a-b", "a hashtag may only hold", 1),
    ("@", "a handle may only hold", 1),
    ("lang:english a", "lang: expects a language code", 1),
    ("a author:", "author: expects a handle", 3),
    ("a site:x.com", "unknown field 'site:'", 3),
    ("-pie apple", "cannot start with '-'", 1),
    ("NOT apple", "can match a post that names nothing", 1),
    ("apple OR lang:en", "'lang:en' can match a post that names nothing", 10),
    ("apple OR (NOT pie author:x)", "can match a post that names nothing", 10),
    ("", "empty query", 1),
    ("   ", "empty query", 1),
])
def test_parse_errors_name_the_position(query, message, position):
    with pytest.raises(QueryError) as err:
        parse_query(query)
    assert message in err.value.message and err.value.position == position, str(err.value)
    assert str(err.value).endswith(f"at position {position}")


def test_branches_keep_their_source_text_and_render_round_trips():
    source = 'apple NOT (pie OR juice) OR "Big Mac" NEAR/2 burger* OR @Nike lang:en'
    tree = parse_query(source)
    assert [source[b.start:b.end] for b in branches(tree)] == [
        "apple NOT (pie OR juice)", '"Big Mac" NEAR/2 burger*', "@Nike lang:en"]
    assert shape(parse_query(render(tree))) == shape(tree)


def test_simple_form_compiles_to_rules():
    cfg = parse_config({"brands": [{"id": "sprite", "names": ["Sprite", "Спрайт"], "handles": ["Sprite"],
                                    "hashtags": ["Sprite"], "query": "sprite NEAR/2 zero OR #SpriteZero"}]})
    rules = cfg.brands[0].rules()
    assert [r.label for r in rules] == ["names", "handles", "hashtags", "query: sprite NEAR/2 zero",
                                        "query: #SpriteZero"]
    assert render(rules[0].node) == "Sprite OR Спрайт" and render(rules[1].node) == "@Sprite"
    assert cfg.brands[0].search_terms() == (("Sprite", "Спрайт", "sprite", "zero"), ("Sprite",),
                                            ("Sprite", "SpriteZero"))


def _brand(**fields):
    return {"brands": [dict({"id": "x"}, **fields), {"id": "y", "names": ["Y"]}]}


@pytest.mark.parametrize("data, message", [
    (_brand(names=["a"], query="(a OR b))"), "b.yaml: brands[0].query: unexpected ')' at position 9"),
    (_brand(query="apple AND"), "b.yaml: brands[0].query: unexpected end of query"),
    (_brand(query=["a"]), "b.yaml: brands[0].query: expected a string, got list"),
    (_brand(query="NOT a"), "b.yaml: brands[0].query: 'NOT a' can match a post that names nothing"),
    (_brand(names=["a"], transliterate="yes"), "b.yaml: brands[0].transliterate: expected true or false"),
    (_brand(names=["a"], inflect=1), "b.yaml: brands[0].inflect: expected true or false"),
    (_brand(names=["a*b"]), "b.yaml: brands[0].names[0]: 'a*b': '*' only at the end"),
    (_brand(names=["ab*"]), "b.yaml: brands[0].names[0]: 'ab*': '*' only at the end, after at least 3 letters"),
    (_brand(names=["!!!"]), "b.yaml: brands[0].names[0]: '!!!' has no letters or digits"),
    (_brand(names=["a"], exclude=["—"]), "b.yaml: brands[0].exclude[0]: '—' has no letters or digits"),
    (_brand(), "b.yaml: brands[0].names: brand 'x' needs at least one of names, handles, hashtags, query"),
])
def test_config_errors_name_the_file_and_field(data, message):
    with pytest.raises(ConfigError) as err:
        parse_config(data, "b.yaml")
    assert str(err.value).startswith(message), str(err.value)


def test_a_bad_query_stops_the_run_at_start(tmp_path):
    from pipelines.run import main

    path = tmp_path / "brands.yaml"
    path.write_text("brands:\n  - id: a\n    names: [A]\n  - id: b\n    names: [B]\n  - id: c\n"
                    "    query: 'nike NOT (pie OR juice))'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"brands.yaml: brands\[2\]\.query: unexpected '\)' at position 24"):
        load_config(str(path))
    assert main(["--config", str(path), "--input", str(path), "--output_dir", str(tmp_path / "o")]) == 2


def test_a_query_only_brand_is_a_valid_config():
    cfg = parse_config(_brand(query="a OR b"))
    assert cfg.brands[0].names == () and cfg.brands[0].query == "a OR b"
    MatchBrands(cfg)  # compiles at construction


SEMANTICS = parse_config({"brands": [
    {"id": "and", "query": "zara AND dostav*"},
    {"id": "or", "query": "pepsi OR pepsija"},
    {"id": "not", "query": "apple NOT (pie OR fruit*)"},
    {"id": "near", "query": "apple NEAR/2 watch"},
    {"id": "onear", "query": "apple ONEAR/2 watch"},
    {"id": "wild", "query": "adidas*"},
    {"id": "phrase", "query": '"just do it" OR "Coca Cola"'},
    {"id": "tags", "query": "@Nike OR #JustDoIt"},
    {"id": "lang", "query": "vegeta lang:hr"},
    {"id": "author", "query": "mars NOT author:nasa"},
    {"id": "excl", "query": "sprite NEAR/3 drink", "exclude": ["fairy sprite"]},
    {"id": "nested", "query": "(samsung OR самсунг) NEAR/3 (battery OR батарея) NEAR/5 (fire OR пожар)"},
]})


@pytest.fixture(scope="module")
def semantics():
    return BrandMatcher(SEMANTICS)


@pytest.mark.parametrize("text, lang, author, expected", [
    ("Zara dostava kasni", None, None, {"and"}),
    ("Zara kasni", None, None, set()),
    ("dostava kasni", None, None, set()),
    ("Pepsija nema", None, None, {"or"}),
    ("new Apple laptop", None, None, {"not"}),
    ("Apple pie", None, None, set()),  # NOT is post-level
    ("Apple stock and fruity snacks", None, None, set()),
    ("apple watch", None, None, {"not", "near", "onear"}),
    ("apple and the new watch", None, None, {"not"}),  # three words between: beyond NEAR/2
    ("a watch from apple", None, None, {"not", "near"}),  # NEAR is unordered, ONEAR is not
    ("Adidasica i adidasove patike", None, None, {"wild"}),
    ("xadidas", None, None, set()),
    ("Just do it!", None, None, {"phrase"}),
    ("just do, it", None, None, set()),
    ("Coca-Colu molim", None, None, {"phrase"}),  # phrases inflect too
    ("@nike #justdoit", None, None, {"tags", "phrase"}),  # a phrase written as one hashtag counts too
    ("Nike just do", None, None, set()),
    ("Vegeta u juhi", "hr", None, {"lang"}),
    ("Vegeta u juhi", "en", None, set()),
    ("Vegeta u juhi", None, None, set()),
    ("Mars bar", None, "chocoholic", {"author"}),
    ("Mars rover", None, "NASA", set()),
    ("a fairy sprite drink", None, None, set()),  # the occurrence inside the exclusion does not count
    ("a fairy sprite and a Sprite drink", None, None, {"excl"}),
    ("Samsung battery caught fire", None, None, {"nested"}),
    ("батарея Самсунга, пожар", None, None, {"nested"}),
    ("Samsung battery is fine", None, None, set()),
])
def test_query_semantics(semantics, text, lang, author, expected):
    assert {m.brand_id for m in semantics.match(text, lang=lang, author=author)} == expected


def test_tagged_wins_and_the_rule_is_the_branch(semantics):
    (m,) = semantics.match("@nike")
    assert (m.kind, m.term, m.rule) == ("tagged", "@Nike", "query: @Nike")  # each top-level OR branch
    (m,) = [m for m in semantics.match("a watch from apple") if m.brand_id == "near"]
    assert (m.kind, m.term, m.rule) == ("untagged", "apple", "query: apple NEAR/2 watch")  # first as written


@pytest.mark.parametrize("query, message", [
    ("(" * 200 + "apple" + ")" * 200, "nesting deeper than 50 levels"),
    ("NOT " * 1_000 + "pie apple", "nesting deeper than 50 levels"),
    (" NEAR/1 ".join(["apple"] * 300), "nesting deeper than 50 levels"),
    ("apple OR " + "(pie " * 60 + ")" * 60, "nesting deeper than 50 levels"),
    (" OR ".join(f"term{i}" for i in range(1_001)), "more than 1,000 terms (1,001)"),
    ("apple " + "x" * 20_000, "longer than 20,000 characters (20,006)"),
    ("apple NEAR/" + "9" * 5_000 + " pie", "NEAR/99999999...: the distance may be at most 100 words"),
    ("apple " + "Apple" * 2_000 + "*x", "'*' is only allowed at the end"),
])
def test_pathological_queries_are_config_errors_naming_the_field(query, message):
    with pytest.raises(ConfigError) as err:
        parse_config(_brand(query=query), "b.yaml")
    assert str(err.value).startswith("b.yaml: brands[0].query: ") and message in str(err.value), str(err.value)[:300]
    assert len(str(err.value)) < 300


def test_queries_at_the_limits_parse_and_match():
    deep = "(" * 49 + "apple NEAR/2 watch" + ")" * 49
    nots = "apple " + "NOT " * 49 + "pie"
    wide = " OR ".join(["apple"] + [f"term{i}" for i in range(999)])
    cfg = parse_config({"brands": [{"id": "deep", "query": deep}, {"id": "nots", "query": nots},
                                   {"id": "wide", "query": wide}]})
    matcher = BrandMatcher(cfg)
    assert {m.brand_id for m in matcher.match("my apple watch")} == {"deep", "nots", "wide"}
    assert {m.brand_id for m in matcher.match("apple pie term998")} == {"wide"}  # 49 NOTs act as one
