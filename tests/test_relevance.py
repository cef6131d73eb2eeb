"""Ambiguous brand names judged from context: config, detection, the judge, and the job's outputs.

The job runs with the lexicon model (`tests/support/fake_model.py`), which scores a post's relevance 0.1 when it
holds a word of an everyday sense (planet, fruit, fridge, ...) and 0.9 otherwise; the real model is
exercised on trap posts in `test_relevance_model.py`.
"""

from __future__ import annotations

import collections
import datetime
import json
import math
import pathlib
import re
import types

import apache_beam as beam
import pyarrow.parquet as pq
import numpy as np
import pytest
import yaml
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas import Mention
from schemas.config import ConfigError, parse_config
from tests.support.fake_job import main as fake_job_main
from tests.support.fake_model import FakeSentimentHandler
from transforms.job import SCORE, JobSpec, SocialListening
from transforms.relevance import (CASE_LOGIT, RelevanceJudge, _JudgeFn, ambiguous_brands, brand_profiles,
                                 name_case, profile_phrases)

UTC = datetime.timezone.utc


def _nudged(relevance: float, case: int) -> float:
    """A relevance after the case prior: its logit moved by CASE_LOGIT up (+1) or down (-1)."""
    return 1.0 / (1.0 + math.exp(-(math.log(relevance / (1.0 - relevance)) + case * CASE_LOGIT)))


NUDGED = _nudged(0.9, +1)
TRAPS = pathlib.Path(__file__).resolve().parent.parent / "data" / "handwritten" / "ambiguity"

CONFIG = {"brands": [
    {"id": "mars", "names": ["Mars", "Марс"], "handles": ["MarsGlobal"], "ambiguous": True,
     "category": "chocolate bar", "products": ["Snickers", "Twix"], "competitors": ["ferrero"]},
    {"id": "ferrero", "names": ["Ferrero", "Nutella"], "competitors": ["mars"], "ambiguous": False},
    {"id": "magnit", "names": ["Магнит"], "ambiguous": True, "category": "сеть продуктовых магазинов"},
]}

POSTS = [
    ("p1", "ate a Mars bar on the hike, saved my life"),                      # model: about the bar
    ("p2", "the rover sent new photos of the planet Mars, dust looks blue"),  # model: another sense
    ("p3", "@MarsGlobal why is the planet on your wrapper so small"),         # tagged: kept
    ("p4", "Snickers or Mars after the gym? planet-sized hunger"),            # product named: kept
    ("p5", "привезли магнит на холодильник из Казани"),                         # model: another sense
    ("p6", "в Магните у дома опять нет молока"),                                 # model: about the shop
    ("p7", "Nutella on toast, nothing else matters"),                         # not ambiguous: not judged
    ("p8", "Mars and Nutella both on the fruit stall's counter"),             # competitor named: kept
    ("p9", "no brand here at all"),                                           # unmatched
]


def _mention(pid: str, text: str) -> Mention:
    fields = {name: None for name in Mention._fields}
    fields.update(id=pid, platform="x", created_at=datetime.datetime(2026, 9, 1, 12, tzinfo=UTC), text=text,
                  lang="en", connector="file", author_id=f"a-{pid}", author_handle=f"user_{pid}")
    return Mention(**fields)


# ---- config --------------------------------------------------------------------------------------

def test_config_reads_the_ambiguity_keys():
    config = parse_config(CONFIG, "brands.yaml")
    mars = config.brands[0]
    assert (mars.ambiguous, mars.category, mars.products) == (True, "chocolate bar", ("Snickers", "Twix"))
    assert config.brands[1].ambiguous is False and config.brands[2].description == ()
    assert config.relevance.threshold == 0.5 and config.relevance.detect


@pytest.mark.parametrize("change, named", [
    (lambda c: c["brands"][2].pop("category"), "brands.yaml: brands[2].ambiguous: brand 'magnit' is marked ambiguous"),
    (lambda c: c["brands"][0].update(ambiguous="yes"), "brands.yaml: brands[0].ambiguous: expected true or false"),
    (lambda c: c["brands"][0].update(category=["a", "b"]), "brands.yaml: brands[0].category: expected one short"),
    (lambda c: c.update(relevance={"threshold": 1.5}), "brands.yaml: relevance.threshold: expected a number in"),
    (lambda c: c.update(relevance={"treshold": 0.4}), "brands.yaml: relevance: unknown key(s)"),
    (lambda c: c.update(relevance={"detect": "no"}), "brands.yaml: relevance.detect: expected true or false"),
])
def test_bad_ambiguity_config_names_the_field(change, named):
    config = json.loads(json.dumps(CONFIG))
    change(config)
    with pytest.raises(ConfigError) as caught:
        parse_config(config, "brands.yaml")
    assert named in str(caught.value)


def test_bad_ambiguity_config_exits_2_naming_the_field(tmp_path, capsys):
    config = json.loads(json.dumps(CONFIG))
    config["brands"][2].pop("category")
    (tmp_path / "brands.yaml").write_text(json.dumps(config), encoding="utf-8")
    (tmp_path / "in.jsonl").write_text(json.dumps({"id": "1", "created_at": "2026-09-01T10:00:00Z",
                                                   "text": "в Магните нет молока"}) + "\n", encoding="utf-8")
    code = fake_job_main(["--config", str(tmp_path / "brands.yaml"), "--input", str(tmp_path / "in.jsonl"),
                          "--output_dir", str(tmp_path / "out")])
    assert code == 2
    assert "brands[2].ambiguous" in capsys.readouterr().err
    assert not (tmp_path / "out" / "brand_mentions").exists()


# ---- detection and profiles ----------------------------------------------------------------------

def test_common_words_are_detected_unless_the_brand_says_otherwise():
    config = parse_config({"brands": [
        {"id": "orange", "names": ["Orange"], "category": "mobile operator"},
        {"id": "lenta", "names": ["Лента"]},
        {"id": "konzum", "names": ["Konzum"]},
        {"id": "shell", "names": ["Shell"], "ambiguous": False},
        {"id": "cocacola", "names": ["Coca-Cola Zero"]},
    ]}, "b.yaml")
    found = ambiguous_brands(config)
    assert set(found) == {"orange", "lenta"}
    assert found["orange"].startswith("detected: 'Orange' is a common word (en Zipf")
    off = parse_config({"brands": [{"id": "orange", "names": ["Orange"]}], "relevance": {"detect": False}}, "b.yaml")
    assert ambiguous_brands(off) == {}


def test_profiles_say_what_the_brand_is_and_skip_brands_with_nothing_to_judge_by():
    config = parse_config({"brands": CONFIG["brands"] + [{"id": "lenta", "names": ["Лента"]}]}, "b.yaml")
    ambiguous = ambiguous_brands(config)
    assert set(ambiguous) == {"mars", "magnit", "lenta"}
    phrases = profile_phrases(config.brands[0], config)
    assert phrases == ("Mars, chocolate bar", "Марс, chocolate bar", "Mars: Snickers, Twix",
                       "Mars and other chocolate bars like Ferrero")
    assert [p.name for p in brand_profiles(config, ambiguous)] == ["mars", "magnit"]  # lenta: nothing to say


def test_a_detected_brand_is_judged_only_when_the_config_says_what_it_is():
    config = parse_config({"brands": [
        {"id": "nike", "names": ["Nike"], "competitors": ["adidas"]},
        {"id": "adidas", "names": ["Adidas"], "competitors": ["nike"], "category": "sportswear brand"},
    ]}, "b.yaml")
    ambiguous = ambiguous_brands(config)
    assert set(ambiguous) == {"nike", "adidas"}  # both frequent words (because of the brands)
    assert [p.name for p in brand_profiles(config, ambiguous)] == ["adidas"]


@pytest.mark.parametrize("kind, text, model, expected", [
    ("tagged", "@MarsGlobal the planet on the wrapper", 0.05, (1.0, "tagged")),
    ("untagged", "Mars or Nutella with coffee", 0.05, (1.0, "competitor named")),
    ("untagged", "Twixa i Marsa na benzinskoj", 0.05, (1.0, "product named")),
    ("untagged", "Mars is red tonight", 0.2, (0.2, "model")),  # at a sentence's start: case says nothing
    ("untagged", "Mars bar", None, (None, "not scored")),
])
def test_judge_uses_cheap_signals_first_then_the_model(kind, text, model, expected):
    config = parse_config(CONFIG, "b.yaml")
    judge = RelevanceJudge(config, ambiguous_brands(config))
    row = types.SimpleNamespace(brand_id="mars", match_kind=kind, text=text, relevance=model)
    assert judge.judge(row) == expected
    assert judge.judge(types.SimpleNamespace(brand_id="ferrero", match_kind="untagged", text="Nutella",
                                             relevance=0.01)) == (None, "")
    assert judge.kept(0.49) is False and judge.kept(0.5) and judge.kept(None)


@pytest.mark.parametrize("text, case", [
    ("Peeled an orange for the kids", -1), ("Orange network down again", 0), ("thanks Orange, great signal", 1),
    ("Wow. Orange is down", 0), ("в Магните нет молока", 1), ("Магнит? Нет, магнит на холодильник", 0),
    ("Купила магнит на холодильник", -1), ("no name here", 0),
    # A text with no capital letter at all: its writer capitalises nothing, so lower case says nothing.
    ("peeled an orange for the kids", 0), ("магнит на холодильник", 0), ("thanks orange, great signal!!", 0),
])
def test_name_case_reads_the_first_occurrence(text, case):
    assert name_case(text, ["Orange", "Магнит"]) == case


def test_case_prior_nudges_the_models_relevance_and_can_be_turned_off():
    on = parse_config(CONFIG, "b.yaml")
    off = parse_config({**CONFIG, "relevance": {"case_prior": False}}, "b.yaml")
    row = types.SimpleNamespace(brand_id="mars", match_kind="untagged", text="The red dot of mars tonight",
                                relevance=0.55)
    lowered, _ = RelevanceJudge(on, ambiguous_brands(on)).judge(row)
    assert lowered == pytest.approx(1.0 / (1.0 + math.exp(-(math.log(0.55 / 0.45) - CASE_LOGIT))))
    assert lowered < 0.5
    assert RelevanceJudge(off, ambiguous_brands(off)).judge(row) == (0.55, "model")


def test_a_row_whose_judging_fails_is_kept_unjudged_not_the_end_of_the_run(monkeypatch):
    config = parse_config(CONFIG, "b.yaml")
    fn = _JudgeFn(config, ambiguous_brands(config))
    fn.setup()

    def boom(row):
        raise RecursionError("pattern too deep")

    monkeypatch.setattr(fn._judge, "judge", boom)
    row = types.SimpleNamespace(mention_id="p1", brand_id="mars", match_kind="untagged", text="Mars",
                                relevance=0.9, _replace=lambda **kw: {"mention_id": "p1", **kw})
    assert list(fn.process(row)) == [{"mention_id": "p1", "relevance": None}]


# ---- the job -------------------------------------------------------------------------------------

def test_job_keeps_relevant_matches_and_moves_the_others_to_rejected_matches():
    config = parse_config(CONFIG, "brands.yaml")
    with TestPipeline() as p:
        mentions = p | beam.Create([_mention(pid, text) for pid, text in POSTS])
        out = {"mentions": mentions} | SocialListening(JobSpec(config, FakeSentimentHandler()), steps=(SCORE,))
        assert_that(out["brand_mentions"] | "Kept" >> beam.Map(lambda r: (r.mention_id, r.brand_id, r.relevance)),
                    # The lexicon's 0.9, nudged up by the case prior: the names are capitalised mid-sentence.
                    equal_to([("p1", "mars", pytest.approx(NUDGED)), ("p3", "mars", 1.0), ("p4", "mars", 1.0),
                              ("p6", "magnit", pytest.approx(NUDGED)), ("p7", "ferrero", None),
                              ("p8", "mars", 1.0), ("p8", "ferrero", None)]), label="KeptRows")
        assert_that(out["rejected_matches"] | "Rejected" >> beam.Map(
                        lambda r: (r.mention_id, r.brand_id, r.matched_term, round(r.relevance, 2), r.threshold,
                                   r.reason.split(":")[0], r.text_excerpt[:12])),
                    # The lexicon's 0.1, nudged by the case prior: up for "Mars" mid-sentence, down for "магнит".
                    equal_to([("p2", "mars", "Mars", round(_nudged(0.1, +1), 2), 0.5, "model", "the rover se"),
                              ("p5", "magnit", "Магнит", round(_nudged(0.1, -1), 2), 0.5, "model", "привезли маг")]),
                    label="RejectedRows")
        counts = out["counts"] | beam.CombinePerKey(sum)
        assert_that(counts, equal_to([("match.matched_mentions", 8),
                                      ("match.unmatched_mentions", 1), ("relevance.rejected_matches", 2)]),
                    label="Counts")


@pytest.fixture(scope="module")
def committed_run(tmp_path_factory) -> pathlib.Path:
    """One whole run of the job's command line (fake model) over the posts above, committed."""
    tmp = tmp_path_factory.mktemp("relevance_run")
    (tmp / "brands.yaml").write_text(json.dumps(CONFIG), encoding="utf-8")
    with open(tmp / "in.jsonl", "w", encoding="utf-8") as fh:
        for pid, text in POSTS:
            fh.write(json.dumps({"id": pid, "platform": "x", "created_at": "2026-09-01T12:00:00Z", "text": text,
                                 "lang": "en", "author_handle": f"user_{pid}"}, ensure_ascii=False) + "\n")
    assert fake_job_main(["--config", str(tmp / "brands.yaml"), "--input", str(tmp / "in.jsonl"),
                          "--output_dir", str(tmp / "out"), "--quiet"]) == 0
    return tmp / "out"


def _rows(out: pathlib.Path, table: str) -> list:
    return pq.read_table(out / table).to_pylist()


def test_run_writes_relevance_and_the_rejected_matches_table(committed_run):
    kept = _rows(committed_run, "brand_mentions")
    rejected = _rows(committed_run, "rejected_matches")
    assert sorted((r["mention_id"], r["relevance"] is None) for r in kept if r["brand_id"] == "ferrero") == [
        ("p7", True), ("p8", True)]
    assert sorted(r["mention_id"] for r in rejected) == ["p2", "p5"]
    assert all(r["relevance"] < r["threshold"] and "another sense" in r["reason"] for r in rejected)


def test_run_counts_balance_and_rows_add_up_per_post(committed_run):
    manifest = json.loads((committed_run / "manifest.json").read_text(encoding="utf-8"))
    counts = manifest["counts"]
    assert counts["balanced"] is True
    assert (counts["mentions_matched"], counts["mentions_unmatched"]) == (8, 1)
    assert (counts["brand_mention_rows"], counts["rejected_match_rows"]) == (7, 2)
    # Every brand a post matched is in one table or the other, never both, never lost.
    rows = collections.Counter((r["mention_id"], r["brand_id"]) for r in _rows(committed_run, "brand_mentions"))
    rows.update((r["mention_id"], r["brand_id"]) for r in _rows(committed_run, "rejected_matches"))
    assert set(rows.values()) == {1} and len(rows) == 9


# ---- the trap set --------------------------------------------------------------------------------

def _traps(split: str) -> list:
    with open(TRAPS / f"traps_{split}.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _normal(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


def test_trap_set_is_large_diverse_and_its_splits_share_no_post():
    validation, test, test2 = _traps("validation"), _traps("test"), _traps("test2")
    posts = validation + test + test2
    assert len(posts) >= 500 and len({p["brand"] for p in posts}) >= 12
    assert {p["lang"] for p in test2} == {p["lang"] for p in posts} == {"en", "ru", "uk", "hr", "sr"}
    assert all(set(p) == {"text", "lang", "brand", "about_brand"} for p in posts)
    for split in (validation, test, test2):
        labels = collections.Counter(p["about_brand"] for p in split)
        assert min(labels.values()) >= 0.35 * len(split)
    normal = [{_normal(p["text"]) for p in split} for split in (validation, test, test2)]
    assert not normal[0] & normal[1] and not normal[2] & (normal[0] | normal[1])
    # The second test split echoes no situation of the others: no post shares 40 % of its words with one.
    earlier = [_words(p["text"]) for p in validation + test]
    for post in test2:
        mine = _words(post["text"])
        assert max([len(mine & t) / len(mine | t) for t in earlier if len(mine & t) >= 3], default=0.0) < 0.4


def _name_in_lower_case(text: str, names) -> bool:
    """Whether the first occurrence of one of `names` is written in lower case."""
    found = [m.start() for n in names for m in re.finditer(r"(?<!\w)" + re.escape(n), text, re.IGNORECASE)]
    return bool(found) and text[min(found)].islower()


def test_validation_split_holds_brand_posts_written_in_lower_case():
    # The case prior is chosen on this split: without such posts it learns one author's habit of
    # capitalising brand names, which real posts often do not share.
    config = parse_config(yaml.safe_load((TRAPS / "brands.yaml").read_text(encoding="utf-8")), "brands.yaml")
    names = {b.id: b.search_terms()[0] for b in config.brands}
    brand_posts = [p for p in _traps("validation") if p["about_brand"]]
    lower = [p for p in brand_posts if _name_in_lower_case(p["text"], names[p["brand"]])]
    assert len(lower) >= 15 and len(lower) >= 0.1 * len(brand_posts)
    assert len({p["brand"] for p in lower}) >= 8 and len({p["lang"] for p in lower}) >= 4


def test_trap_brand_config_has_no_hand_written_exclusions():
    raw = yaml.safe_load((TRAPS / "brands.yaml").read_text(encoding="utf-8"))
    assert not any("exclude" in b or " NOT " in (b.get("query") or "") for b in raw["brands"])
    config = parse_config(raw, "brands.yaml")
    posts = _traps("validation") + _traps("test") + _traps("test2")
    assert {p["brand"] for p in posts} <= set(ambiguous_brands(config))


def test_variant_tool_scores_only_matched_posts_and_chooses_a_separating_offset():
    from tools.relevance_variants import Split, choose, kept_at, precision_recall

    posts = [{"text": "Orange network down again in Lyon", "about_brand": True},
             {"text": "fresh orange juice with breakfast", "about_brand": False},
             {"text": "my Livebox keeps rebooting, thanks Orange", "about_brand": True},
             {"text": "0range signal gone at home", "about_brand": True}]  # a typo the matcher misses
    split = Split(posts, found=np.array([True, True, True, False]), cheap=np.array([False, False, True, False]),
                  case=np.zeros(4, np.float32), embeddings=np.zeros((4, 2), np.float32))
    margin = np.array([0.02, -0.03, -0.05, 0.04])  # the product-named post is kept by its cheap signal
    offset, weight = choose(split, margin)
    kept = kept_at(split, margin, offset, weight)
    assert precision_recall(split, kept) == (1.0, pytest.approx(2 / 3))
    assert precision_recall(split, np.ones(4, bool)) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert precision_recall(split, kept, upto=2) == (1.0, 1.0)


@pytest.mark.parametrize("text, expected", [
    ("взял симку orange в аэропорту", "взял симку Orange в аэропорту"),
    ("ORANGE tariffs up again, orange.fr says nothing", "Orange tariffs up again, Orange.fr says nothing"),
    ("в магните и у Магнита", "в Магните и у Магнита"),  # the ending stays
    ("oranges and a magnitude", "Oranges and a Magnitude"),  # a word that starts with a name, as the matcher reads it
    ("the rangers won", "the rangers won"),  # inside a word: untouched
])
def test_named_variant_spells_the_name_as_the_config_does(text, expected):
    from tools.relevance_variants import as_named

    assert as_named(text, ["Orange", "Магнит", "magnit*", "Magnit"]) == expected


# ---- the relevance projection's training posts -------------------------------------------------------

def _words(text: str) -> set:
    return {w for w in _normal(text).split() if len(w) > 2}


@pytest.mark.parametrize("posts_file, brands_file, least_brands, least_posts", [
    ("train.jsonl", "train_brands.yaml", 40, 600), ("train_more.jsonl", "train_more_brands.yaml", 60, 900),
    ("train_lower.jsonl", "train_brands.yaml", 40, 400)])
def test_training_posts_are_about_other_brands_than_the_trap_set_and_echo_none_of_its_posts(posts_file, brands_file,
                                                                                           least_brands, least_posts):
    raw = yaml.safe_load((TRAPS / brands_file).read_text(encoding="utf-8"))
    config = parse_config(raw, brands_file)
    traps = parse_config(yaml.safe_load((TRAPS / "brands.yaml").read_text(encoding="utf-8")), "brands.yaml")
    with open(TRAPS / posts_file, encoding="utf-8") as fh:
        posts = [json.loads(line) for line in fh if line.strip()]
    assert not {b.id for b in config.brands} & {b.id for b in traps.brands}
    assert not ({_normal(n) for b in config.brands for n in b.names}
                & {_normal(n) for b in traps.brands for n in b.names})
    assert not any("exclude" in b or " NOT " in (b.get("query") or "") for b in raw["brands"])
    ambiguous = ambiguous_brands(config)
    assert {p["brand"] for p in posts} <= set(ambiguous) and len({p["brand"] for p in posts}) >= least_brands
    labels = collections.Counter(p["about_brand"] for p in posts)
    assert len(posts) >= least_posts and min(labels.values()) >= 0.4 * len(posts)
    assert len({p["lang"] for p in posts}) >= 4
    trap_posts = _traps("validation") + _traps("test") + _traps("test2")
    assert not {_normal(p["text"]) for p in posts} & {_normal(p["text"]) for p in trap_posts}
    trap_words = [_words(p["text"]) for p in trap_posts]
    for post in posts:
        mine = _words(post["text"])
        close = [len(mine & t) / len(mine | t) for t in trap_words if len(mine & t) >= 3]
        assert max(close, default=0.0) < 0.4, post["text"]


def test_the_two_training_sets_are_about_different_brands():
    def about(posts_file: str) -> set:
        with open(TRAPS / posts_file, encoding="utf-8") as fh:
            return {json.loads(line)["brand"] for line in fh if line.strip()}

    assert not about("train.jsonl") & about("train_more.jsonl")


def test_the_shipped_projection_comes_from_the_committed_posts_and_the_job_uses_its_calibration():
    from models.embedded import file_sha1
    from models.relevance import DEFAULT_OFFSET, load_projection

    projection = load_projection()
    train = projection.metadata["train"]
    assert train["sha1"] == file_sha1(TRAPS / "train.jsonl")
    assert train["brands_sha1"] == file_sha1(TRAPS / "train_brands.yaml")
    assert projection.metadata["chosen_on"].endswith("traps_validation.jsonl")
    assert (DEFAULT_OFFSET, CASE_LOGIT) == (projection.metadata["offset"], projection.metadata["case_logit"])
    # The relevance layers that go with it (tools/train_relevance_layers.py): from the committed posts too.
    layers = projection.metadata["fine_tuned"]
    assert projection.layers_path is not None and projection.layers_path.is_file()
    assert layers["layers"] == list(range(4, 12)) and layers["chosen_on"].endswith("traps_validation.jsonl")
    root = TRAPS.parents[2]
    assert {f["file"]: f["sha1"] for f in layers["train"]} == {
        str(path.relative_to(root)): file_sha1(path)
        for path in (TRAPS / "train.jsonl", TRAPS / "train_brands.yaml", TRAPS / "train_more.jsonl",
                     TRAPS / "train_more_brands.yaml")}
