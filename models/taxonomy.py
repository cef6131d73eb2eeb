"""Topics without a training step for the user: a taxonomy of named topics, each given by example posts.

Each topic is a name and a few descriptions or example posts, in any of the languages
multilingual-e5 knows (the encoder maps languages onto one space, so English examples also
catch Croatian posts, though examples in the posts' languages help). When a worker starts,
:class:`TopicScorer` embeds every example once (``"query: "`` prefix, as the posts are) and
FITS a few-shot classifier on them: one-vs-rest logistic regressions over the standardised
embeddings, L2-regularised, each topic's examples against every other topic's, with balanced
class weights (a topic with 30 examples weighs as much as one with 10), solved by a fixed
number of accelerated gradient steps from zero, so the fit is deterministic and takes well
under a second for a few hundred examples. A post's score for topic ``t`` is the regression's
probability that the post is about ``t``; the scores are independent (multi-label), so a post
about a late parcel AND a refused refund can score high on both.

``other`` is the topic of posts that fit none. With example posts of its own (the default
taxonomy has chit-chat, off-topic and company news) it is a topic like the others; without,
its score says how far the best topic falls short of the floor. :func:`label_rows` gives a
row its primary topic (the best, if it reaches the calibrated floor, :data:`DEFAULT_FLOOR`,
and beats ``other``), then any other topic at or above the threshold, best first; or
``other`` alone.

The posts' embeddings come from the same encoder pass as their sentiment (see
:mod:`models.embedded_scorer`); which layer is chosen, and why, is in ``docs/topics.md``.
:class:`MeanCosineTopicScorer` is the previous scorer (mean cosine to a topic's phrases,
margin over the taxonomy's mean, sigmoid), kept for comparison by ``tools/eval_topics.py``.
:data:`DEFAULT_TOPICS` is the customer-journey taxonomy used when the config names none.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Sequence

import numpy as np

from models.validation import check_named_phrases

OTHER = "other"
DEFAULT_THRESHOLD = 0.5
# L2 strength of the few-shot regressions and the gradient steps they get; chosen on
# data/handwritten/topics/validation.jsonl (tools/eval_topics.py --tune), never on test.jsonl.
DEFAULT_L2 = 0.001
FIT_STEPS = 400
# The score a post's best topic needs to be its primary topic rather than ``other``. The fit's
# scores are under-confident on posts (the examples are short and clean; posts are not):
# validation posts whose best topic scores 0.25-0.5 are right far more often than not.
DEFAULT_FLOOR = 0.25
# The previous scorer's calibration (MeanCosineTopicScorer), kept as it shipped.
DEFAULT_SCALE = 40.0
DEFAULT_OFFSET = 0.01
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")


@dataclasses.dataclass(frozen=True)
class Topic:
    """One topic of a taxonomy.

    Attributes:
        name: Identifier written to ``brand_mentions.topics`` (lowercase, digits, ``_``).
        phrases: Example posts or descriptions, any languages; empty only for ``other``.
    """

    name: str
    phrases: tuple[str, ...] = ()


# The customer journey brands care about, each topic given by example posts written by hand
# for this project (en, ru, uk, hr, sr; five each), in the register of posts. They are the
# classifier's training data: the held-out posts in data/handwritten/topics/ are about other
# situations, and tests/test_topics_data.py checks that no text occurs in both.
# Churn (leaving for a competitor, cancelling, "never again") is a topic of its own:
# loyalty_advocacy is positive loyalty only (docs/topics.md says why).
DEFAULT_TOPICS: tuple[Topic, ...] = (
    Topic("product_experience", (
        "the new Galaxy battery dies by lunch, so disappointed",
        "these running shoes fell apart after a month of jogging",
        "honestly the best coffee they've ever made, so smooth",
        "the app keeps crashing every time I open my account, useless update",
        "новый айфон греется как утюг, камера мылит",
        "шоколадка уже не та, вкус как у картона",
        "пылесос работает третий год без единой проблемы, топ",
        "мобильный интернет постоянно пропадает по вечерам",
        "кросівки розклеїлися після двох тижнів, якість жах",
        "нова кава в них реально смачна, не очікувала",
        "застосунок банку зависає на кожному платежі",
        "телевізор показує чудово, картинка просто вогонь",
        "nova Cedevita ima neki čudan okus, previše slatko",
        "mobitel se sam gasi na 30% baterije, katastrofa",
        "jakna se raspala nakon prvog pranja",
        "signal u Zagorju je odličan, nikad ne pada",
        "нови Смоки је много слађи него раније, не свиђа ми се",
        "пуњач се прегрева и телефон се пуни по три сата",
        "internet u stanu je spor kao puž",
        "ove patike su najudobnije koje sam ikad nosio",
        "the headphones sound muddy and the left one crackles",
        "стиральная машина прыгает по всей ванной на отжиме",
        "ця помада тримається весь день, навіть після кави",
        "pegla curi i ostavlja mrlje po košulji",
        "бојлер греје воду за десет минута, одличан је",
    )),
    Topic("price_promotion", (
        "$7 for a latte now?? prices are getting ridiculous",
        "use code SPRING20 for 20% off everything this weekend",
        "black friday deal: half price on all headphones",
        "finally redeemed my loyalty points for a free pizza",
        "цены опять подняли, молоко уже 120 рублей",
        "скидка 30% по промокоду до конца недели",
        "кэшбэк вернули баллами, удобно",
        "слишком дорого для такого качества, не стоит своих денег",
        "знову підняли ціни на хліб і молоко",
        "знижка 50% на другу піцу по вівторках",
        "нарахували бонуси за покупку, можна оплатити ними наступне замовлення",
        "ціна за тариф виросла на 40 гривень без попередження",
        "Konzum opet digao cijene, ulje skuplje za euro",
        "akcija u Lidlu: sve kave 2+1 gratis",
        "popust od 20% s kodom LJETO na cijeli asortiman",
        "preskupo je to za obične tenisice, 150 eura",
        "цене у Максију расту сваке недеље",
        "попуст 40% на сву гардеробу до недеље",
        "sakupila sam dovoljno poena na kartici lojalnosti za vaučer",
        "poskupeo paket za internet, sad je 3000 dinara",
        "is it just me or did the meal deal get more expensive",
        "в пятницу все товары со скидкой 15% по карте магазина",
        "вартість доставки тепер 100 гривень, раніше була безкоштовна",
        "sniženje na zimske jakne, sve po 30 eura",
        "рате без камате на све телевизоре овог месеца",
    )),
    Topic("purchase_delivery", (
        "my parcel says delivered but nothing at my door",
        "can't decide between the iPhone and the Pixel, which one should I get?",
        "PS5 out of stock again in every store in town",
        "checkout keeps failing when I try to pay with my card",
        "заказ едет уже третью неделю, трек не обновляется",
        "курьер привез не тот размер",
        "в магазине нет нужной модели, сказали ждать поставку месяц",
        "не могу оформить заказ на сайте, оплата не проходит",
        "Нова Пошта загубила мою посилку, вже тиждень шукають",
        "замовила на Розетці, привезли наступного дня, швидко",
        "в жодному магазині немає потрібного розміру",
        "кур'єр не приїхав у вказаний час",
        "paket iz Shein-a stiže već mjesec dana",
        "dostava je kasnila sat vremena, hrana stigla hladna",
        "nigdje nema PS5 na zalihi",
        "ne mogu platiti karticom na web shopu, javlja grešku",
        "поруџбина још није стигла, касни пет дана",
        "курир је оставио пакет код комшије без питања",
        "koji laptop da uzmem za faks, Lenovo ili Asus?",
        "u Ikei nije bilo kreveta koji sam htela, rasprodato",
        "the courier called, said he's outside, he was not outside",
        "пункт выдачи закрыт, а заказ хранится только три дня",
        "зробила замовлення о 10, а о 12 вже забрала в магазині",
        "dostavljač je ostavio paket pred zgradom na kiši",
        "naručio sam preko sajta, plaćanje pouzećem, stiglo za dva dana",
    )),
    Topic("customer_service", (
        "been on hold with support for 50 minutes",
        "they refunded my money within a day, great service",
        "returned the broken blender and the shop refused a refund",
        "sent three emails to customer care and no reply",
        "в поддержке мне так и не смогли помочь",
        "оформил возврат, деньги вернули за два дня, спасибо",
        "по гарантии отказали в ремонте, говорят сам уронил",
        "оператор горячей линии нахамил и бросил трубку",
        "підтримка відповіла за хвилину і все вирішила",
        "третій тиждень чекаю на повернення коштів",
        "у сервісному центрі тримають телефон вже місяць",
        "написала скаргу, а мені відповіли шаблонною відпискою",
        "korisnička podrška ne odgovara na mailove",
        "vratili su mi novac bez ikakvih pitanja, svaka čast",
        "reklamaciju su odbili jer nemam račun",
        "prodavačica je bila jako ljubazna i sve mi objasnila",
        "корисничка подршка ме врти у круг већ недељу дана",
        "сервис им је одбио гаранцију без објашњења",
        "pozvala sam call centar i za 5 minuta su rešili problem",
        "tražim povraćaj novca već mesec dana, niko se ne javlja",
        "the chatbot keeps sending me FAQ links instead of a person",
        "менеджер пообещал перезвонить и пропал",
        "в магазині без проблем замінили куртку на інший розмір",
        "nitko iz službe za korisnike ne zna odgovor na moje pitanje",
        "жалио сам се због погрешног рачуна, исправили су за дан",
    )),
    Topic("marketing_content", (
        "the new Christmas ad made me cry",
        "why is every influencer suddenly posting about this energy drink",
        "big launch event today, they announced the new laptops",
        "saw their giant billboard on the highway, pretty clever slogan",
        "новая реклама с котом просто шедевр",
        "бренд стал спонсором сборной по футболу",
        "анонсировали новый вкус, выйдет в сентябре",
        "этот ролик крутят по телеку каждые пять минут, надоел",
        "реклама монобанку як завжди смішна 😂",
        "бренд запустив колаборацію з відомим блогером",
        "презентація нової лінійки відбудеться в четвер",
        "їхній інстаграм публікує класні меми",
        "nova reklama Podravke je baš simpatična",
        "vidio sam njihov plakat na Jarunu, kreativno",
        "najavili su novi okus za ljeto",
        "sponzoriraju Dinamo od ove sezone",
        "нова реклама Јелен пива је урнебесна",
        "најавили су нови модел за пролеће",
        "njihova kampanja sa influenserima je baš iritantna",
        "Telekom sponzoriše koncert na Ušću",
        "their new packaging design for the holidays is gorgeous",
        "видели новый слоган? звучит так себе",
        "бренд показав нову колекцію на показі в Києві",
        "cijeli grad je oblijepljen njihovim posterima",
        "gledao sam njihov novi spot na YouTube-u, odličan je",
    )),
    Topic("loyalty_advocacy", (
        "been buying their jeans for ten years, never disappointed",
        "I recommend this bank to all my friends",
        "huge fan of this brand, got the whole collection",
        "will definitely order again, my go-to place",
        "беру только у них уже много лет, ни разу не подвели",
        "советую всем знакомым, лучший магазин",
        "фанат бренда с детства ❤️",
        "снова закажу, уже постоянный клиент",
        "користуюсь тільки їхнім банком вже шість років",
        "раджу всім друзям, не пошкодуєте",
        "обожнюю цей бренд, маю всі їхні худі",
        "точно замовлю ще, тепер тільки у них",
        "vjerna sam im kupkinja već deset godina",
        "preporučujem svima, najbolja pekara u gradu",
        "fan sam ovog brenda od malena",
        "sigurno opet naručujem, uvijek se vraćam njima",
        "годинама купујем само код њих, никад нисам погрешио",
        "препоручујем свима, најбоља пицерија у граду",
        "veliki sam fan ovog brenda",
        "opet ću naručiti, stalni sam kupac",
        "my whole family only uses this airline, always a pleasure",
        "уже пятый телефон этой марки подряд и не жалею",
        "моя улюблена кав'ярня, ходжу щодня вже три роки",
        "kupujem samo njihove proizvode, nikad me nisu iznevjerili",
        "сви у породици користимо само њихову банку и задовољни смо",
    )),
    Topic("churn", (
        "cancelled my subscription, not worth it anymore",
        "switching to another carrier next month, done with this one",
        "never buying from them again",
        "closed my account and moved my savings to another bank",
        "ухожу к другому оператору, надоело",
        "отменил подписку, больше не плачу за это",
        "больше никогда у них ничего не куплю",
        "закрыл карту и перешел в другой банк",
        "переходжу до іншого оператора, з мене досить",
        "скасувала підписку, більше не користуюсь",
        "більше ніколи не замовлятиму в них",
        "розірвав договір з провайдером і підключився до іншого",
        "prelazim na Telemach, dosta mi je",
        "otkazala sam pretplatu, ne isplati se",
        "nikad više ne kupujem kod njih",
        "raskinuo sam ugovor i prešao drugom operateru",
        "прелазим код другог оператера чим истекне уговор",
        "отказао сам претплату, нема смисла плаћати",
        "više nikad ne naručujem od njih, gotovo",
        "zatvorio sam račun i prebacio platu u drugu banku",
        "I'm out, deleting the app and taking my business elsewhere",
        "сдал абонемент в спортзал, больше туда не пойду",
        "вже замовила в конкурентів, а вам бувайте",
        "otkazujem paket čim mi istekne obveza",
        "prebacujem broj kod konkurencije, ovde mi je dosta",
    )),
    Topic(OTHER, (
        "good morning everyone, what a sunny day",
        "anyone watching the match tonight?",
        "lol my cat just knocked over my coffee",
        "the company's shares fell 3% after the earnings report",
        "всем привет, как выходные?",
        "кто смотрел вчерашний матч?",
        "погода сегодня отличная, иду гулять",
        "акции компании выросли после отчета",
        "доброго ранку, гарного всім дня",
        "хто йде на концерт у суботу?",
        "мій кіт знову спить на клавіатурі",
        "компанія відкрила новий офіс у Львові",
        "dobro jutro svima, kava i idemo",
        "tko gleda utakmicu večeras?",
        "kiša cijeli dan, nikamo ne idem",
        "tvrtka je objavila rezultate za prvi kvartal",
        "добро јутро свима, леп дан",
        "idemo li na koncert u subotu?",
        "киша пада цео дан, нигде не идем",
        "kompanija zapošljava nove radnike u Nišu",
        "happy birthday to my brother!!",
        "наконец-то отпуск, еду на море",
        "як гадаєте, завтра буде дощ?",
        "jučer sam gledala dobar film, preporuka",
        "дан је био дуг, идем да спавам",
    )),
)


def validate_taxonomy(topics: Sequence[Topic]) -> None:
    """Checks names and phrases.

    Raises:
        ValueError: On a bad or duplicate name, a topic without phrases (``other``
            excepted), or a taxonomy with nothing to score.
    """
    check_named_phrases(topics, "topic", _NAME_RE, "lowercase letters, digits and '_'", may_lack_phrases=(OTHER,))
    if not any(t.phrases for t in topics):
        raise ValueError("the taxonomy has no topic with phrases to score against")


def merge_taxonomy(
    custom: Sequence[Topic] = (), replace: bool = False, base: Sequence[Topic] = DEFAULT_TOPICS
) -> tuple[Topic, ...]:
    """Combines the default taxonomy with the config's topics.

    Args:
        custom: Topics from the config; one named like a default topic replaces it.
        replace: Use only ``custom`` (plus ``other``, without examples unless given), not the defaults.
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


def taxonomy_fingerprint(topics: Sequence[Topic], *settings: float | str) -> str:
    """Returns 8 hex characters identifying a taxonomy and its scorer's settings (for ``model_id``)."""
    text = repr([(t.name, t.phrases) for t in topics]) + "|" + "|".join(str(s) for s in settings)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow warnings for large |z|


def fit_one_vs_rest(
    features: np.ndarray, owner: np.ndarray, classes: int, l2: float = DEFAULT_L2, steps: int = FIT_STEPS
) -> tuple[np.ndarray, np.ndarray]:
    """Fits one L2-regularised logistic regression per class, that class against the rest.

    Each class's positives and negatives are weighted to equal totals (balanced), so a score
    of 0.5 means "as likely this topic as not", whatever the number of examples. Nesterov's
    accelerated gradient with the step ``1 / L`` (``L`` bounds the loss's curvature) from zero
    weights: the same examples give the same weights, bit for bit, on the same machine.

    Args:
        features: ``[n, d]`` standardised example embeddings.
        owner: ``[n]`` class index of each example.
        classes: Number of classes.
        l2: Weight of ``0.5 * ||W||^2`` in the mean loss (bias not penalised).
        steps: Gradient steps.

    Returns:
        ``(weights [d, classes], bias [classes])``.
    """
    n, d = features.shape
    targets = (owner[:, None] == np.arange(classes)[None, :]).astype(np.float64)
    positives = targets.sum(axis=0)
    negatives = n - positives
    # Balanced: each class's positives together weigh n/2, its negatives n/2.
    sample_weight = np.where(targets > 0, n / (2.0 * np.maximum(positives, 1.0)),
                             n / (2.0 * np.maximum(negatives, 1.0)))
    x = np.hstack([features.astype(np.float64), np.ones((n, 1))])
    spectral = float(np.linalg.norm(x, 2)) ** 2
    step = 1.0 / (sample_weight.max() * spectral / (4.0 * n) + l2)
    penalty = np.ones((d + 1, 1))
    penalty[-1] = 0.0
    weights = np.zeros((d + 1, classes))
    previous = weights
    for k in range(1, steps + 1):
        look = weights + (k - 1.0) / (k + 2.0) * (weights - previous)
        gradient = x.T @ ((_sigmoid(x @ look) - targets) * sample_weight) / n + l2 * penalty * look
        previous, weights = weights, look - step * gradient
    return weights[:-1].astype(np.float32), weights[-1].astype(np.float32)


class _ExampleScorer:
    """What both scorers share: the taxonomy's names and threshold, its examples embedded once, ``other``.

    Attributes:
        names: Topic names in taxonomy order (``other`` last when present).
        threshold: Score at or above which a topic is kept on a row.
    """

    def __init__(self, topics: Sequence[Topic], embed: Callable[[Sequence[str]], np.ndarray],
                 threshold: float) -> None:
        validate_taxonomy(topics)
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"topic threshold must be in (0, 1], got {threshold}")
        self.names = tuple(t.name for t in topics)
        self.threshold = float(threshold)
        scored = [t for t in topics if t.phrases]
        self._scored_names = tuple(t.name for t in scored)
        # ``other`` without examples of its own is scored from the other topics' scores.
        self._other = OTHER in self.names and OTHER not in self._scored_names
        self._owner = np.repeat(np.arange(len(scored)), [len(t.phrases) for t in scored])
        self._examples = np.asarray(embed([p for t in scored for p in t.phrases]), dtype=np.float32)

    def _columns(self, scored: np.ndarray, other: np.ndarray) -> np.ndarray:
        """The scored topics' columns ``[n, len(scored)]`` and ``other``'s, in :attr:`names` order."""
        columns = {name: scored[:, j] for j, name in enumerate(self._scored_names)}
        if self._other:
            columns[OTHER] = other
        return np.stack([columns[name] for name in self.names], axis=1).astype(np.float32)


class TopicScorer(_ExampleScorer):
    """A few-shot topic classifier fitted on a taxonomy's example embeddings when it is built.

    Attributes:
        names: Topic names in taxonomy order (``other`` last when present).
        threshold: Score at or above which a topic is kept on a row.
        fingerprint: Identifies the taxonomy and the fit's settings (part of ``model_id``).
    """

    def __init__(
        self,
        topics: Sequence[Topic],
        embed: Callable[[Sequence[str]], np.ndarray],
        threshold: float = DEFAULT_THRESHOLD,
        l2: float = DEFAULT_L2,
        steps: int = FIT_STEPS,
        floor: float = DEFAULT_FLOOR,
    ) -> None:
        """Embeds every example once and fits the classifier.

        Args:
            topics: The taxonomy (validated here).
            embed: Texts -> embeddings ``[n, dim]`` (the same encoder, layer and prefix as the posts).
            threshold: Score at or above which a topic is kept, in (0, 1].
            l2: L2 strength of the regressions.
            steps: Gradient steps of the fit.
            floor: Score the best topic needs to be the primary one rather than ``other``
                (capped by ``threshold``).
        """
        super().__init__(topics, embed, threshold)
        self.floor = min(float(floor), self.threshold)
        self.fingerprint = taxonomy_fingerprint(topics, "ovr", l2, steps, self.floor)
        examples = self._examples
        self._mean = examples.mean(axis=0)
        # One scale for all dimensions (not per dimension): with a few examples, per-dimension
        # variances are noise, and they would blow up dimensions the examples barely use.
        self._scale = float(np.sqrt(((examples - self._mean) ** 2).sum(axis=1).mean())) or 1.0
        if len(self._scored_names) == 1:
            # One topic has nothing to be told apart from: its score is its examples' fit alone.
            self._weights, self._bias = np.zeros((examples.shape[1], 1), np.float32), np.zeros(1, np.float32)
            self._single = examples.mean(axis=0)
        else:
            self._single = None
            self._weights, self._bias = fit_one_vs_rest(self._standardise(examples), self._owner,
                                                        len(self._scored_names), l2, steps)

    def _standardise(self, embeddings: np.ndarray) -> np.ndarray:
        return (np.asarray(embeddings, dtype=np.float32) - self._mean) / self._scale

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """Returns ``[n, len(names)]`` scores in [0, 1] for embeddings ``[n, dim]``."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if self._single is not None:
            unit = self._single / max(float(np.linalg.norm(self._single)), 1e-12)
            cosine = embeddings @ unit / np.maximum(np.linalg.norm(embeddings, axis=1), 1e-12)
            scored = _sigmoid(40.0 * (cosine - 0.8))[:, None].astype(np.float32)
        else:
            scored = _sigmoid(self._standardise(embeddings) @ self._weights + self._bias).astype(np.float32)
        # ``other`` without examples of its own: how far the best topic falls short of the floor.
        return self._columns(scored, np.clip(1.0 - scored.max(axis=1) / self.floor, 0.0, 1.0))

    def label(self, scores: np.ndarray) -> list[list[str]]:
        """Returns, per row, the primary topic and any other at or above the threshold (:func:`label_rows`)."""
        return label_rows(scores, self.names, self.threshold, self.floor)


def label_rows(
    scores: np.ndarray, names: Sequence[str], threshold: float = DEFAULT_THRESHOLD, floor: float | None = None
) -> list[list[str]]:
    """Per row: the primary topic, then any other topic scoring at or above ``threshold``, best first.

    The primary topic is the best-scoring topic other than ``other``, provided it scores at
    least ``floor`` and (where ``other`` has examples of its own, so a score of its own)
    more than ``other``; else the row is ``[other]`` alone. ``other`` is never listed beside
    a real topic: beside one it says nothing.

    Args:
        scores: ``[n, len(names)]``.
        names: Column names.
        threshold: Score at or above which a topic beside the primary one is kept, in (0, 1].
        floor: Score the primary topic needs; None: ``threshold`` (a taxonomy without ``other``
            always gets its best topic).

    Returns:
        One list of names per row.
    """
    floor = threshold if floor is None else min(floor, threshold)
    other = names.index(OTHER) if OTHER in names else None
    out = []
    for row in np.asarray(scores):
        order = [j for j in np.argsort(-row, kind="stable") if j != other]
        if not order:
            out.append([OTHER])
            continue
        best = order[0]
        if other is not None and (row[best] < floor or row[other] > row[best]):
            out.append([OTHER])
            continue
        out.append([names[best]] + [names[j] for j in order[1:] if row[j] >= threshold])
    return out


class MeanCosineTopicScorer(_ExampleScorer):
    """The previous scorer: mean cosine to a topic's phrases, margin over the taxonomy mean, sigmoid.

    ``score_t = sigmoid(scale * (sim_t - mean over topics of sim - offset))``; ``other`` without
    phrases scores ``1 - max``. Kept to be measured against (``tools/eval_topics.py``).
    """

    def __init__(
        self,
        topics: Sequence[Topic],
        embed: Callable[[Sequence[str]], np.ndarray],
        threshold: float = DEFAULT_THRESHOLD,
        scale: float = DEFAULT_SCALE,
        offset: float = DEFAULT_OFFSET,
    ) -> None:
        """Embeds every phrase once (unit-norm embeddings expected)."""
        super().__init__(topics, embed, threshold)
        self.scale = float(scale)
        self.offset = float(offset)
        self.fingerprint = taxonomy_fingerprint(topics, "mean-cosine", self.scale, self.offset)

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """Returns ``[n, len(names)]`` scores in [0, 1] for unit-norm embeddings ``[n, dim]``."""
        cosine = np.asarray(embeddings, dtype=np.float32) @ self._examples.T
        sims = np.stack([cosine[:, self._owner == j].mean(axis=1) for j in range(len(self._scored_names))], axis=1)
        margin = sims - sims.mean(axis=1, keepdims=True)
        scored = _sigmoid(self.scale * (margin - self.offset))
        return self._columns(scored, 1.0 - scored.max(axis=1))

    def label(self, scores: np.ndarray) -> list[list[str]]:
        """Returns, per row, the topics at or above the threshold, best first (as it shipped)."""
        out = []
        for row in scores:
            kept = [j for j in np.argsort(-row, kind="stable") if row[j] >= self.threshold]
            out.append([self.names[j] for j in kept])
        return out
