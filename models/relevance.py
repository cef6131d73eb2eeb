"""Relevance without training: is a text about a subject, or about something else of the same name?

A *profile* is a named subject described by a few phrases (what it is, its category, what
belongs to it, who it is compared with), in any languages multilingual-e5 knows. The model
knows no brands: the transforms build profiles from the brand config
(:mod:`transforms.relevance`) and read the scores back by name.

A text's relevance to a profile compares two similarities of its embedding (the same
embedding the topics use, from the same encoder pass as the sentiment):

* ``sim_p``: the mean cosine to the profile's phrases;
* ``sim_o``: the best mean cosine to one of the *other senses*, a fixed bank of everyday
  subjects (:data:`OTHER_SENSES`: food and fruit, colours, animals, the sky and space,
  myths, famous people, tools, physics, school, peace and politics, software, ...), each
  a cluster of phrases in the five languages served. Clusters whose centroid lies close
  to the profile's (a grocery chain's profile near "food") are left out for that profile,
  so that the subject does not compete with itself.

::

    relevance = sigmoid(scale * (sim_p - sim_o - offset))

The bank does not name any brand's other sense; it only needs to hold the everyday
subjects a name may also stand for, which is why a user need not foresee them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np

# Chosen on data/handwritten/ambiguity/traps_validation.jsonl only (docs/relevance.md).
DEFAULT_SCALE = 30.0
DEFAULT_OFFSET = 0.0
# A cluster whose centroid has at least this cosine to the profile's centroid is not an other sense of it.
DEFAULT_OVERLAP = 0.9
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclasses.dataclass(frozen=True)
class Profile:
    """A subject texts may be about.

    Attributes:
        name: Identifier the scores are returned under (lowercase, digits, ``_``, ``-``).
        phrases: Descriptions of the subject, any languages; at least one.
    """

    name: str
    phrases: tuple[str, ...]


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


def validate_profiles(profiles: Sequence[Profile]) -> None:
    """Checks names and phrases.

    Raises:
        ValueError: On a bad or duplicate name, or a profile without phrases.
    """
    seen: set[str] = set()
    for profile in profiles:
        if not _NAME_RE.match(profile.name):
            raise ValueError(f"profile name {profile.name!r}: use lowercase letters, digits, '_' and '-'")
        if profile.name in seen:
            raise ValueError(f"profile {profile.name!r} is listed twice")
        seen.add(profile.name)
        if not profile.phrases or any(not isinstance(p, str) or not p.strip() for p in profile.phrases):
            raise ValueError(f"profile {profile.name!r} needs non-empty phrases")


def profiles_fingerprint(profiles: Sequence[Profile], scale: float, offset: float) -> str:
    """Returns 8 hex characters identifying profiles and calibration."""
    text = repr([(p.name, p.phrases) for p in profiles]) + f"|{scale}|{offset}|{sorted(OTHER_SENSES)}"
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
        overlap: float = DEFAULT_OVERLAP,
        other_senses: Mapping[str, Sequence[str]] = OTHER_SENSES,
    ) -> None:
        """Embeds every phrase once.

        Args:
            profiles: The subjects (validated here).
            embed: Texts -> unit-norm embeddings ``[n, dim]`` (the encoder and prefix of the texts).
            scale: Sigmoid steepness over the similarity margin.
            offset: Margin at which relevance is 0.5.
            overlap: Centroid cosine at or above which an other sense is left out for a profile.
            other_senses: Cluster name -> phrases.
        """
        validate_profiles(profiles)
        self.names = tuple(p.name for p in profiles)
        self.scale, self.offset = float(scale), float(offset)
        self.fingerprint = profiles_fingerprint(profiles, self.scale, self.offset)
        phrases = [t for p in profiles for t in p.phrases]
        senses = [t for cluster in other_senses.values() for t in cluster]
        vectors = np.asarray(embed(phrases + senses), dtype=np.float32) if phrases else np.zeros((0, 0), np.float32)
        self._profile_owner = np.repeat(np.arange(len(profiles)), [len(p.phrases) for p in profiles])
        self._sense_owner = np.repeat(np.arange(len(other_senses)), [len(c) for c in other_senses.values()])
        self._profile_vectors, self._sense_vectors = vectors[:len(phrases)], vectors[len(phrases):]
        # Which other senses compete with each profile: not those that are the profile's own subject.
        profile_centroids = _centroids(self._profile_vectors, self._profile_owner, len(profiles))
        sense_centroids = _centroids(self._sense_vectors, self._sense_owner, len(other_senses))
        self._competes = (profile_centroids @ sense_centroids.T) < overlap if len(profiles) else np.zeros((0, 0), bool)

    def similarities(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Returns ``(sim_p [n, P], sim_o [n, P])``: to each profile, and to its best competing other sense."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        n, count = len(embeddings), len(self.names)
        sim_p = np.zeros((n, count), dtype=np.float32)
        sim_o = np.full((n, count), -1.0, dtype=np.float32)
        if not count or not n:
            return sim_p, sim_o
        to_profiles = embeddings @ self._profile_vectors.T
        to_senses = embeddings @ self._sense_vectors.T
        senses = np.stack([to_senses[:, self._sense_owner == k].mean(axis=1)
                           for k in range(self._competes.shape[1])], axis=1)
        for j in range(count):
            sim_p[:, j] = to_profiles[:, self._profile_owner == j].mean(axis=1)
            competing = self._competes[j]
            if competing.any():
                sim_o[:, j] = senses[:, competing].max(axis=1)
        return sim_p, sim_o

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """Returns ``[n, len(names)]`` relevance in [0, 1] for unit-norm embeddings ``[n, dim]``."""
        sim_p, sim_o = self.similarities(embeddings)
        margin = sim_p - sim_o
        return (1.0 / (1.0 + np.exp(-self.scale * (margin - self.offset)))).astype(np.float32)


def _centroids(vectors: np.ndarray, owner: np.ndarray, count: int) -> np.ndarray:
    """Unit-norm mean vector per owner."""
    if not count:
        return np.zeros((0, vectors.shape[1] if vectors.ndim == 2 else 0), dtype=np.float32)
    out = np.stack([vectors[owner == k].mean(axis=0) for k in range(count)])
    return out / np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-9, None)
