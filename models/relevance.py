"""Relevance without training: is a text about a subject, or about something else of the same name?

A *profile* is a named subject described by a few phrases (what it is, its category, what
belongs to it, who it is compared with), in any languages multilingual-e5 knows. The model
knows no brands: the transforms build profiles from the brand config
(:mod:`transforms.relevance`) and read the scores back by name.

A text's relevance to a profile compares two similarities of its embedding (the same
embedding the topics use, from the same encoder pass as the sentiment):

* ``sim_p``: the best cosine to one of the profile's phrases;
* ``sim_o``: the best cosine to one of the *other senses*: a fixed bank of everyday
  subjects (:data:`OTHER_SENSES`: food and fruit, colours, animals, the sky and space,
  myths, famous people, tools, physics, school, politics, software, ...), each a cluster
  of phrases in the five languages served, each phrase written after the profile's
  ``term`` ("Orange: fruit and vegetables, ..."), as the post holds the word too: the
  word itself then weighs the same on both sides, and only the context decides.

::

    relevance = sigmoid(scale * (sim_p - sim_o - offset))

Optionally, every embedding (the text's and the phrases') first passes through a learnt
:class:`Projection`, ``x -> normalise(x + (x V) U^T)``: a low-rank change of the space, learnt
by ``tools/train_relevance.py`` from hand-written posts about *other* ambiguous brands than the
ones it is measured on, so that it carries what separates "a post about a company" from "the
word in another sense", not any brand. The job uses the shipped one
(:data:`DEFAULT_PROJECTION_PATH`) with the embedded model.

The bank names no brand and no brand's other sense; it only holds everyday subjects a
short name may also stand for, so that a user need not foresee them. Measured variants
(mean instead of best cosine, senses without the term, profile phrases without the
name) are in docs/relevance.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from models.validation import check_named_phrases

# Chosen on data/handwritten/ambiguity/traps_validation.jsonl only (docs/relevance.md), with the case
# nudge (transforms.relevance.CASE_LOGIT) and for the shipped projection (tools/train_relevance.py prints
# both and records them in the projection's .json): the offset and the nudge trade precision for recall together.
DEFAULT_SCALE = 30.0
DEFAULT_OFFSET = 0.035
# The learnt projection the job applies (tools/train_relevance.py writes it; its .json says from what).
DEFAULT_PROJECTION_PATH = pathlib.Path(__file__).resolve().parent / "heads" / "relevance_projection.safetensors"
PROJECTION_FORMAT_VERSION = 1
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclasses.dataclass(frozen=True)
class Profile:
    """A subject texts may be about.

    Attributes:
        name: Identifier the scores are returned under (lowercase, digits, ``_``, ``-``).
        phrases: Descriptions of the subject, any languages; at least one.
        term: The word texts call the subject by ("Orange"); the other senses are phrased with it.
    """

    name: str
    phrases: tuple[str, ...]
    term: str = ""


# Everyday subjects a short name may also stand for. Each cluster holds phrases in en, ru, uk,
# hr and sr, so that no language is favoured (e5 finds texts of one language more alike).
OTHER_SENSES: Mapping[str, tuple[str, ...]] = {
    "food_fruit": (
        "fruit and vegetables, eating, cooking a recipe, juice, dessert, breakfast",
        "ripe fruit at the market, smoothie, cake, peel and slice it",
        "фрукты и овощи, рецепт, сок, десерт, смузи, готовить",
        "фрукти, рецепт, сік, десерт, готувати",
        "voće i povrće, recept, sok, desert, kuhanje",
        "воће и поврће, рецепт, сок, десерт, кување",
    ),
    "colour_art": (
        "a colour, the sky at sunset, painting a wall, bright shade",
        "цвет, оттенок, закат, покрасить стену",
        "колір, відтінок, захід сонця",
        "boja, nijansa, zalazak sunca, bojanje zida",
        "боја, нијанса, залазак сунца",
    ),
    "animals_nature": (
        "wild animal, big cat, bird, zoo, wildlife documentary, hunting prey",
        "дикое животное, хищник, птица, зоопарк, природа",
        "дика тварина, хижак, птах, зоопарк",
        "divlja životinja, zvijer, ptica, zoološki vrt, priroda",
        "дивља животиња, звер, птица, зоолошки врт",
    ),
    "space_astronomy": (
        "planet, space mission, telescope, rover, astronomy, stars in the night sky",
        "планета, космос, телескоп, астрономия, орбита, ночное небо",
        "планета, космос, телескоп, астрономія",
        "planet, svemir, teleskop, astronomija, misija",
        "планета, свемир, телескоп, астрономија",
    ),
    "myth_religion_astrology": (
        "mythology, ancient gods, legends, religion, astrology and horoscopes",
        "мифология, древние боги, легенды, гороскоп, астрология",
        "міфологія, давні боги, гороскоп",
        "mitologija, stari bogovi, horoskop, astrologija",
        "митологија, стари богови, хороскоп",
    ),
    "people_entertainment": (
        "a singer, actor or athlete, concert tickets, a film or TV series, a celebrity",
        "a sprinter winning the race, world record, the olympics",
        "певец, актёр, спортсмен, концерт, фильм, сериал",
        "співак, актор, спортсмен, концерт, фільм",
        "pjevač, glumac, sportaš, koncert, film, serija, olimpijske igre",
        "певач, глумац, спортиста, концерт, филм",
    ),
    "tools_hardware": (
        "tools, screws and nuts, repairs, DIY, a power outlet on the wall, wiring",
        "инструменты, гайки и винты, ремонт, электрика, проводка",
        "інструменти, гайка, ремонт, електрика, подовжувач",
        "alat, vijak, matica, popravak, utičnica, struja",
        "алат, шраф, матица, поправка, утичница",
    ),
    "science_school": (
        "physics lesson, experiment, forces and fields, school grades, exam, homework",
        "урок физики, опыт, железо и поле, оценка в школе, экзамен",
        "урок фізики, дослід, оцінка, іспит",
        "sat fizike, pokus, ocjena u školi, ispit",
        "час физике, оглед, оцена у школи, испит",
    ),
    "society_politics": (
        "war and diplomacy, humanity, politics, economy, news, society",
        "война и дипломатия, человечество, политика, новости, общество",
        "війна і дипломатія, людство, політика, новини",
        "rat i diplomacija, čovječanstvo, politika, vijesti, društvo, potrošnja",
        "рат и дипломатија, човечанство, политика, вести, друштво",
    ),
    "software_computing": (
        "programming, terminal, command line, script, code, software bug",
        "программирование, терминал, скрипт, код",
        "програмування, термінал, скрипт, код",
        "programiranje, terminal, skripta, kod",
        "програмирање, терминал, скрипта, код",
    ),
    "home_crafts": (
        "gift wrapping, ribbon, tape, sewing, decoration, household items",
        "подарок, упаковка, скотч, шитьё, украшение, сувенир",
        "подарунок, стрічка, скотч, шиття",
        "poklon, vrpca, traka, šivanje, ukras",
        "поклон, трака, шивење, украс",
    ),
    "places_travel": (
        "a city, an old town, a harbour, the beach and the sea, a trip abroad",
        "город, старый город, порт, пляж и море, путешествие",
        "місто, старе місто, пляж і море, подорож",
        "grad, stari grad, luka, plaža i more, putovanje",
        "град, стари град, лука, плажа и море, путовање",
    ),
    "work_goals": (
        "a goal, an aim to reach, a plan, work performance, sales numbers",
        "цель, план, показатели, задача на работе",
        "мета, план, показники",
        "cilj, plan, rezultati na poslu",
        "циљ, план, резултати на послу",
    ),
    "military_weapons": (
        "weapons, artillery, a missile strike, soldiers, the army",
        "оружие, снаряд, ракетный удар, армия",
        "зброя, снаряд, армія",
        "oružje, granata, vojska",
        "оружје, граната, војска",
    ),
    "health_body": (
        "health, the body, diet, heart rate, how much sugar or alcohol people drink, fitness",
        "здоровье, диета, пульс, потребление сахара",
        "здоров'я, дієта, пульс",
        "zdravlje, prehrana, potrošnja alkohola i šećera",
        "здравље, исхрана, потрошња",
    ),
    "everyday_talk": (
        "a joke, a personal story, family and friends, feelings, the weekend",
        "шутка, история из жизни, семья и друзья, настроение",
        "жарт, історія з життя, родина, настрій",
        "šala, priča iz života, obitelj i prijatelji, raspoloženje",
        "шала, прича из живота, породица и пријатељи",
    ),
}


@dataclasses.dataclass(frozen=True, eq=False)
class Projection:
    """A learnt low-rank change of the embedding space: ``x -> normalise(x + (x @ v) @ u.T)``.

    Attributes:
        u: ``[dim, rank]``.
        v: ``[dim, rank]``.
        sha1: The first 8 hex characters of the hash of the weights (and of the relevance layers'
            file, when the metadata names one): part of the relevance fingerprint.
        metadata: What it was trained on and how (the ``.json`` beside the weights).
        layers_path: The top layers fine-tuned for relevance that go with it (the metadata's
            ``fine_tuned.file``, beside the weights; run on the posts' side only), or None.
    """

    u: np.ndarray
    v: np.ndarray
    sha1: str
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    layers_path: pathlib.Path | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Projects unit-norm rows ``[n, dim]``; returns unit-norm rows."""
        x = np.asarray(x, dtype=np.float32)
        if x.size == 0:
            return x
        y = x + (x @ self.v) @ self.u.T
        return (y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def projection_metadata_path(weights_path: str | os.PathLike[str]) -> pathlib.Path:
    """The JSON that accompanies a projection's safetensors file."""
    return pathlib.Path(weights_path).with_suffix(".json")


def save_projection(path: str | os.PathLike[str], u: np.ndarray, v: np.ndarray, metadata: Mapping[str, Any]) -> None:
    """Writes a projection's weights (safetensors) and its JSON description beside them."""
    from safetensors.numpy import save_file

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"u": np.ascontiguousarray(u, dtype=np.float32), "v": np.ascontiguousarray(v, dtype=np.float32)},
              str(path))
    document = {"format_version": PROJECTION_FORMAT_VERSION, "rank": int(u.shape[1]), **metadata}
    projection_metadata_path(path).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n",
                                              encoding="utf-8")


def load_projection(path: str | os.PathLike[str] = DEFAULT_PROJECTION_PATH) -> Projection:
    """Loads a projection written by :func:`save_projection`.

    Raises:
        ValueError: On an unknown format version or mismatched shapes.
    """
    from safetensors.numpy import load_file

    path = pathlib.Path(path)
    metadata = json.loads(projection_metadata_path(path).read_text(encoding="utf-8"))
    if metadata.get("format_version") != PROJECTION_FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported projection format {metadata.get('format_version')!r}")
    tensors = load_file(str(path))
    u, v = tensors["u"], tensors["v"]
    if u.shape != v.shape or u.ndim != 2:
        raise ValueError(f"{path}: u {u.shape} and v {v.shape} must both be [dim, rank]")
    digest = hashlib.sha1(path.read_bytes())
    layers_path = None
    if metadata.get("fine_tuned"):
        layers_path = path.parent / metadata["fine_tuned"]["file"]
        if not layers_path.is_file():
            raise ValueError(f"{path}: its relevance layers {layers_path.name} are missing")
        digest.update(layers_path.read_bytes())
    return Projection(u, v, digest.hexdigest()[:8], metadata, layers_path)


def validate_profiles(profiles: Sequence[Profile]) -> None:
    """Checks names and phrases.

    Raises:
        ValueError: On a bad or duplicate name, or a profile without phrases.
    """
    check_named_phrases(profiles, "profile", _NAME_RE, "lowercase letters, digits, '_' and '-'")


def profiles_fingerprint(profiles: Sequence[Profile], scale: float, offset: float, projection: str = "") -> str:
    """Returns 8 hex characters identifying profiles, calibration and the projection's hash."""
    text = repr([(p.name, p.phrases, p.term) for p in profiles]) + f"|{scale}|{offset}|{sorted(OTHER_SENSES)}"
    text += f"|{projection}" if projection else ""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


class RelevanceScorer:
    """Scores unit-norm text embeddings against profiles and the bank of other senses.

    Attributes:
        names: Profile names, in column order.
    """

    def __init__(
        self,
        profiles: Sequence[Profile],
        embed: Callable[[Sequence[str]], np.ndarray],
        scale: float = DEFAULT_SCALE,
        offset: float = DEFAULT_OFFSET,
        other_senses: Mapping[str, Sequence[str]] = OTHER_SENSES,
        projection: Projection | None = None,
    ) -> None:
        """Embeds every phrase once (the other senses once per distinct term).

        Args:
            profiles: The subjects (validated here).
            embed: Texts -> unit-norm embeddings ``[n, dim]`` (the encoder and prefix of the texts).
            scale: Sigmoid steepness over the similarity margin.
            offset: Margin at which relevance is 0.5.
            other_senses: Cluster name -> phrases.
            projection: Applied to every embedding before the cosines (None: the encoder's space).
        """
        validate_profiles(profiles)
        self.names = tuple(p.name for p in profiles)
        self.scale, self.offset = float(scale), float(offset)
        self.projection = projection
        self.fingerprint = profiles_fingerprint(profiles, self.scale, self.offset,
                                                projection.sha1 if projection is not None else "")
        senses = [t for cluster in other_senses.values() for t in cluster]
        terms = list(dict.fromkeys(p.term for p in profiles))
        texts = [t for p in profiles for t in p.phrases]
        texts += [f"{term}: {sense}" if term else sense for term in terms for sense in senses]
        vectors = np.asarray(embed(texts), dtype=np.float32) if texts else np.zeros((0, 0), np.float32)
        if projection is not None:
            vectors = projection(vectors)
        owners = np.repeat(np.arange(len(profiles)), [len(p.phrases) for p in profiles])
        count = len(owners)
        self._profile_vectors = [vectors[:count][owners == j] for j in range(len(profiles))]
        width = len(senses)
        by_term = {term: vectors[count + k * width: count + (k + 1) * width] for k, term in enumerate(terms)}
        self._sense_vectors = [by_term[p.term] for p in profiles]

    def similarities(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Returns ``(sim_p, sim_o)``, each ``[n, len(names)]``: best cosine to the profile, to an other sense."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if self.projection is not None:
            embeddings = self.projection(embeddings)
        n = len(embeddings)
        sim_p = np.zeros((n, len(self.names)), dtype=np.float32)
        sim_o = np.zeros((n, len(self.names)), dtype=np.float32)
        for j in range(len(self.names)):
            if n:
                sim_p[:, j] = (embeddings @ self._profile_vectors[j].T).max(axis=1)
                sim_o[:, j] = (embeddings @ self._sense_vectors[j].T).max(axis=1)
        return sim_p, sim_o

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """Returns ``[n, len(names)]`` relevance in [0, 1] for unit-norm embeddings ``[n, dim]``."""
        sim_p, sim_o = self.similarities(embeddings)
        margin = sim_p - sim_o
        return (1.0 / (1.0 + np.exp(-self.scale * (margin - self.offset)))).astype(np.float32)
