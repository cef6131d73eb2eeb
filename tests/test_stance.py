"""Stance toward each brand: segments and comparison cues (models.stance) and the per-brand rows of ScoreTexts."""

from __future__ import annotations

import ast
import datetime

import apache_beam as beam
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from models.stance import (
    COMPARISON,
    POST,
    SEGMENT,
    TARGET_CLOSE,
    TARGET_OPEN,
    CONCEDED_NEUTRAL,
    BrandStance,
    comparison,
    conceded,
    figures,
    find_target,
    mark_target,
    plan,
    resolve,
    segments,
)
from schemas import Mention
from tests.fakes import FakeSentimentHandler
from transforms.matching import Match
from transforms.scoring import ScoreTexts, stance_targets


def _mention(mid: str, text: str, lang: str = "en") -> Mention:
    values = {name: None for name in Mention._fields}
    values.update(id=mid, platform="x", text=text, connector="file", lang=lang,
                  created_at=datetime.datetime(2026, 9, 7, 10, tzinfo=datetime.timezone.utc))
    return Mention(**values)


def _match(brand: str, term: str) -> Match:
    return Match(brand, "untagged", term, "names")


BOLT, UBER, LIDL, KONZUM = _match("bolt", "Bolt"), _match("uber", "Uber"), _match("lidl", "Lidl"), _match(
    "konzum", "Konzum")
VOYO, NETFLIX, MEGOGO = _match("voyo", "Voyo"), _match("netflix", "Netflix"), _match("megogo", "Megogo")


def _spans(text: str, *names: str) -> dict[str, tuple[int, int]]:
    """Brand id (the name lowercased) -> where ``text`` names it (the name as written there)."""
    return {name.lower(): (text.index(name), text.index(name) + len(name)) for name in names}


# ---- finding and marking a brand's span (the marked training data of models.train_head) ----------------

@pytest.mark.parametrize("text, name, span", [
    ("Bolt > Uber in Tallinn, not even close", "Uber", "Uber"),
    ("Konzum je skuplji od Lidla, a u Lidlu je sve svježe", "Lidl", "Lidla"),  # inflected: the whole word
    ("заказал в озоне, пришло через неделю", "Озон", "озоне"),  # case folded
    ("Kupio sam u Müller-u, a DM je jeftiniji", "Muller", "Müller"),  # diacritics folded
    ("thanks @Bolt_EE for the refund", "@Bolt_EE", "@Bolt_EE"),
])
def test_find_target_finds_the_word_that_names_the_brand(text, name, span):
    start, end = find_target(text, name)
    assert text[start:end] == span
    assert mark_target(text, start, end) == text[:start] + TARGET_OPEN + span + TARGET_CLOSE + text[end:]


@pytest.mark.parametrize("text, name", [
    ("Rebolt your bike today", "Bolt"),  # inside another word
    ("Took a taxi, all fine", "Uber"),
    ("anything", "   "),
])
def test_find_target_is_none_where_the_text_does_not_name_it(text, name):
    assert find_target(text, name) is None


def test_mark_target_refuses_an_empty_or_outside_span():
    with pytest.raises(ValueError):
        mark_target("Bolt", 2, 2)
    with pytest.raises(ValueError):
        mark_target("Bolt", 1, 9)


# ---- segments -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, lang, expected", [
    ("Love Bolt, but Uber was awful again", "en", ["Love Bolt", "Uber was awful again"]),
    ("Bolt > Uber in Tallinn, not even close", "en", ["Bolt", "Uber in Tallinn", "not even close"]),
    ("starbucks vs Costa - Costa wins", "en", ["starbucks", "Costa", "Costa wins"]),
    # A decimal point and an abbreviation's dot do not end a clause.
    ("MTS mi je tražio 3.500 mesečno, Yettel isti paket za 2.200", "sr",
     ["MTS mi je tražio 3.500 mesečno", "Yettel isti paket za 2.200"]),
    ("ВТБ третий день не может провести платёж, а Сбер сделал это за секунду", "ru",
     ["ВТБ третий день не может провести платёж", "Сбер сделал это за секунду"]),
    ("моно заблокував рахунок але пумб відкрив фоп за день", "uk", ["моно заблокував рахунок", "пумб відкрив фоп за день"]),
    ("Lidl je opet bez kruha dok Spar uvijek ima svjezi", "hr", ["Lidl je opet bez kruha", "Spar uvijek ima svjezi"]),
    ("идеа има већи избор али макси је ближи", "sr", ["идеа има већи избор", "макси је ближи"]),
    # "a" is a clause break in Croatian, an article in English.
    ("u Konzumu guzva a u Lidlu mir", "hr", ["u Konzumu guzva", "u Lidlu mir"]),
    ("got a Bolt and a coffee", "en", ["got a Bolt and a coffee"]),
])
def test_segments_split_a_post_into_clauses_with_offsets_into_the_text(text, lang, expected):
    spans = segments(text, lang)
    assert [text[s:e] for s, e in spans] == expected
    assert all(0 <= s < e <= len(text) for s, e in spans)
    assert [s for s, _ in spans] == sorted(s for s, _ in spans)


_WORDS = st.sampled_from(["Bolt", "Uber", ">", "<", ",", ".", " ", "but", "a", "а", "но", "ali", "али", "vs", "3.500",
                          "better than", "лучше", "jeftiniji od", "switched from", "to", "на", "с", "i", "и", "—",
                          "\n", "é", "😀", "-", "never"])


@settings(max_examples=200, deadline=None)
@given(st.lists(_WORDS, max_size=20).map(" ".join), st.sampled_from(["en", "ru", "uk", "hr", "sr", "bs", None]))
def test_any_text_splits_into_clauses_inside_it_and_plans_without_error(text, lang):
    spans = segments(text, lang)
    assert all(0 <= s < e <= len(text) and text[s:e] == text[s:e].strip() for s, e in spans)
    assert all(e1 <= s2 for (_, e1), (s2, _) in zip(spans, spans[1:]))
    located = {b: find_target(text, name) for b, name in (("bolt", "Bolt"), ("uber", "Uber"))}
    located = {b: span for b, span in located.items() if span is not None}
    for stance in plan(text, located, lang):
        assert stance.source in (COMPARISON, SEGMENT, POST)
        assert stance.segment in text
        assert stance.label in (None, "positive", "negative")


# ---- comparison cues, per language -----------------------------------------------------------------------

@pytest.mark.parametrize("lang, text, winner, loser", [
    ("en", "Bolt > Uber in Tallinn, not even close", "Bolt", "Uber"),
    ("en", "honestly Uber < Bolt here", "Bolt", "Uber"),
    ("en", "Lidl is way cheaper than Konzum", "Lidl", "Konzum"),
    ("en", "Konzum is worse than Lidl for veg", "Lidl", "Konzum"),
    ("en", "switched from Uber to Bolt last month", "Bolt", "Uber"),
    ("en", "took Bolt instead of Uber tonight", "Bolt", "Uber"),
    ("en", "went back to Bolt after a year of Uber", "Bolt", "Uber"),
    ("ru", "ушёл с МТС на Билайн, интернет ловит", "Билайн", "МТС"),
    ("ru", "кинопоиск лучше иви, нет рекламы", "кинопоиск", "иви"),
    ("ru", "в мвидео тот же ноут дороже, чем в днс", "днс", "мвидео"),
    ("ru", "вернулся на эпл после xiaomi", "эпл", "xiaomi"),
    ("uk", "перейшла з привату на монобанк і забула про черги", "монобанк", "привату"),
    ("uk", "Samsung за 20 тисяч гірший за Xiaomi за 12", "Xiaomi", "Samsung"),
    ("uk", "дітям купую живчик замість колу", "живчик", "колу"),
    ("hr", "presla s Telemacha na A1, konacno signal", "A1", "Telemacha"),
    ("hr", "Bolt je u Zagrebu duplo jeftiniji od Ubera", "Bolt", "Ubera"),
    ("hr", "u Konzumu ista kava 2 eura skuplja nego u Lidlu", "Lidlu", "Konzumu"),
    ("hr", "djeci kupujem cedevitu umjesto coca cole", "cedevitu", "coca"),
    ("sr", "прешао са Јетела на А1, коначно сигнал", "А1", "Јетела"),
    ("sr", "сбб интернет је стабилнији од мтс-а", "сбб", "мтс"),
    ("sr", "CarGo je u Beogradu jeftiniji od Yandexa", "CarGo", "Yandexa"),
    ("sr", "vratio sam se na iPhone posle Xiaomija", "iPhone", "Xiaomija"),
    # A comparative after one brand alone: the other brand loses.
    ("hr", "ozujsko mi je preslatko, karlovacko je puno bolje pivo", "karlovacko", "ozujsko"),
    ("sr", "Арена стално руши апликацију, Нетфликс никад", "Нетфликс", "Арена"),
])
def test_a_comparison_cue_makes_the_winner_positive_and_the_loser_negative(lang, text, winner, loser):
    assert comparison(text, _spans(text, winner, loser), lang) == {winner.lower(): "positive",
                                                                   loser.lower(): "negative"}


@pytest.mark.parametrize("lang, text, closed, other", [
    ("en", "got it from Walmart because Target didn't have the size, came next day", "Target", "Walmart"),
    ("en", "ordered on Wolt because Glovo was closed", "Glovo", "Wolt"),
    ("en", "went to Lidl since Aldi was closed for the holiday, decent bread", "Aldi", "Lidl"),
    ("ru", "в Пятёрочке не было молока, взяла во ВкусВилле, дороже но свежее", "Пятёрочке", "ВкусВилле"),
    ("uk", "в Сільпо не було хліба, купила в АТБ по дорозі додому", "Сільпо", "АТБ"),
    ("hr", "uzeo Bolt jer Uber nije radio cijelu noć u Splitu", "Uber", "Bolt"),
    ("sr", "наручио сам преко Волта јер је Глово био затворен, стигло брзо", "Глово", "Волта"),
    ("sr", "naručio sam preko Wolta jer je Glovo bio zatvoren, stiglo brzo", "Glovo", "Wolta"),
])
def test_a_brand_that_could_not_serve_is_neutral_and_the_other_keeps_the_posts_label(lang, text, closed, other):
    assert comparison(text, _spans(text, closed, other), lang) == {closed.lower(): "neutral", other.lower(): None}


def test_a_brand_that_served_badly_is_not_read_as_unavailable():
    # A complaint about what a brand did is no "could not serve": no cue, each clause is scored.
    for lang, text, a, b in [("en", "Target had the wrong size again, Walmart got it right", "Target", "Walmart"),
                             ("ru", "в Пятёрочке было просроченное молоко, во ВкусВилле свежее", "Пятёрочке",
                              "ВкусВилле")]:
        assert comparison(text, _spans(text, a, b), lang) == {}


@pytest.mark.parametrize("lang, text, a, b", [
    ("en", "Uber is as bad as Bolt at the airport", "Uber", "Bolt"),
    ("ru", "что пятерочка, что магнит — просрочка одинаковая", "пятерочка", "магнит"),
    ("uk", "і ощад, і приват сьогодні лежать", "ощад", "приват"),
    ("hr", "i hz i zet danas kasne", "hz", "zet"),
    ("sr", "и гсп и воз данас касне", "гсп", "воз"),
    ("sr", "imam i xiaomi i samsung, oba telefona odlična", "xiaomi", "samsung"),
])
def test_an_alike_cue_gives_both_brands_the_posts_label(lang, text, a, b):
    assert comparison(text, _spans(text, a, b), lang) == {a.lower(): None, b.lower(): None}


@pytest.mark.parametrize("lang, text, a, b", [
    ("en", "Wolt and Glovo both fine in Split", "Wolt", "Glovo"),
    # A comparative cut off by "but": the clauses speak, not the cue.
    ("ru", "мегафон дороже, но в поездах ловит, а теле2 пропадает", "мегафон", "теле2"),
    ("hr", "Croatia Airlines skuplji ali pusti kofer, Ryanair naplatio ruksak", "Croatia", "Ryanair"),
])
def test_no_cue_where_the_post_compares_nothing(lang, text, a, b):
    assert comparison(text, _spans(text, a, b), lang) == {}


def test_cues_of_every_language_are_tried_when_the_language_is_unknown():
    text = "Bolt je jeftiniji od Ubera"
    assert comparison(text, _spans(text, "Bolt", "Ubera"), None) == {"bolt": "positive", "ubera": "negative"}


# ---- plan and resolve ------------------------------------------------------------------------------------

@pytest.mark.parametrize("lang, text, lower, higher", [
    ("en", "Lyft wanted $38 to the airport, Uber did it for $24", "Uber", "Lyft"),
    ("en", "Bolt showed up in 3 min, Uber said 15", "Bolt", "Uber"),
    ("ru", "Ozon везёт 5 дней, Wildberries 2 дня", "Wildberries", "Ozon"),  # "дней"/"дня": one unit
    ("uk", "Kyivstar просить 250 грн на місяць, lifecell той самий тариф за 180", "lifecell", "Kyivstar"),
    ("hr", "u Konzumu isti jogurt 2,49 eura, u Lidlu 1,99", "Lidl", "Konzum"),
    ("sr", "у Максију исте патике 11.990, у Лидлу 7.490", "Лидл", "Макси"),
])
def test_a_comparison_of_figures_makes_the_lower_positive_and_the_higher_negative(lang, text, lower, higher):
    labels = figures(text, _spans(text, lower, higher), lang)
    assert labels == {lower.lower(): "positive", higher.lower(): "negative"}
    # ... and plan takes it where no word cue reads the post.
    assert {s.brand: (s.source, s.label) for s in plan(text, _spans(text, lower, higher), lang)} == {
        lower.lower(): (COMPARISON, "positive"), higher.lower(): (COMPARISON, "negative")}


@pytest.mark.parametrize("lang, text, a, b", [
    ("en", "my Nike pair lasted 6 months, the Adidas pair is going on 3 years", "Nike", "Adidas"),  # two units
    ("uk", "водафон ліг за 10 хвилин, київстар тримався 4 години", "водафон", "київстар"),
    ("en", "Bolt came in 3 min, Uber was late again", "Bolt", "Uber"),  # one brand has no figure
    ("en", "Bolt and Uber both said 15 min tonight", "Bolt", "Uber"),  # one clause for both
    ("hr", "Bolt 12 eura, Uber 12 eura, isto", "Bolt", "Uber"),  # one value
    ("en", "Bolt 12 eur for 3 km, Uber 9 eur for 3 km", "Bolt", "Uber"),  # several figures a clause
])
def test_no_comparison_of_figures_where_they_do_not_compare_one_thing(lang, text, a, b):
    assert figures(text, _spans(text, a, b), lang) == {}


def test_plan_takes_a_cue_then_the_brands_clause_then_the_post():
    text = "Bolt > Uber in Tallinn"
    assert plan(text, _spans(text, "Bolt", "Uber"), "en") == (
        BrandStance("bolt", COMPARISON, "positive"), BrandStance("uber", COMPARISON, "negative"))
    text = "Bolt came in two minutes, but Uber was awful again"
    assert plan(text, _spans(text, "Bolt", "Uber"), "en") == (
        BrandStance("bolt", SEGMENT, segment="Bolt came in two minutes", conceded=True),
        BrandStance("uber", SEGMENT, segment="Uber was awful again"))
    # "Love Bolt" is one word besides the brand, and both brands share the one clause of the other post.
    text = "Love Bolt, but Uber was awful again"
    assert [s.source for s in plan(text, _spans(text, "Bolt", "Uber"), "en")] == [POST, SEGMENT]
    text = "Bolt and Uber were both late tonight"
    assert [s.source for s in plan(text, _spans(text, "Bolt", "Uber"), "en")] == [POST, POST]


def test_brands_alike_in_one_clause_take_that_clauses_label():
    # The post is a question (read neutral); the clause naming both brands says they are late.
    text = "i hz i zet danas kasne, sta je bilo s prometom u zagrebu?"
    assert plan(text, _spans(text, "hz", "zet"), "hr") == (
        BrandStance("hz", SEGMENT, segment="i hz i zet danas kasne"),
        BrandStance("zet", SEGMENT, segment="i hz i zet danas kasne"))
    # The alike cue spans the whole post: the post's label, as before.
    text = "Uber is as bad as Bolt at the airport"
    assert plan(text, _spans(text, "Uber", "Bolt"), "en") == (
        BrandStance("bolt", COMPARISON, None), BrandStance("uber", COMPARISON, None))
    # A brand that could not serve leaves the other brand to the post, even in one clause with it.
    text = "ordered on Wolt because Glovo was closed, took an hour"
    assert plan(text, _spans(text, "Glovo", "Wolt"), "en") == (
        BrandStance("glovo", COMPARISON, "neutral"), BrandStance("wolt", COMPARISON, None))


@pytest.mark.parametrize("lang, text, brand, expected", [
    ("en", "we keep Disney+ for the kids, but Netflix is what we actually watch", "Disney+", True),
    ("en", "we keep Disney+ for the kids, but Netflix is what we actually watch", "Netflix", False),
    ("ru", "зарплата приходит на ВТБ, но всё оплачиваю картой Альфы", "ВТБ", True),
    ("uk", "пенсію батькам платять через Ощад, але сам я тільки в Monobank", "Ощад", True),
    ("hr", "Voyo imamo zbog lige prvaka, ali Netflix gledamo svaku večer", "Voyo", True),
    ("sr", "у граду има и Идеа, али ја идем у Макси јер је ближи", "Идеа", True),
    ("sr", "u gradu ima i Idea, ali ja idem u Maxi jer je bliži", "Idea", True),
    # No contrast word after the clause: a list, not a concession.
    ("en", "Disney+ for the kids, Netflix for us", "Disney+", False),
    # "a" is Croatian for "but" and an English article: an English post's "a" concedes nothing.
    ("en", "we keep Disney+ for the kids, a treat after school", "Disney+", False),
])
def test_a_clause_followed_by_a_contrast_word_is_conceded(lang, text, brand, expected):
    seg = next((s, e) for s, e in segments(text, lang) if brand in text[s:e])
    assert conceded(text, seg[1], lang) is expected


def test_plan_marks_a_conceded_clause_and_resolve_makes_it_neutral_when_the_model_is_sure():
    text = "пенсію батькам платять через Ощад, але сам я тільки в Monobank, він зручніший"
    ours = {s.brand: s for s in plan(text, _spans(text, "Ощад", "Monobank"), "uk")}
    assert ours["ощад"] == BrandStance("ощад", SEGMENT, segment="пенсію батькам платять через Ощад", conceded=True)
    assert not ours["monobank"].conceded
    post_positive = (0.05, 0.15, 0.8)
    sure, unsure = (0.05, CONCEDED_NEUTRAL + 0.05, 0.25 - CONCEDED_NEUTRAL), (0.3, CONCEDED_NEUTRAL - 0.05, 0.35)
    assert resolve(ours["ощад"], post_positive, sure) == (pytest.approx(sure), SEGMENT)
    assert resolve(ours["ощад"], post_positive, unsure) == (pytest.approx(post_positive), POST)
    # The same clause without the contrast after it is not conceded: a neutral reading keeps the post's label.
    text = "пенсію батькам платять через Ощад. сам я тільки в Monobank, він зручніший"
    ours = {s.brand: s for s in plan(text, _spans(text, "Ощад", "Monobank"), "uk")}
    assert not ours["ощад"].conceded
    assert resolve(ours["ощад"], post_positive, sure) == (pytest.approx(post_positive), POST)


POST_NEGATIVE = (0.7, 0.2, 0.1)


@pytest.mark.parametrize("stance, segment, probs, source", [
    (BrandStance("b", COMPARISON, "positive"), None, (0.1, 0.2, 0.7), COMPARISON),  # the cue's class on top
    (BrandStance("b", COMPARISON, "negative"), None, POST_NEGATIVE, COMPARISON),
    (BrandStance("b", COMPARISON, None), None, POST_NEGATIVE, COMPARISON),  # alike: as the post
    (BrandStance("b", SEGMENT, segment="s"), (0.1, 0.1, 0.8), (0.1, 0.1, 0.8), SEGMENT),
    (BrandStance("b", SEGMENT, segment="s"), (0.2, 0.6, 0.2), POST_NEGATIVE, POST),  # neutral clause: the post
    (BrandStance("b", SEGMENT, segment="s"), None, POST_NEGATIVE, POST),  # the clause's pass failed
    # A conceded clause ("X for the kids, but ...") read as neutral with enough confidence: neutral.
    (BrandStance("b", SEGMENT, segment="s", conceded=True), (0.1, 0.8, 0.1), (0.1, 0.8, 0.1), SEGMENT),
    (BrandStance("b", SEGMENT, segment="s", conceded=True), (0.2, 0.6, 0.2), POST_NEGATIVE, POST),  # not enough
    (BrandStance("b", SEGMENT, segment="s", conceded=True), (0.1, 0.1, 0.8), (0.1, 0.1, 0.8), SEGMENT),
    (BrandStance("b", SEGMENT, segment="s", conceded=True), None, POST_NEGATIVE, POST),  # the pass failed
    (BrandStance("b", POST), None, POST_NEGATIVE, POST),
])
def test_resolve_gives_the_brands_probabilities_and_where_they_came_from(stance, segment, probs, source):
    assert resolve(stance, POST_NEGATIVE, segment) == (pytest.approx(probs), source)


# ---- through the job's scoring step ----------------------------------------------------------------------

def test_stance_targets_plan_each_located_brand_and_none_of_a_one_brand_post():
    assert stance_targets(_mention("m1", "Bolt > Uber in Tallinn, not even close"), (BOLT, UBER)) == (
        BrandStance("bolt", COMPARISON, "positive"), BrandStance("uber", COMPARISON, "negative"))
    assert stance_targets(_mention("m2", "Bolt driver was late again"), (BOLT,)) == ()
    # Uber matched by a rule that does not name it in the text: one brand located, nothing planned.
    assert stance_targets(_mention("m3", "Bolt driver was late again"), (BOLT, UBER)) == ()


def _rows(out):
    return out["brand_mentions"] | beam.Map(lambda r: (r.mention_id, r.brand_id, r.sentiment, r.sentiment_target,
                                                       tuple(r.topics)))


MULTI_LANGUAGE_POSTS = [
    (_mention("m1", "Bolt came in two minutes and it was great, but Uber was awful again"), (BOLT, UBER)),
    # The same text again (a repost): scored once, rows for both posts.
    (_mention("m2", "Bolt came in two minutes and it was great, but Uber was awful again"), (BOLT, UBER)),
    (_mention("m3", "Lidl delivery was great, Konzum delivery was the worst", "en"), (LIDL, KONZUM)),
    (_mention("m4", "Bolt delivery arrived on time, great"), (BOLT,)),
    (_mention("m5", "Bolt je u Zagrebu duplo jeftiniji od Ubera, loš dan za Uber", "hr"), (BOLT, UBER)),
    (_mention("m6", "u Lidlu je odličan kruh, a u Konzumu loš kruh", "hr"), (LIDL, KONZUM)),
    (_mention("m7", "перешёл с Uber на Bolt, доставка ужас", "ru"), (UBER, BOLT)),
    (_mention("m8", "и Bolt и Uber сегодня плохо работают", "ru"), (BOLT, UBER)),
    # A conceded clause read as neutral: its brand is neutral, not the post's positive.
    (_mention("m9", "Voyo imamo zbog lige prvaka, ali Netflix je super", "hr"), (VOYO, NETFLIX)),
    # ... and a clause read as neutral that concedes nothing keeps the post's label (Netflix here).
    (_mention("m10", "у нас є Megogo для тб, але серіали дивимось на Netflix, там все чудово", "uk"),
     (MEGOGO, NETFLIX)),
    # Figures compared: the lower one wins though no word says so.
    (_mention("m11", "Bolt je tražio 14 eura do aerodroma, Uber isti put za 9", "hr"), (BOLT, UBER)),
    # A brand that could not serve: neutral; the one the post went to instead: the post's label, in the same clause.
    (_mention("m12", "uzela sam Bolt jer Uber nije radio, vozač super", "hr"), (BOLT, UBER)),
]


def test_each_brand_gets_its_own_sentiment_and_says_where_it_came_from():
    with TestPipeline() as p:
        out = p | beam.Create(MULTI_LANGUAGE_POSTS) | ScoreTexts(FakeSentimentHandler(), progress=False)
        assert_that(_rows(out), equal_to([
            ("m1", "bolt", "positive", "segment", ()),
            ("m1", "uber", "negative", "segment", ()),
            ("m2", "bolt", "positive", "segment", ()),
            ("m2", "uber", "negative", "segment", ()),
            # Topics come from the whole text: both brands' rows carry the post's topic.
            ("m3", "lidl", "positive", "segment", ("purchase_delivery",)),
            ("m3", "konzum", "negative", "segment", ("purchase_delivery",)),
            # A post naming one brand keeps the post's label.
            ("m4", "bolt", "positive", "post", ("purchase_delivery",)),
            # "jeftiniji od": bolt wins though the post reads negative.
            ("m5", "bolt", "positive", "comparison", ()),
            ("m5", "uber", "negative", "comparison", ()),
            ("m6", "lidl", "positive", "segment", ()),
            ("m6", "konzum", "negative", "segment", ()),
            ("m7", "bolt", "positive", "comparison", ("purchase_delivery",)),
            ("m7", "uber", "negative", "comparison", ("purchase_delivery",)),
            # "и X и Y": alike, both the post's label.
            ("m8", "bolt", "negative", "comparison", ()),
            ("m8", "uber", "negative", "comparison", ()),
            ("m9", "voyo", "neutral", "segment", ()),
            ("m9", "netflix", "positive", "segment", ()),
            ("m10", "megogo", "neutral", "segment", ()),
            ("m10", "netflix", "positive", "post", ()),
            ("m11", "bolt", "negative", "comparison", ()),
            ("m11", "uber", "positive", "comparison", ()),
            ("m12", "bolt", "positive", "comparison", ()),
            ("m12", "uber", "neutral", "comparison", ()),
        ]), label="rows")
        assert_that(out["dead_letters"], equal_to([]), label="no dead letters")


def _append_line(row, path: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(repr(row) + "\n")


def _scored_rows(posts, path) -> list[tuple]:
    with TestPipeline() as p:
        out = p | beam.Create(posts) | ScoreTexts(FakeSentimentHandler(), progress=False)
        _ = _rows(out) | beam.Map(_append_line, str(path))
    rows = sorted(ast.literal_eval(line) for line in path.read_text(encoding="utf-8").splitlines())
    path.unlink()
    return rows


def test_a_posts_rows_do_not_depend_on_the_reposts_it_is_scored_with(tmp_path):
    # A repost shares the post's normalised text (the "RT @user:" prefix goes), so the two are one group when
    # a run sees them together and two when a sliced run sees them apart; here the repost's platform gave no
    # language, so its contrast words are not Croatian ones: each post must be planned on its own.
    original = (_mention("a1", "u Lidlu je odličan kruh a u Konzumu loš kruh", "hr"), (LIDL, KONZUM))
    repost = (_mention("a0", "RT @kupac: u Lidlu je odličan kruh a u Konzumu loš kruh", None), (LIDL, KONZUM))
    alone = _scored_rows([original], tmp_path / "rows") + _scored_rows([repost], tmp_path / "rows")
    together = _scored_rows([original, repost], tmp_path / "rows")
    assert together == sorted(alone)
    assert [r for r in together if r[0] == "a1"] == [("a1", "konzum", "negative", "segment", ()),
                                                     ("a1", "lidl", "positive", "segment", ())]


def test_a_comparison_rows_probabilities_put_its_label_on_top():
    posts = [(_mention("m1", "Bolt je u Zagrebu duplo jeftiniji od Ubera, loš dan", "hr"), (BOLT, UBER))]
    with TestPipeline() as p:
        out = p | beam.Create(posts) | ScoreTexts(FakeSentimentHandler(), progress=False)
        assert_that(out["brand_mentions"] | beam.Map(lambda r: (
            r.brand_id, r.sentiment, round(r.p_negative, 2), round(r.p_neutral, 2), round(r.p_positive, 2))),
            equal_to([("bolt", "positive", 0.05, 0.15, 0.8), ("uber", "negative", 0.8, 0.15, 0.05)]))


class _FailsOn(FakeSentimentHandler):
    """The fake model, one text per batch, failing on the texts that are exactly one of ``texts``."""

    def __init__(self, *texts: str):
        super().__init__()
        self._texts = set(texts)

    def run_inference(self, batch, model, inference_args=None):
        if self._texts & set(batch):
            raise RuntimeError("poisoned batch")
        return super().run_inference(batch, model, inference_args)

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": 1}


def test_a_failed_clause_pass_falls_back_to_the_post_and_a_failed_post_pass_is_a_dead_letter():
    m1 = "Bolt came in two minutes and it was great, but Uber was awful again"
    m2 = "Bolt was great today, Uber was bad today"
    posts = [(_mention("m1", m1), (BOLT, UBER)), (_mention("m2", m2), (BOLT, UBER)),
             (_mention("m3", "Bolt app is fine"), (BOLT,))]
    with TestPipeline() as p:
        # m1's Uber clause fails: uber keeps the post's sentiment, bolt its clause's; nothing is lost.
        out = p | beam.Create(posts) | ScoreTexts(_FailsOn("Uber was awful again"), progress=False)
        assert_that(_rows(out), equal_to([
            ("m1", "bolt", "positive", "segment", ()),
            ("m1", "uber", "negative", "post", ()),
            ("m2", "bolt", "positive", "segment", ()),
            ("m2", "uber", "negative", "segment", ()),
            ("m3", "bolt", "neutral", "post", ()),
        ]), label="fallback rows")
        assert_that(out["dead_letters"], equal_to([]), label="no dead letters")
    with TestPipeline() as p:
        # m2's own pass fails, its clauses do not: m2 is one dead letter, never a row; the others are rows.
        out = p | beam.Create(posts) | ScoreTexts(_FailsOn(m2), progress=False)
        assert_that(_rows(out), equal_to([
            ("m1", "bolt", "positive", "segment", ()),
            ("m1", "uber", "negative", "segment", ()),
            ("m3", "bolt", "neutral", "post", ()),
        ]), label="rows")
        assert_that(out["dead_letters"] | beam.Map(lambda d: (d.step, d.source)), equal_to([("sentiment", "x:m2")]),
                    label="dead letters")


def test_a_text_the_cues_cannot_read_keeps_the_posts_label(monkeypatch):
    import transforms.scoring

    def unreadable(_mention, _matches):
        raise RecursionError("a text no pattern can read")

    monkeypatch.setattr(transforms.scoring, "stance_targets", unreadable)
    posts = [(_mention("m1", "Bolt was great today, Uber was bad today"), (BOLT, UBER))]
    with TestPipeline() as p:
        out = p | beam.Create(posts) | ScoreTexts(FakeSentimentHandler(), progress=False)
        assert_that(_rows(out), equal_to([("m1", "bolt", "negative", "post", ()),
                                          ("m1", "uber", "negative", "post", ())]), label="rows")
        assert_that(out["dead_letters"], equal_to([]), label="no dead letters")


def test_training_examples_mark_each_target_and_keep_one_label_posts_both_ways():
    from models.train_head import LABELS, sentiment_examples, stance_examples

    stance = stance_examples([{"id": "s1", "lang": "hr", "text": "Konzum je skuplji od Lidla, ali je bliže",
                               "targets": [{"brand": "konzum", "span": "Konzum", "label": "negative"},
                                           {"brand": "lidl", "span": "Lidla", "label": "positive"}]}])
    assert [(e.text, LABELS[e.label], e.task) for e in stance] == [
        ("[[Konzum]] je skuplji od Lidla, ali je bliže", "negative", "stance"),
        ("Konzum je skuplji od [[Lidla]], ali je bliže", "positive", "stance")]
    one = sentiment_examples([{"id": "p1", "lang": "ru", "brand": "Озон", "label": "positive", "sarcasm": False,
                               "text": "Заказ с Озона пришёл на день раньше, спасибо @ozon_ru"}])
    assert [(e.text, e.task) for e in one] == [
        ("Заказ с Озона пришёл на день раньше, спасибо @user", "post"),
        ("Заказ с [[Озона]] пришёл на день раньше, спасибо @user", "target")]
    with pytest.raises(ValueError):
        stance_examples([{"id": "s2", "lang": "en", "text": "Bolt > Uber",
                          "targets": [{"brand": "lyft", "span": "Lyft", "label": "negative"}]}])


def test_training_without_marks_keeps_the_plain_posts_and_optionally_the_clauses_the_job_scores(tmp_path):
    import json

    from models.train_head import LABELS, handwritten_examples

    (tmp_path / "sentiment").mkdir()
    (tmp_path / "stance").mkdir()
    (tmp_path / "sentiment" / "train.jsonl").write_text(json.dumps(
        {"id": "p1", "lang": "hr", "brand": "Konzum", "label": "negative", "sarcasm": False,
         "text": "u Konzumu opet gužva na blagajni"}, ensure_ascii=False) + "\n", encoding="utf-8")
    (tmp_path / "stance" / "train.jsonl").write_text(json.dumps(
        {"id": "s1", "lang": "hr", "text": "Konzum je skuplji od Lidla",
         "targets": [{"brand": "konzum", "span": "Konzum", "label": "negative"},
                     {"brand": "lidl", "span": "Lidla", "label": "positive"}]}, ensure_ascii=False) + "\n",
        encoding="utf-8")
    assert [e.task for e in handwritten_examples(tmp_path, "train")] == ["post", "target", "stance", "stance"]
    plain = handwritten_examples(tmp_path, "train", marks="none")
    assert [(e.text, e.task) for e in plain] == [("u Konzumu opet gužva na blagajni", "post")]
    # The clauses the job scores for each brand, with that brand's label; none in validation.
    (tmp_path / "stance" / "train.jsonl").write_text(json.dumps(
        {"id": "s2", "lang": "hr", "text": "Lidl ima super voće, a Konzum opet prodaje stari kruh",
         "targets": [{"brand": "lidl", "span": "Lidl", "label": "positive"},
                     {"brand": "konzum", "span": "Konzum", "label": "negative"}]}, ensure_ascii=False) + "\n"
        + json.dumps({"id": "s3", "lang": "en", "text": "Bolt > Uber in Tallinn, not even close",  # a cue decides
                      "targets": [{"brand": "bolt", "span": "Bolt", "label": "positive"},
                                  {"brand": "uber", "span": "Uber", "label": "negative"}]}) + "\n",
        encoding="utf-8")
    clauses = handwritten_examples(tmp_path, "train", marks="clauses")
    assert [(e.text, LABELS[e.label], e.task) for e in clauses] == [
        ("u Konzumu opet gužva na blagajni", "negative", "post"),
        ("Konzum opet prodaje stari kruh", "negative", "clause"),
        ("Lidl ima super voće", "positive", "clause")]
    (tmp_path / "stance" / "validation.jsonl").write_text((tmp_path / "stance" / "train.jsonl").read_text("utf-8"),
                                                         encoding="utf-8")
    assert handwritten_examples(tmp_path, "validation", marks="clauses") == []
    assert len(handwritten_examples(tmp_path, "validation", marks="all")) == 4
    with pytest.raises(ValueError):
        handwritten_examples(tmp_path, "train", marks="some")


# ---- the stance-only evaluation: the job's plan, figures per source, the wrong targets --------------------

class _LexiconScorer:
    """The fake model's lexicon as an evaluation scorer (``predict_proba`` over texts)."""

    def predict_proba(self, texts):
        from tests.support.fake_model import _Lexicon
        return [_Lexicon().scores(text) for text in texts]


def test_stance_evaluation_labels_brands_as_the_job_does_and_lists_the_wrong_ones(tmp_path, capsys):
    import json

    from models.evaluate import evaluate_stance, print_stance

    posts = [
        {"id": "hr-1", "lang": "hr", "text": "HT me kostao 45 eura, A1 isti paket za 30",
         "targets": [{"brand": "ht", "span": "HT", "label": "negative"},
                     {"brand": "a1", "span": "A1", "label": "positive"}]},
        {"id": "en-1", "lang": "en", "text": "we keep Disney+ for the kids, but Netflix is what we love",
         "targets": [{"brand": "disney", "span": "Disney+", "label": "neutral"},
                     {"brand": "netflix", "span": "Netflix", "label": "positive"}]},
        {"id": "ru-1", "lang": "ru", "text": "Ozon и Wildberries сегодня привезли всё вовремя",
         "targets": [{"brand": "ozon", "span": "Ozon", "label": "positive"},
                     {"brand": "wb", "span": "Wildberries", "label": "positive"}]},
    ]
    path = tmp_path / "validation.jsonl"
    path.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in posts), encoding="utf-8")
    result = evaluate_stance(_LexiconScorer(), path)
    assert result["targets"] == 6
    assert result["per_brand"]["accuracy"] == round(4 / 6, 4)
    assert result["per_source"][COMPARISON] == {"targets": 2, "accuracy": 1.0}  # the figures
    assert result["per_source"][SEGMENT] == {"targets": 2, "accuracy": 1.0}  # the conceded clause, Netflix's
    assert result["per_source"][POST] == {"targets": 2, "accuracy": 0.0}  # no word the lexicon knows
    assert [(e["id"], e["brand"], e["gold"], e["predicted"], e["source"]) for e in result["errors"]] == [
        ("ru-1", "ozon", "positive", "neutral", POST), ("ru-1", "wb", "positive", "neutral", POST)]
    print_stance(result, errors=True)
    wrong = [line for line in capsys.readouterr().out.splitlines() if line.lstrip().startswith("wrong")]
    assert wrong == ["  wrong [post] ru-1 ozon: gold positive, got neutral | " + posts[2]["text"],
                     "  wrong [post] ru-1 wb: gold positive, got neutral | " + posts[2]["text"]]


@pytest.mark.parametrize("lang, text, untried, other", [
    ("en", "T-Mobile has been great. Verizon I don't know, never tried. AT&T was a nightmare", "Verizon", "T-Mobile"),
    ("en", "never tried Lyft, Uber was fine tonight", "Lyft", "Uber"),
    ("ru", "Самокат привёз быстро, Лавку пока не пробовал", "Лавку", "Самокат"),
    ("uk", "Glovo привезли за 20 хвилин, Rocket я ще не пробувала, але поки нема причин", "Rocket", "Glovo"),
    ("hr", "Wolt je super, nisam još probao Glovo", "Glovo", "Wolt"),
    ("sr", "Волт је супер, Глово још нисам пробао", "Глово", "Волт"),
    ("sr", "Wolt je super, Glovo jos nisam koristio", "Glovo", "Wolt"),
])
def test_a_brand_not_tried_yet_is_neutral_and_says_nothing_of_the_others(lang, text, untried, other):
    # Unlike a brand that could not serve, the other brands are not given the post's label: their clauses decide.
    assert comparison(text, _spans(text, untried, other), lang) == {untried.lower(): "neutral"}


def test_a_verdict_after_the_brand_is_not_read_as_untried():
    for lang, text, a, b in [("en", "Verizon I don't know why they charge so much, AT&T is fine", "Verizon", "AT&T"),
                             ("en", "Wolt? never tried a faster app than Glovo", "Wolt", "Glovo"),
                             ("ru", "Лавку не пробовал бы никому советовать, Самокат лучше", "Лавку", "Самокат")]:
        assert "neutral" not in comparison(text, _spans(text, a, b), lang).values(), text
