"""Topics without training: a taxonomy of named topics, each described by a few phrases.

Each topic is given as a name and a few descriptions or example phrases, in any of the
languages multilingual-e5 knows (they need not be the posts' languages: the encoder maps
languages onto one space). At load, every phrase is embedded once (``"query: "`` prefix,
as the posts are); a post's similarity to a topic is its mean cosine to the topic's
phrases (the mean, not the best: e5 finds texts of the same language more alike, and a
topic's best phrase would often be merely the one in the post's language). The
similarities are turned into independent scores in [0, 1] (multi-label)::

    margin_t = sim_t - mean over topics of sim
    score_t  = sigmoid(scale * (margin_t - offset))

so a score says how much more a post is about ``t`` than about the taxonomy at large,
which does not depend on how similar the encoder finds texts of that length or language
in general. ``other`` is the topic of posts that fit none: unless it is given phrases of
its own, its score is ``1 - max(score of the others)``.

The posts' embeddings come from the same encoder pass as their sentiment: the last layer,
or, when the shipped model has fine-tuned top layers, the original top layers run beside
them on the shared lower layers' output (fine-tuning for sentiment bends the geometry the
multilingual phrases rely on; see :mod:`models.sentiment`).
:class:`TopicScorer` holds the phrase embeddings and scores embeddings;
:data:`DEFAULT_TOPICS` is the customer-journey taxonomy used when the config names none.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np

OTHER = "other"
DEFAULT_THRESHOLD = 0.5
# Chosen on the English part of tests/data/sentiment_multilingual.jsonl only; the four other
# languages measure how the calibration transfers (README, "Sentiment model").
DEFAULT_SCALE = 40.0
DEFAULT_OFFSET = 0.01
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")


@dataclasses.dataclass(frozen=True)
class Topic:
    """One topic of a taxonomy.

    Attributes:
        name: Identifier written to ``brand_mentions.topics`` (lowercase, digits, ``_``).
        phrases: Descriptions or example phrases, any languages; empty only for ``other``.
    """

    name: str
    phrases: tuple[str, ...] = ()


# The customer journey brands care about. Phrases in the five languages served; a topic
# needs no more than a handful (more, in the posts' register, sharpen it).
DEFAULT_TOPICS: tuple[Topic, ...] = (
    Topic("product_experience", (
        "using the product: its quality, taste, look, how well it works",
        "the product broke, has a defect, stopped working, poor quality",
        "tastes great, works perfectly, the quality is excellent",
        "качество товара, вкус, брак, сломался, перестал работать",
        "якість товару, смак, брак, зламався",
        "kvaliteta proizvoda, okus, kvar, pokvario se",
        "квалитет производа, укус, квар, покварио се",
    )),
    Topic("price_promotion", (
        "price, too expensive, cheap, how much it costs",
        "discount, sale, promo code, coupon, special offer",
        "loyalty points, bonus points, cashback, membership rewards",
        "цена, дорого, скидка, промокод, акция, бонусные баллы",
        "ціна, дорого, знижка, промокод, бонуси",
        "cijena, skupo, popust, sniženje, promo kod, bodovi",
        "цена, скупо, попуст, снижење, промо код, поени",
    )),
    Topic("purchase_delivery", (
        "choosing what to buy, comparing models before buying",
        "buying, ordering online, checkout and payment",
        "in stock, out of stock, availability in shops, opening hours",
        "delivery, shipping, courier, the order arrived late, tracking the parcel",
        "выбор покупки, заказ, оплата, наличие в магазине, доставка, курьер",
        "вибір, замовлення, оплата, наявність, доставка, кур'єр",
        "kupnja, narudžba, plaćanje, dostupnost, dostava, dostavljač",
        "куповина, поруџбина, плаћање, достава, достављач",
    )),
    Topic("customer_service", (
        "customer support, contacting the help desk, hotline, chat with support",
        "a complaint and how the company handled it",
        "refund, return, warranty claim, repair service",
        "support answered quickly, no response from customer service",
        "служба поддержки, жалоба, возврат денег, гарантия, сервисный центр",
        "служба підтримки, скарга, повернення коштів, гарантія",
        "korisnička podrška, reklamacija, povrat novca, jamstvo, servis",
        "корисничка подршка, рекламација, повраћај новца, гаранција, сервис",
    )),
    Topic("marketing_content", (
        "advertisement, TV ad, commercial, billboard",
        "marketing campaign, sponsorship, brand ambassador, influencer collaboration",
        "product launch announcement, new flavour or model announced, presentation event",
        "реклама, рекламная кампания, анонс новинки, презентация, спонсор",
        "реклама, рекламна кампанія, анонс, презентація",
        "reklama, kampanja, najava novog proizvoda, sponzorstvo",
        "реклама, кампања, најава новог производа, спонзорство",
    )),
    Topic("loyalty_advocacy", (
        "I keep buying it again and again, loyal customer for years",
        "I recommend it to everyone, tell your friends",
        "fan of the brand, community of fans, sharing with fellow fans",
        "I will never buy it again, switching to a competitor, cancelled my subscription",
        "постоянный клиент, советую всем, фанат бренда, больше никогда не куплю",
        "постійний клієнт, раджу всім, фанат бренду",
        "vjerni kupac, preporučujem svima, obožavatelj brenda",
        "верни купац, препоручујем свима, фан бренда",
    )),
    Topic(OTHER),
)


def validate_taxonomy(topics: Sequence[Topic]) -> None:
    """Checks names and phrases.

    Raises:
        ValueError: On a bad or duplicate name, a topic without phrases (``other``
            excepted), or a taxonomy with nothing to score.
    """
    seen: set[str] = set()
    for topic in topics:
        if not _NAME_RE.match(topic.name):
            raise ValueError(f"topic name {topic.name!r}: use lowercase letters, digits and '_'")
        if topic.name in seen:
            raise ValueError(f"topic {topic.name!r} is listed twice")
        seen.add(topic.name)
        if not topic.phrases and topic.name != OTHER:
            raise ValueError(f"topic {topic.name!r} needs at least one description or example phrase")
        if any(not isinstance(p, str) or not p.strip() for p in topic.phrases):
            raise ValueError(f"topic {topic.name!r}: phrases must be non-empty strings")
    if not any(t.phrases for t in topics):
        raise ValueError("the taxonomy has no topic with phrases to score against")


def merge_taxonomy(
    custom: Sequence[Topic] = (), replace: bool = False, base: Sequence[Topic] = DEFAULT_TOPICS
) -> tuple[Topic, ...]:
    """Combines the default taxonomy with the config's topics.

    Args:
        custom: Topics from the config; one named like a default topic replaces it.
        replace: Use only ``custom`` (plus ``other``), not the defaults.
        base: The defaults.

    Returns:
        The taxonomy, ``other`` last.
    """
    merged = {} if replace else {t.name: t for t in base}
    for topic in custom:
        merged[topic.name] = Topic(topic.name, tuple(topic.phrases))
    other = merged.pop(OTHER, Topic(OTHER))
    topics = (*merged.values(), other)
    validate_taxonomy(topics)
    return topics


def taxonomy_fingerprint(topics: Sequence[Topic], scale: float, offset: float) -> str:
    """Returns 8 hex characters identifying a taxonomy and its calibration (for ``model_id``)."""
    text = repr([(t.name, t.phrases) for t in topics]) + f"|{scale}|{offset}"
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


class TopicScorer:
    """Scores unit-norm text embeddings against a taxonomy's phrase embeddings.

    Attributes:
        names: Topic names in taxonomy order (``other`` last when present).
        threshold: Score at or above which a topic is kept on a row.
    """

    def __init__(
        self,
        topics: Sequence[Topic],
        embed: Callable[[Sequence[str]], np.ndarray],
        threshold: float = DEFAULT_THRESHOLD,
        scale: float = DEFAULT_SCALE,
        offset: float = DEFAULT_OFFSET,
    ) -> None:
        """Embeds every phrase once.

        Args:
            topics: The taxonomy (validated here).
            embed: Texts -> unit-norm embeddings ``[n, dim]`` (the same encoder and prefix as
                the posts).
            threshold: Score at or above which a topic is kept, in (0, 1].
            scale: Sigmoid steepness over similarity margins.
            offset: Margin at which a topic scores 0.5.
        """
        validate_taxonomy(topics)
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"topic threshold must be in (0, 1], got {threshold}")
        self.names = tuple(t.name for t in topics)
        self.threshold = float(threshold)
        self.scale = float(scale)
        self.offset = float(offset)
        self.fingerprint = taxonomy_fingerprint(topics, self.scale, self.offset)
        scored = [t for t in topics if t.phrases]
        self._scored_names = tuple(t.name for t in scored)
        self._other = OTHER in self.names and OTHER not in self._scored_names
        phrases = [p for t in scored for p in t.phrases]
        self._owner = np.repeat(np.arange(len(scored)), [len(t.phrases) for t in scored])
        self._phrases = np.asarray(embed(phrases), dtype=np.float32)

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """Returns ``[n, len(names)]`` scores in [0, 1] for unit-norm embeddings ``[n, dim]``."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        cosine = embeddings @ self._phrases.T
        sims = np.full((len(embeddings), len(self._scored_names)), -np.inf, dtype=np.float32)
        for j in range(len(self._scored_names)):
            sims[:, j] = cosine[:, self._owner == j].mean(axis=1)
        margin = sims - sims.mean(axis=1, keepdims=True)
        scored = 1.0 / (1.0 + np.exp(-self.scale * (margin - self.offset)))
        columns = {name: scored[:, j] for j, name in enumerate(self._scored_names)}
        if self._other:
            columns[OTHER] = 1.0 - (scored.max(axis=1) if scored.shape[1] else np.zeros(len(embeddings)))
        return np.stack([columns[name] for name in self.names], axis=1).astype(np.float32)

    def label(self, scores: np.ndarray) -> list[list[str]]:
        """Returns, per row, the topics scoring at or above the threshold, best first."""
        out = []
        for row in scores:
            kept = [j for j in np.argsort(-row, kind="stable") if row[j] >= self.threshold]
            out.append([self.names[j] for j in kept])
        return out


def topics_from_mapping(raw: Mapping[str, Sequence[str]]) -> tuple[Topic, ...]:
    """Builds topics from ``{name: [phrases]}`` (as the config parser returns them)."""
    return tuple(Topic(name, tuple(phrases)) for name, phrases in raw.items())
