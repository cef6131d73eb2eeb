"""Sentiment scoring as a Beam step: RunInference over the matched posts.

Each matched post is scored once (not once per brand it mentions). Inference is
keyed: the key carries the post and its matches through RunInference, so the
scores come back attached to their record without a join (a CoGroupByKey would
shuffle every mention a second time for nothing). A batch the model fails on goes
to dead letters, one row per post, with the error.
"""

from __future__ import annotations

import typing

import apache_beam as beam
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference

from schemas import BrandMention, Mention
from transforms.dead_letters import dead_letter

# Columns a BrandMention copies from its Mention unchanged.
_COPIED = tuple(name for name in BrandMention._fields if name in Mention._fields and name != "id")


def to_brand_mentions(scored: typing.Tuple[typing.Tuple[Mention, tuple], PredictionResult]
                      ) -> typing.Iterator[BrandMention]:
    """Expands one scored post into one BrandMention per brand it mentions."""
    (mention, matches), result = scored
    scores = result.inference
    base = {name: getattr(mention, name) for name in _COPIED}
    for match in matches:
        yield BrandMention(
            mention_id=mention.id,
            brand_id=match.brand_id,
            match_kind=match.kind,
            matched_term=match.term,
            matched_rule=match.rule,
            sentiment=scores["sentiment"],
            p_negative=float(scores["p_negative"]),
            p_neutral=float(scores["p_neutral"]),
            p_positive=float(scores["p_positive"]),
            model_id=result.model_id,
            # A model without a topic head leaves these empty (not null: "no topic" is a fact).
            topics=list(scores.get("topics", ())),
            topic_scores={str(k): float(v) for k, v in dict(scores.get("topic_scores", {})).items()},
            **base,
        )


def _failed_batch_to_dead_letters(failure):
    batch, exc = failure
    for (mention, _matches), _text in batch:
        yield dead_letter("sentiment", f"model failed on the batch: {type(exc).__name__}: {exc}", mention,
                          f"{mention.platform}:{mention.id}")


class ScoreSentiment(beam.PTransform):
    """(mention, matches) in; {'brand_mentions', 'dead_letters'} out.

    Args:
        model_handler: An unkeyed ModelHandler from text to a PredictionResult whose
            `inference` holds sentiment, p_negative, p_neutral and p_positive.
    """

    def __init__(self, model_handler: ModelHandler):
        super().__init__()
        self._handler = model_handler

    def expand(self, matched):
        main, failures = (
            matched
            | "ToKeyedText" >> beam.Map(lambda pair: (pair, pair[0].text))
            | "RunInference" >> RunInference(KeyedModelHandler(self._handler)).with_exception_handling()
        )
        rows = main | "ToBrandMentions" >> beam.FlatMap(to_brand_mentions).with_output_types(BrandMention)
        dead = failures.failed_inferences | "FailedToDeadLetters" >> beam.FlatMap(_failed_batch_to_dead_letters)
        return {"brand_mentions": rows, "dead_letters": dead}
