"""Language detection: realistic posts per language, Serbian scripts, hr/sr/bs, unknowns, the Beam step, the job.

The detector is lingua restricted to the configured languages plus the rules of
`transforms.language`; one detector is shared by the module (lingua loads its models once).
"""

from __future__ import annotations

import json
import pathlib
import re

import apache_beam as beam
import pyarrow.dataset as ds
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.run import main, run
from schemas import Mention
from schemas.config import DEFAULT_LANGUAGES, ConfigError, parse_config
from tests.support.fake_model import FakeSentimentHandler
from transforms import language
from transforms.language import DetectLanguage, DetectLanguageFn, Language, LanguageDetector, check_languages, script_of

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "handwritten" / "language"


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector()


@pytest.mark.parametrize("text, lang", [
    ("ngl the new Galaxy camera is actually insane at night 📸", "en"),
    ("@Uber driver cancelled 3 times in a row, love that for me", "en"),
    ("купил кроссовки на распродаже, через неделю подошва отклеилась 😤", "ru"),
    ("Озон опять перенёс доставку, уже третий раз", "ru"),
    ("замовила сукню на Розетці, прийшла не того розміру", "uk"),
    ("дякую Новій Пошті, посилка за день 🙌", "uk"),
    ("konačno sam nabavio novi mobitel, baterija traje cijeli tjedan", "hr"),
    ("u Konzumu nema kruha od jutros, tko je sve pokupovao", "hr"),
    ("kupio sam nove patike, posle nedelju dana se raspale, bre", "sr"),
    ("Нови Самсунг је одличан, али цена је превисока", "sr"),
    ("jarane, kahva u sedam, haman svaki dan isto", "bs"),
    ("bio sam u Sarajevu prošle sedmice, ćevapi top", "bs"),
])
def test_detects_realistic_posts_per_language(detector, text, lang):
    found = detector.resolve(text, None)
    assert found.lang == lang and found.source == "detected"


@pytest.mark.parametrize("text, script", [
    ("Мој телефон је стигао јуче", "Cyrl"),
    ("Moj telefon je stigao juče", "Latn"),
    ("Купил новый iPhone у @apple, доволен как слон", "Cyrl"),  # a brand in Latin, the handle left out
    ("Check https://example.com/очень-длинная-ссылка", "Latn"),  # links left out
    ("🔥🔥🔥 https://t.co/x", None),
    ("新しいiPhoneが好きです", "other"),
])
def test_script_is_the_script_of_most_letters(text, script):
    assert script_of(text) == script


@pytest.mark.parametrize("text", [
    "Нови Ајфон стиже у понедељак",          # ј
    "Ђоковић рекламира нови сат",            # ђ
    "Добар дан, свака част за доставу",       # no Serbian-only letter: Cyrillic Serbo-Croatian is Serbian
])
def test_serbian_cyrillic(detector, text):
    assert detector.resolve(text, None) == Language("sr", "detected", "Cyrl")


def test_serbian_latin_is_told_from_croatian_and_bosnian(detector):
    assert detector.resolve("mleko i hleb poskupeli, cena skočila za sto dinara", None) == Language(
        "sr", "detected", "Latn")
    assert detector.resolve("mlijeko i kruh poskupjeli, cijena skočila za euro", None).lang == "hr"
    assert detector.resolve("mlijeko i hljeb poskupjeli, cijena skočila za marku", None).lang == "bs"


@pytest.mark.parametrize("text, lang", [
    ("tisuću puta sam im pisao, svaki tjedan isto", "hr"),
    ("hiljadu puta sam im pisao, svake nedelje isto", "sr"),
    ("hiljadu puta sam im pisao, svake sedmice isto", "bs"),
    ("nogomet u subotu, vlak u osam", "hr"),
    ("fudbal u subotu, voz u osam, ne kasni bre", "sr"),
    ("rezervirao sam termin u servisu, vidjet ćemo", "hr"),
    ("rezervisao sam termin u servisu, videćemo", "sr"),
])
def test_croatian_serbian_bosnian_words(detector, text, lang):
    assert detector.resolve(text, None).lang == lang


@pytest.mark.parametrize("text", ["", "   ", "😂😂😂", "🔥👏", "https://t.co/abc123", "@Zara @hm", "#PS5", "!!!", "ok"])
def test_texts_without_language_are_unknown(detector, text):
    found = detector.resolve(text, None)
    assert found.lang is None and found.source is None


@pytest.mark.parametrize("code", ["und", "", "zxx", "qme", "qht", "QAM"])
def test_platform_codes_that_are_not_a_language_are_detected(detector, code):
    assert detector.resolve("the delivery was late again, great job", code) == Language("en", "detected", "Latn")


def test_a_platform_language_is_kept(detector):
    # The platform's word stands, even where the text alone would say otherwise.
    assert detector.resolve("Super cijena!", "HR") == Language("hr", "platform", "Latn")
    assert detector.resolve("🔥🔥", "en") == Language("en", "platform", None)


def test_only_configured_languages_are_answered():
    # Without bs configured, a Bosnian post is Croatian or Serbian; without hr/sr/bs, Slavic Latin is not hr.
    assert LanguageDetector(["en", "hr", "sr"]).resolve("jarane, kahva u sedam, haman svaki dan", None).lang in (
        "hr", "sr")
    assert LanguageDetector(["en", "ru"]).resolve("Привіт, як справи у Львові?", None).lang == "ru"


def test_each_rule_can_be_turned_off():
    text = "kupio sam hleb i mleko, cena ista ko prošle nedelje"
    assert LanguageDetector(rules=language.RULES).resolve(text).lang == "sr"
    assert LanguageDetector(rules=()).resolve(text).lang in ("hr", "bs")  # lingua has no Latin Serbian
    with pytest.raises(ValueError, match="unknown rule"):
        LanguageDetector(rules=["bcs_lexicon", "vibes"])


_SHARED = LanguageDetector()


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_any_text_resolves_without_raising(text):
    found = _SHARED.resolve(text, None)
    assert found.source in (None, "detected")
    assert (found.lang is None) == (found.source is None)
    assert found.script in (None, "Latn", "Cyrl", "other")


# ---- configuration -----------------------------------------------------------------------------

def test_check_languages_names_where_an_unknown_code_came_from():
    assert check_languages(["EN", "hr", "en"], "--detect_languages") == ("en", "hr")
    with pytest.raises(ConfigError, match=r"--detect_languages: 'qq' is not a language"):
        check_languages(["en", "qq"], "--detect_languages")


def test_config_languages_default_listed_and_query_languages_added():
    brands = [{"id": "zara", "names": ["Zara"]}]
    assert parse_config({"brands": brands}).languages == DEFAULT_LANGUAGES
    assert parse_config({"brands": brands, "languages": ["EN", "ru"]}).languages == ("en", "ru")
    queried = [{"id": "zara", "query": "zara AND lang:de"}]
    assert parse_config({"brands": queried, "languages": ["en"]}).languages == ("en", "de")
    for bad, message in (("english", r"languages\[0\]: 'english' is not an ISO 639-1"), ([], "at least one"),
                         ({"en": 1}, "expected a list")):
        with pytest.raises(ConfigError, match=message):
            parse_config({"brands": brands, "languages": bad}, "b.yaml")


def _inputs(tmp_path: pathlib.Path, brands: str, records: list) -> list:
    (tmp_path / "brands.yaml").write_text(brands, encoding="utf-8")
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n",
                                       encoding="utf-8")
    return ["--config", str(tmp_path / "brands.yaml"), "--input", str(tmp_path / "in.jsonl"),
            "--output_dir", str(tmp_path / "out")]


@pytest.mark.parametrize("extra, brands_extra, field", [
    (["--detect_languages", "en,klingon"], "", "--detect_languages[1]: 'klingon'"),
    (["--detect_languages", "en,qq"], "", "--detect_languages: 'qq' is not a language"),
    ([], "languages: [en, zz]\n", "brands.yaml: languages: 'zz' is not a language"),
    ([], "languages: [en, 42]\n", "brands.yaml: languages[1]: 42"),
])
def test_unknown_language_code_exits_2_naming_the_flag_or_field(tmp_path, capsys, extra, brands_extra, field):
    argv = _inputs(tmp_path, "brands:\n  - id: zara\n    names: [Zara]\n" + brands_extra, [RECORD])
    assert main(argv + extra) == 2
    assert field in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


RECORD = {"id": "1", "platform": "x", "created_at": "2026-09-07T10:00:00Z", "text": "Zara sale, queue to the door"}


# ---- the Beam step and the job ----------------------------------------------------------------

def _mention(mention_id: str, text: str, lang=None) -> Mention:
    values = {name: None for name in Mention._fields}
    values.update(id=mention_id, platform="x", text=text, lang=lang, connector="file")
    return Mention(**values)


def test_detect_language_step_fills_the_columns():
    posts = [_mention("1", "Нови Ајфон је стигао, одушевљен сам"), _mention("2", "Sprite je bolji, tisuću puta", "und"),
             _mention("3", "the new Sprite tastes like soap", "en"), _mention("4", "😂😂😂")]
    with TestPipeline() as p:
        out = p | beam.Create(posts) | DetectLanguage()
        assert_that(out["mentions"] | beam.Map(lambda m: (m.id, m.lang, m.lang_source, m.script)), equal_to([
            ("1", "sr", "detected", "Cyrl"), ("2", "hr", "detected", "Latn"), ("3", "en", "platform", "Latn"),
            ("4", None, None, None)]), label="Mentions")
        assert_that(out["dead_letters"], equal_to([]), label="NoDeadLetters")


class _Failing:
    def resolve(self, text, lang):
        raise RecursionError("maximum recursion depth exceeded")


def test_a_post_whose_detection_raises_is_a_dead_letter():
    fn = DetectLanguageFn(DEFAULT_LANGUAGES)
    fn._detector = _Failing()
    [out] = list(fn.process(_mention("9", "whatever")))
    assert isinstance(out, beam.pvalue.TaggedOutput) and out.tag == DetectLanguageFn.DEAD_LETTERS
    assert out.value.step == "language" and "RecursionError" in out.value.reason and "x:9" == out.value.source


BRANDS = """brands:
  - id: zara
    names: [Zara, Зара]
    handles: [Zara]
  - id: konzum_hr
    query: 'konzum AND lang:hr'
"""


def _post(post_id: str, text: str, lang=None) -> dict:
    post = {"id": post_id, "platform": "x", "created_at": f"2026-09-07T1{post_id}:00:00Z", "text": text}
    return post if lang is None else {**post, "lang": lang}


POSTS = [
    _post("1", "Zara sniženje, red do Ilice, tisuću ljudi"),
    _post("2", "Зара распродаја, ђаци и њихове маме"),
    _post("3", "Zara sale is chaos", "en"),
    _post("4", "@Zara 🔥🔥 https://t.co/x1", "qme"),
    _post("5", "u Konzumu nema kruha, tko je sve pokupovao"),
    _post("6", "u Konzumu nema hleba, ko je sve pokupovao bre"),
    _post("7", "Zara: FAIL-DETECTION marker post"),
]


def test_job_detects_before_matching_and_dead_letters_keep_the_count(tmp_path, monkeypatch):
    real = LanguageDetector.resolve

    def resolve(self, text, platform_lang=None):
        if "FAIL-DETECTION" in text:
            raise OverflowError("a value no rule foresaw")
        return real(self, text, platform_lang)

    monkeypatch.setattr(LanguageDetector, "resolve", resolve)
    argv = _inputs(tmp_path, BRANDS, POSTS)
    run(argv + ["--quiet"], model_handler=FakeSentimentHandler())
    rows = ds.dataset(tmp_path / "out" / "brand_mentions", format="parquet", partitioning="hive").to_table()
    got = sorted(zip(rows["mention_id"].to_pylist(), rows["brand_id"].to_pylist(), rows["lang"].to_pylist(),
                     rows["lang_source"].to_pylist(), rows["script"].to_pylist()))
    assert got == [("1", "zara", "hr", "detected", "Latn"), ("2", "zara", "sr", "detected", "Cyrl"),
                   ("3", "zara", "en", "platform", "Latn"), ("4", "zara", None, None, None),
                   # konzum_hr's `lang:hr` sees the detected language: the Croatian post matches, the Serbian not
                   ("5", "konzum_hr", "hr", "detected", "Latn")]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["dead_letters_by_step"] == {"language": 1}
    assert counts["mentions_matched"] == 5 and counts["mentions_unmatched"] == 1 and counts["balanced"] is True
    langs = ds.dataset(tmp_path / "out" / "lang_metrics", format="parquet", partitioning="hive").to_table()
    day = [r for r in langs.to_pylist() if r["period"] == "day" and r["brand_id"] == "zara"]
    assert sorted((r["lang"], r["mentions"]) for r in day) == [("en", 1), ("hr", 1), ("sr", 1), ("und", 1)]


# ---- the hand-written set ---------------------------------------------------------------------

def _split(name: str) -> list:
    return [json.loads(line) for line in (DATA / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]


def _normalised(text: str) -> str:
    # Words, emoji and symbols count; punctuation does not ("Super!" and "super" are one text).
    kept = re.sub(r"[^\w\s]", lambda m: m.group() if ord(m.group()) > 0x2000 else " ", text.casefold())
    return " ".join(kept.split())


def test_no_text_is_in_both_splits_and_the_test_split_has_60_posts_per_language():
    test, validation = _split("test"), _split("validation")
    shared = {_normalised(r["text"]) for r in test} & {_normalised(r["text"]) for r in validation}
    assert shared <= {""}  # punctuation-only texts ('!!!', '...') normalise to nothing
    per = {}
    for row in test:
        key = row["lang"] if row["lang"] != "sr" else f"sr-{row['script']}"
        per[key] = per.get(key, 0) + 1
    assert {k: v >= 60 for k, v in per.items() if k} == {k: True for k in
                                                         ("en", "ru", "uk", "hr", "sr-Latn", "sr-Cyrl", "bs")}
    labelled = [row for row in test + validation if row["lang"] is not None]
    assert all(3 <= len(row["text"].split()) <= 25 for row in labelled)
    assert [row["id"] for row in test + validation if row["script"] != script_of(row["text"])] == []
