"""Measures the topic models on hand-written held-out posts: primary-topic accuracy per language.

Run ``make eval-topics`` (or ``python tools/eval_topics.py [--split validation] [--tune]``).
It scores ``data/handwritten/topics/test.jsonl`` (never tuned on; ``--split validation`` for
the set the settings were chosen on) with every combination of

* scorer: today's mean-cosine scorer with the taxonomy as it shipped before this change
  (:data:`SHIPPED_TOPICS`, which has no ``churn``: its churn posts cannot be right), the
  mean-cosine scorer with the new taxonomy, and the few-shot classifier
  (:class:`models.taxonomy.TopicScorer`) with the new taxonomy;
* embeddings: (a) ``base``, the original top layers run as a second branch beside the
  fine-tuned ones (20 layers' work per text with the shipped model's 8 fine-tuned layers);
  (b) ``tuned``, the sentiment branch's own output, the head's input (12 layers); (c)
  ``tuned+layer11`` (that output and the layer below it, concatenated), ``layer11``, and
  ``layer8`` (hidden state 8, inside the fine-tuned stack), all from the same 12-layer pass;

and prints, per combination, the accuracy per language, then the confusion matrix of the
default, then the encoder's texts per second for each embedding variant (torch fp32, the
same texts, passes side by side in one run). A post's primary topic is the first topic of
its row (``other`` when the row has none). ``--tune`` prints the grid the defaults were
chosen from (validation split only). The default embedding is ``base``: the job scores
topics on the original top layers' output (docs/topics.md).
"""

from __future__ import annotations

import argparse
import collections
import json
import pathlib
import statistics
import sys
import time
from collections.abc import Callable, Sequence

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from models.taxonomy import (  # noqa: E402
    DEFAULT_FLOOR, DEFAULT_L2, DEFAULT_TOPICS, OTHER, MeanCosineTopicScorer, Topic, TopicScorer,
)

DATA = ROOT / "data" / "handwritten" / "topics"
LANGUAGES = ("en", "ru", "uk", "hr", "sr")
# name -> the layers whose pooled, unit-norm states are concatenated ("base": the original top branch;
# -1: the fine-tuned sentiment branch's output, the head's input; 11: the layer below it, same branch).
EMBEDDINGS: dict[str, tuple[int | str, ...]] = {
    "base": ("base",), "tuned": (-1,), "tuned+layer11": (-1, 11), "layer11": (11,), "layer8": (8,),
}
TARGET = 0.70

# The taxonomy as it shipped before the few-shot classifier (models/taxonomy.py at a90426f):
# today's baseline, measured as a user had it.
SHIPPED_TOPICS: tuple[Topic, ...] = (
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


def read_posts(path: pathlib.Path) -> list[dict]:
    """Reads a labelled split (JSON Lines: id, lang, script, topic, secondary, text)."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_encoder():
    """The shipped encoder in torch fp32, with the fine-tuned top layers AND the original ones beside them."""
    from models.embedded import ensure_embedded_checkpoint
    from models.encoder import E5Encoder
    from models.finetune import load_encoder_overrides
    from models.head import load_head
    from models.embedded_scorer import DEFAULT_HEAD_PATH

    _, metadata = load_head(DEFAULT_HEAD_PATH)
    checkpoint = ensure_embedded_checkpoint(None)
    overrides, _ = load_encoder_overrides(DEFAULT_HEAD_PATH, metadata, checkpoint)
    encoder = E5Encoder(checkpoint, state_overrides=overrides, keep_base_top=True)
    return encoder, metadata.get("encoder", {}).get("prefix", "query: ")


def embed_everything(encoder, prefix: str, texts: Sequence[str]) -> dict[str, dict[str, np.ndarray]]:
    """Every embedding variant of every text, from one branched pass: ``{variant: {text: vector}}``."""
    from models.text import model_text

    unique = list(dict.fromkeys(texts))
    layers = list(dict.fromkeys(layer for variant in EMBEDDINGS.values() for layer in variant))
    arrays = dict(zip(layers, encoder.embed_layers([model_text(t) for t in unique], layers, prefix=prefix),
                      strict=True))
    out = {}
    for name, variant in EMBEDDINGS.items():
        joined = np.concatenate([arrays[layer] for layer in variant], axis=1) / np.sqrt(len(variant))
        out[name] = dict(zip(unique, joined, strict=True))
    return out


def lookup(vectors: dict[str, np.ndarray]) -> Callable[[Sequence[str]], np.ndarray]:
    """An ``embed`` function reading precomputed vectors."""
    return lambda texts: np.stack([vectors[t] for t in texts])


def primary(rows: list[list[str]]) -> list[str]:
    """The first topic of each row, ``other`` for an empty row."""
    return [row[0] if row else OTHER for row in rows]


def accuracy_by_language(posts: Sequence[dict], predicted: Sequence[str]) -> dict[str, float]:
    """Share of posts whose primary topic is right, per language and ``all``."""
    hits: dict[str, list[bool]] = collections.defaultdict(list)
    for post, guess in zip(posts, predicted, strict=True):
        hits[post["lang"]].append(guess == post["topic"])
        hits["all"].append(guess == post["topic"])
    return {lang: float(np.mean(hits[lang])) for lang in (*LANGUAGES, "all") if hits[lang]}


def predict(kind: str, topics: Sequence[Topic], vectors: dict[str, np.ndarray], texts: Sequence[str],
            l2: float = DEFAULT_L2, floor: float = DEFAULT_FLOOR) -> list[str]:
    """Primary topics of ``texts`` by one scorer on one embedding variant."""
    embed = lookup(vectors)
    if kind == "mean-cosine":
        scorer = MeanCosineTopicScorer(topics, embed)
        return primary(scorer.label(scorer.scores(embed(texts))))
    scorer = TopicScorer(topics, embed, l2=l2, floor=floor)
    return primary(scorer.label(scorer.scores(embed(texts))))


def texts_per_second(encoder, prefix: str, texts: Sequence[str], passes: int) -> dict[str, float]:
    """Encoder throughput per layer set the job would ask for (torch fp32), passes interleaved."""
    from models.text import model_text

    clean = [model_text(t) for t in texts]
    layer_sets = {"sentiment + base branch (a)": (-1, "base"), "sentiment only (b)": (-1,),
                  "sentiment + layer 11 (c)": (-1, 11)}
    seconds: dict[str, list[float]] = {name: [] for name in layer_sets}
    for _ in range(passes):
        for name, layers in layer_sets.items():
            started = time.perf_counter()
            encoder.embed_layers(clean, layers, prefix=prefix)
            seconds[name].append(time.perf_counter() - started)
    return {name: len(texts) / statistics.median(values) for name, values in seconds.items()}


def confusion(posts: Sequence[dict], predicted: Sequence[str], names: Sequence[str]) -> str:
    """A text confusion matrix: rows gold, columns predicted."""
    short = [n[:8] for n in names]
    lines = ["gold \\ predicted".ljust(20) + " ".join(s.rjust(8) for s in short)]
    counts = collections.Counter(zip((p["topic"] for p in posts), predicted, strict=True))
    for gold in names:
        lines.append(gold[:19].ljust(20) + " ".join(str(counts[(gold, guess)]).rjust(8) for guess in names))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Prints the figures; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("test", "validation"), default="test")
    parser.add_argument("--tune", action="store_true", help="print the validation grid the defaults come from")
    parser.add_argument("--passes", type=int, default=3, help="timing passes per embedding variant")
    parser.add_argument("--default_embedding", default="base", choices=tuple(EMBEDDINGS))
    args = parser.parse_args(argv)
    split = "validation" if args.tune else args.split
    posts = read_posts(DATA / f"{split}.jsonl")
    texts = [p["text"] for p in posts]
    phrases = [p for taxonomy in (SHIPPED_TOPICS, DEFAULT_TOPICS) for t in taxonomy for p in t.phrases]
    started = time.perf_counter()
    encoder, prefix = load_encoder()
    vectors = embed_everything(encoder, prefix, phrases + texts)
    per_language = ", ".join(f"{lang} {sum(p['lang'] == lang for p in posts)}" for lang in LANGUAGES)
    embedded = len(set(phrases + texts))
    print(f"{split}: {len(posts)} posts ({per_language}); encoder loaded and {embedded} texts embedded in "
          f"{time.perf_counter() - started:.0f}s")
    if args.tune:
        for name in EMBEDDINGS:
            for l2 in (0.0003, 0.001, 0.003, 0.01):
                for floor in (0.15, 0.25, 0.35, 0.5):
                    acc = accuracy_by_language(posts, predict("few-shot", DEFAULT_TOPICS, vectors[name], texts, l2,
                                                              floor))
                    print(f"  {name:7s} l2={l2:<6} floor={floor:<4} "
                          + "  ".join(f"{k} {v:.3f}" for k, v in acc.items()))
        return 0
    header = "scorer / taxonomy / embeddings".ljust(44) + "  ".join(f"{lang:>5s}" for lang in (*LANGUAGES, "all"))
    print(header)
    runs = [("mean-cosine", "shipped", SHIPPED_TOPICS), ("mean-cosine", "new", DEFAULT_TOPICS),
            ("few-shot", "new", DEFAULT_TOPICS)]
    default_prediction = None
    for kind, taxonomy_name, taxonomy in runs:
        for name in EMBEDDINGS:
            predicted = predict(kind, taxonomy, vectors[name], texts)
            acc = accuracy_by_language(posts, predicted)
            below = "" if min(acc[lang] for lang in LANGUAGES) >= TARGET else "  (< 0.70 somewhere)"
            print(f"{kind} / {taxonomy_name} / {name}".ljust(44)
                  + "  ".join(f"{acc[lang]:5.3f}" for lang in (*LANGUAGES, "all")) + below)
            if kind == "few-shot" and name == args.default_embedding:
                default_prediction = predicted
    names = [t.name for t in DEFAULT_TOPICS]
    print(f"\nconfusion, few-shot / new / {args.default_embedding} (rows gold, columns predicted):")
    print(confusion(posts, default_prediction, names))
    if args.passes > 0:
        print(f"\nencoder texts/s, torch fp32, {len(texts)} posts, median of {args.passes} passes, one run:")
        for name, rate in texts_per_second(encoder, prefix, texts, args.passes).items():
            print(f"  {name:28s} {rate:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
