"""Stance toward each brand: target marking (models.stance) and the per-brand passes of ScoreTexts."""

from __future__ import annotations

import datetime

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from models.stance import TARGET_CLOSE, TARGET_OPEN, find_target, mark_target
from schemas import Mention
from tests.fakes import FakeSentimentHandler
from transforms.matching import Match
from transforms.scoring import ScoreTexts, brand_targets


def _mention(mid: str, text: str) -> Mention:
    values = {name: None for name in Mention._fields}
    values.update(id=mid, platform="x", text=text, connector="file", lang="en",
                  created_at=datetime.datetime(2026, 9, 7, 10, tzinfo=datetime.timezone.utc))
    return Mention(**values)


BOLT = Match("bolt", "untagged", "Bolt", "names")
UBER = Match("uber", "untagged", "Uber", "names")
LIDL = Match("lidl", "untagged", "Lidl", "names")
KONZUM = Match("konzum", "untagged", "Konzum", "names")


@pytest.mark.parametrize("text, name, span", [
    ("Bolt > Uber in Tallinn, not even close", "Uber", "Uber"),
    ("Konzum je skuplji od Lidla, a u Lidlu je sve svježe", "Lidl", "Lidla"),  # inflected: the whole word
    ("заказал в озоне, пришло через неделю", "Озон", "озоне"),  # case folded
    ("Kupio sam u Müller-u, a DM je jeftiniji", "Muller", "Müller"),  # diacritics folded
    ("thanks @Bolt_EE for the refund", "@Bolt_EE", "@Bolt_EE"),
])
def test_find_target_marks_the_word_that_names_the_brand(text, name, span):
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


def test_brand_targets_marks_each_brand_of_a_comparison_and_none_of_a_one_brand_post():
    comparison = [(_mention("m1", "Bolt > Uber in Tallinn, not even close"), (BOLT, UBER))]
    assert brand_targets(comparison) == [("bolt", "[[Bolt]] > Uber in Tallinn, not even close"),
                                         ("uber", "Bolt > [[Uber]] in Tallinn, not even close")]
    assert brand_targets([(_mention("m2", "Bolt driver was late again"), (BOLT,))]) == []
    # Uber matched by a rule that does not name it in the text: one brand located, no marked passes.
    assert brand_targets([(_mention("m3", "Bolt driver was late again"), (BOLT, UBER))]) == []


def _rows(out):
    return out["brand_mentions"] | beam.Map(lambda r: (r.mention_id, r.brand_id, r.sentiment, r.sentiment_target,
                                                       tuple(r.topics)))


def test_each_brand_of_a_comparison_gets_its_own_sentiment_through_the_step():
    posts = [
        (_mention("m1", "Love Bolt, but Uber was awful again"), (BOLT, UBER)),
        # The same text again (a repost): scored once, rows for both posts.
        (_mention("m2", "Love Bolt, but Uber was awful again"), (BOLT, UBER)),
        (_mention("m3", "Lidl delivery was great, Konzum delivery was the worst"), (LIDL, KONZUM)),
        (_mention("m4", "Bolt delivery arrived on time, great"), (BOLT,)),
    ]
    with TestPipeline() as p:
        out = p | beam.Create(posts) | ScoreTexts(FakeSentimentHandler(), progress=False)
        assert_that(_rows(out), equal_to([
            ("m1", "bolt", "positive", "brand", ()),
            ("m1", "uber", "negative", "brand", ()),
            ("m2", "bolt", "positive", "brand", ()),
            ("m2", "uber", "negative", "brand", ()),
            # Topics come from the unmarked text: both brands' rows carry the post's topic.
            ("m3", "lidl", "positive", "brand", ("purchase_delivery",)),
            ("m3", "konzum", "negative", "brand", ("purchase_delivery",)),
            ("m4", "bolt", "positive", "post", ("purchase_delivery",)),
        ]), label="rows")
        assert_that(out["dead_letters"], equal_to([]), label="no dead letters")


class _OneTextABatch(FakeSentimentHandler):
    """The fake model, one text per batch: a failure hits exactly the texts that hold ``fail_on``."""

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": 1}


def test_failed_marked_passes_fall_back_to_the_post_and_a_failed_post_pass_is_a_dead_letter():
    posts = [
        (_mention("m1", "Love Bolt, but Uber was awful again"), (BOLT, UBER)),
        (_mention("m2", "Poisoned: Bolt is great, Uber is bad"), (BOLT, UBER)),
        (_mention("m3", "Bolt app is fine"), (BOLT,)),
    ]
    with TestPipeline() as p:
        # Every marked text fails: each brand keeps the post's own sentiment, nothing is lost.
        out = p | beam.Create(posts) | ScoreTexts(_OneTextABatch(fail_on=TARGET_OPEN), progress=False)
        assert_that(_rows(out), equal_to([
            ("m1", "bolt", "negative", "post", ()),
            ("m1", "uber", "negative", "post", ()),
            ("m2", "bolt", "negative", "post", ()),
            ("m2", "uber", "negative", "post", ()),
            ("m3", "bolt", "neutral", "post", ()),
        ]), label="fallback rows")
        assert_that(out["dead_letters"], equal_to([]), label="no dead letters")
    with TestPipeline() as p:
        # m2's own pass and its marked passes fail: m2 is one dead letter, never a row; the others are rows.
        out = p | beam.Create(posts) | ScoreTexts(_OneTextABatch(fail_on="Poisoned"), progress=False)
        assert_that(_rows(out), equal_to([
            ("m1", "bolt", "positive", "brand", ()),
            ("m1", "uber", "negative", "brand", ()),
            ("m3", "bolt", "neutral", "post", ()),
        ]), label="rows")
        assert_that(out["dead_letters"] | beam.Map(lambda d: (d.step, d.source)), equal_to([("sentiment", "x:m2")]),
                    label="dead letters")


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


def test_a_model_not_trained_on_marks_keeps_one_label_per_post():
    posts = [(_mention("m1", "Love Bolt, but Uber was awful again"), (BOLT, UBER))]
    with TestPipeline() as p:
        out = p | beam.Create(posts) | ScoreTexts(FakeSentimentHandler(), progress=False, per_brand=False)
        assert_that(_rows(out), equal_to([("m1", "bolt", "negative", "post", ()),
                                          ("m1", "uber", "negative", "post", ())]))


def test_the_embedded_handler_reads_targets_only_with_a_head_trained_on_marks():
    import json

    from models.handler import ScorerModelHandler
    from models.head import head_metadata_path
    from models.embedded_scorer import DEFAULT_HEAD_PATH

    meta = json.loads(head_metadata_path(DEFAULT_HEAD_PATH).read_text(encoding="utf-8"))
    trained_on_marks = "target_marking" in meta["training_data"].get("handwritten", {})
    assert ScorerModelHandler("embedded").reads_targets is trained_on_marks
