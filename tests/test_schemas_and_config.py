"""Records agree with their pyarrow schemas; the brand config is validated with messages naming the field."""

from __future__ import annotations

import datetime
import os
import typing

import apache_beam as beam
import pyarrow as pa
import pytest

from schemas import TABLES, DeadLetter, Mention
from schemas.config import ConfigError, load_config, parse_config
from schemas.fields import to_arrow_table

PY_TO_ARROW = {str: (pa.types.is_string,), int: (pa.types.is_int64,), bool: (pa.types.is_boolean,),
               float: (pa.types.is_float32, pa.types.is_float64), datetime.datetime: (pa.types.is_timestamp,),
               datetime.date: (pa.types.is_date32,), list[str]: (pa.types.is_list,),
               list[int]: (pa.types.is_list,), list[float]: (pa.types.is_list,),
               typing.Mapping[str, float]: (pa.types.is_map,)}
# Lists whose elements may be null (the alerts' post links, authors and reach): the same arrow list types.
PY_TO_ARROW.update({list[t | None]: PY_TO_ARROW[list[t]] for t in (str, int, float)})


@pytest.mark.parametrize("table", list(TABLES))
def test_named_tuple_and_arrow_schema_agree(table):
    record, fields, schema = TABLES[table].record, TABLES[table].fields, TABLES[table].schema
    assert list(record._fields) == schema.names == [f.name for f in fields]
    hints = typing.get_type_hints(record)
    for fld in fields:
        arrow_field = schema.field(fld.name)
        assert arrow_field.nullable == fld.nullable
        assert any(check(arrow_field.type) for check in PY_TO_ARROW[fld.pytype]), fld.name
        assert (hints[fld.name] == typing.Optional[fld.pytype]) == fld.nullable
        if fld.pytype is datetime.datetime:
            assert arrow_field.type.tz == "UTC"


def test_mention_has_the_issue_fields():
    for name in ("platform", "id", "url", "created_at", "author_id", "author_handle", "author_followers", "text",
                 "lang", "is_repost", "is_reply", "is_quote", "conversation_id", "likes", "reposts", "replies",
                 "quotes", "impressions", "bookmarks", "fetched_at", "connector", "query"):
        assert name in Mention._fields


def test_row_coder_round_trip_keeps_utc_and_nulls():
    coder = beam.coders.registry.get_coder(DeadLetter)
    assert isinstance(coder, beam.coders.RowCoder)
    row = DeadLetter("parse", "bad", "{}", None, datetime.datetime(2026, 9, 7, 1, 2, 3, tzinfo=datetime.timezone.utc))
    back = coder.decode(coder.encode(row))
    assert back == row and back.source is None


def test_to_arrow_table_rejects_null_in_required_column():
    schema = TABLES["dead_letters"].schema
    with pytest.raises((pa.ArrowInvalid, ValueError)):
        to_arrow_table([DeadLetter("parse", None, "{}", None, None)], schema).validate(full=True)


GOOD = {"brands": [{"id": "sprite", "names": ["Sprite"], "handles": ["@Sprite"], "hashtags": ["#Sprite"],
                    "exclude": ["fairy sprite"], "competitors": ["coke"]},
                   {"id": "coke", "names": ["Coke"]}]}


def test_good_config_parses_and_strips_sigils():
    cfg = parse_config(GOOD, "b.yaml")
    sprite = cfg.brands[0]
    assert sprite.handles == ("Sprite",) and sprite.hashtags == ("Sprite",)
    assert cfg.competitive_set("sprite") == ("sprite", "coke")
    assert cfg.competitive_set("coke") == ()


def _with(**changes):
    brand = dict(GOOD["brands"][0], **changes)
    return {"brands": [brand, GOOD["brands"][1]]}


@pytest.mark.parametrize("data, message", [
    (None, "the top level must be a mapping"),
    ({"brand": []}, "unknown top-level key(s) ['brand']"),
    ({"brands": []}, "brands: expected a non-empty list"),
    ({"brands": ["sprite"]}, "brands[0]: expected a mapping"),
    (_with(id="Sprite Zero"), "brands[0].id: 'Sprite Zero' is not a valid id"),
    (_with(names="Sprite", nmes=["x"]), "brands[0]: unknown key(s) ['nmes']"),
    (_with(names=[""]), "brands[0].names[0]: empty string"),
    (_with(names=[["nested"]]), "brands[0].names[0]: expected a string"),
    (_with(names={"a": 1}), "brands[0].names: expected a list of strings"),
    (_with(handles=["sprite zero"]), "brands[0].handles[0]"),
    (_with(competitors=["cocacolla"]), "brands[0].competitors[0]: unknown brand 'cocacolla'"),
    (_with(competitors=["sprite"]), "brands[0].competitors[0]: a brand cannot compete with itself"),
    (_with(names=[], handles=[], hashtags=[]), "needs at least one of names, handles, hashtags"),
    ({"brands": [GOOD["brands"][1], GOOD["brands"][1]]}, "brands[1].id: duplicate id 'coke'"),
])
def test_bad_config_names_the_field(data, message):
    with pytest.raises(ConfigError) as err:
        parse_config(data, "b.yaml")
    assert message in str(err.value) and str(err.value).startswith("b.yaml")


def test_load_config_reports_yaml_errors(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text("brands: [\n  - id: x\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(path))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "missing.yaml"))


def test_bundled_config_is_valid():
    cfg = load_config("brands.yaml")
    ids = cfg.brand_ids()
    assert len(ids) >= 4
    # The competitive sets name known brands and agree: a brand's competitors name it back, so that
    # share of voice is computed over the same brands from each side.
    sets = {b: set(cfg.competitive_set(b)) for b in ids if cfg.competitive_set(b)}
    assert len(sets) >= 2
    assert all(b in brands and brands <= set(ids) for b, brands in sets.items()), sets
    assert all(sets.get(c) == brands for brands in sets.values() for c in brands), sets


def test_data_dictionary_page_is_current():
    from schemas.docs import PAGE, ROOT, main, page

    with open(os.path.join(ROOT, PAGE), encoding="utf-8") as fh:
        assert fh.read() == page(), "run: python -m schemas.docs --write"
    assert main(["--check"]) == 0


# ---- hostile config files: bounded work, bounded messages, no look-alike ids --------------------

def _alias_bomb(levels: int = 9) -> str:
    """A billion-laughs document of a few hundred bytes whose brands[0].id expands to 9**levels strings."""
    rows = ['      - &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    rows += [f"      - &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "brands:\n  - names: [Apple]\n    id:\n" + "\n".join(rows) + "\n"


def test_a_yaml_alias_bomb_is_refused_naming_the_file_and_field(tmp_path):
    path = tmp_path / "brands.yaml"
    path.write_text(_alias_bomb(), encoding="utf-8")
    assert path.stat().st_size < 1024  # a few hundred bytes
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    message = str(err.value)
    assert message.startswith(f"{path}: brands[0].id[") and "aliases expand to more than 10,000 values" in message
    assert len(message) < 300


def test_a_few_shared_anchors_still_load(tmp_path):
    path = tmp_path / "brands.yaml"
    path.write_text("brands:\n  - id: sprite\n    names: &lemon [Sprite, Спрайт]\n"
                    "    competitors: &drinks [coke]\n"
                    "  - id: coke\n    names: [Coke]\n    exclude: *lemon\n  - id: fanta\n    names: [Fanta]\n"
                    "    competitors: *drinks\n", encoding="utf-8")
    cfg = load_config(str(path))
    assert cfg.brands[1].exclude == ("Sprite", "Спрайт") and cfg.competitive_set("fanta") == ("fanta", "coke")


@pytest.mark.parametrize("text, message", [
    ("brands:\n  - &b\n    id: a\n    names: [A, *b]\n", "brands[0].names[1]: an alias inside the node it names"),
    ("brands:\n  - id: a\n    names: " + "[" * 60 + "A" + "]" * 60 + "\n", "nested deeper than 50 levels"),
    ("brands:\n  - id: a\n    names: [A]\n    inflect: " + "9" * 5000 + "\n", "not valid YAML"),
])
def test_recursive_deep_or_unbuildable_yaml_is_a_config_error(tmp_path, text, message):
    path = tmp_path / "brands.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert str(err.value).startswith(str(path)) and message in str(err.value) and len(str(err.value)) < 300


def _shared_nest(levels: int) -> list:
    value = ["lol"] * 9
    for _ in range(levels):
        value = [value] * 9  # shared references, as YAML aliases build them
    return value


@pytest.mark.parametrize("brand, field, shown", [
    ({"id": "x" * 10_000 + "!", "names": ["A"]}, "brands[0].id", "... (10,001 characters)"),
    ({"id": _shared_nest(6), "names": ["A"]}, "brands[0].id", "[[[[[["),
    ({"id": "a", "names": ["A"], "handles": ["h" * 5_000 + " x"]}, "brands[0].handles[0]", "(5,002 characters)"),
    ({"id": "a", "names": ["A" * 600]}, "brands[0].names[0]", "longer than 500 characters"),
    ({"id": "a", "names": ["A"], "inflect": "y" * 10_000}, "brands[0].inflect", "(10,000 characters)"),
    ({"id": "a", "names": ["A"], "competitors": ["z" * 400]}, "brands[0].competitors[0]",
     "unknown brand 'zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz'... (400 characters)"),
    ({"id": "a", "names": ["A"], "k" * 10_000: 1, 5: 1}, "brands[0]: unknown key(s)", "..."),
])
def test_messages_show_a_short_prefix_of_a_bad_value(brand, field, shown):
    with pytest.raises(ConfigError) as err:
        parse_config({"brands": [brand]}, "b.yaml")
    message = str(err.value)
    assert message.startswith(f"b.yaml: {field}") and shown in message and len(message) < 400, message[:500]


@pytest.mark.parametrize("brand, field", [
    ({"id": "apple\n", "names": ["Apple"]}, "brands[0].id"),
    ({"id": "apple ", "names": ["Apple"]}, "brands[0].id"),
    ({"id": "app le", "names": ["Apple"]}, "brands[0].id"),
    ({"id": "a", "handles": ["Apple\n"]}, "brands[0].handles[0]"),
    ({"id": "a", "handles": ["@Apple "]}, "brands[0].handles[0]"),
    ({"id": "a", "hashtags": ["#Apple\n"]}, "brands[0].hashtags[0]"),
    ({"id": "a", "hashtags": ["Apple\tPie"]}, "brands[0].hashtags[0]"),
])
def test_ids_handles_and_hashtags_reject_any_whitespace(brand, field):
    with pytest.raises(ConfigError, match=r"^b\.yaml: " + field.replace("[", r"\[").replace("]", r"\]") + ": "):
        parse_config({"brands": [brand]}, "b.yaml")


def test_an_id_with_a_trailing_newline_is_not_a_second_brand(tmp_path):
    path = tmp_path / "brands.yaml"
    path.write_text('brands:\n  - id: apple\n    names: [Apple]\n  - id: "apple\\n"\n    names: [Apple]\n',
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=r"brands\[1\]\.id: 'apple\\n' is not a valid id"):
        load_config(str(path))


@pytest.mark.parametrize("data, message", [
    ({"brands": [{"id": "a", "names": ["A"]}], "topics": {"taxonomy": {"price\n": ["price"]}}},
     "topics.taxonomy: 'price\\n' is not a valid topic name"),
    ({"brands": [{"id": "a", "names": ["A"]}], "alerts": {"z_threshold": float("nan")}},
     "alerts.z_threshold: expected a number >= 0.5, got nan"),
    ({"brands": [{"id": "a", "names": ["A"] * 1_001}]}, "brands[0].names: 1,001 items, more than the limit"),
])
def test_topic_names_numbers_and_list_sizes_are_checked(data, message):
    with pytest.raises(ConfigError) as err:
        parse_config(data, "b.yaml")
    assert message in str(err.value)
