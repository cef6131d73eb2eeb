"""Benchmark: brand matching throughput for 100 brands, against a per-brand loop (`make bench`).

    .venv/bin/python tests/benchmarks/bench_matching.py [--repeat 3] [--posts data/sample/mentions.jsonl]

Brands: 100 real brand names as listening users configure them (Latin and Cyrillic spellings,
handles, hashtags, exclusions, a dozen with queries). Posts: the bundled sample's texts, plus each
text once more with its brand names swapped for other brands' names (so that hits spread over the
100 brands, not only the sample's six), a few thousand in all.

Both contenders see the same posts and the same word forms (`transforms.inflection`):

- `BrandMatcher`: every brand's terms in one Aho-Corasick automaton, rules evaluated only for
  the brands hit (what the pipeline runs);
- per-brand loop (the approach the matcher replaces): per post, for each brand, its own
  compiled regex over its names' forms plus a lookup of its handles/hashtags. It does less
  than the matcher (no queries, no hashtag segmentation), so the ratio is a lower bound.

Prints mentions/s for each and their ratio. Nothing here is asserted: speed is measured, not tested.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import re
import sys
import time
import typing

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from schemas.config import BrandConfig, parse_config  # noqa: E402
from transforms.inflection import normalize, spellings, word_forms  # noqa: E402
from transforms.matching import BrandMatcher, make_view  # noqa: E402

# id: (names, handles, hashtags); names in the scripts people write them in.
BRANDS: dict[str, tuple] = {
    "apple": (["Apple", "iPhone", "Эпл", "Айфон", "Ајфон"], ["Apple"], ["iPhone"]),
    "samsung": (["Samsung", "Самсунг"], ["SamsungMobile"], ["Galaxy"]),
    "google": (["Google", "Гугл"], ["Google"], ["Pixel"]),
    "microsoft": (["Microsoft", "Майкрософт", "Мајкрософт"], ["Microsoft"], ["Xbox"]),
    "amazon": (["Amazon", "Амазон"], ["amazon"], ["PrimeDay"]),
    "netflix": (["Netflix", "Нетфликс"], ["netflix"], []),
    "spotify": (["Spotify", "Спотифай"], ["Spotify"], ["SpotifyWrapped"]),
    "nike": (["Nike", "Найк", "Најк"], ["Nike"], ["JustDoIt"]),
    "adidas": (["Adidas", "Адидас", "Адідас"], ["adidas"], []),
    "puma": (["Puma", "Пума"], ["PUMA"], []),
    "zara": (["Zara", "Зара"], ["ZARA"], []),
    "hm": (["H&M"], ["hm"], []),
    "ikea": (["IKEA", "Икеа", "ИКЕА"], ["IKEA"], []),
    "cocacola": (["Coca-Cola", "Coke", "Кока-Кола", "Koka-Kola"], ["CocaCola"], ["CocaCola"]),
    "pepsi": (["Pepsi", "Пепси", "Пепсі"], ["pepsi"], []),
    "sprite": (["Sprite", "Спрайт", "Спрајт"], ["Sprite"], []),
    "fanta": (["Fanta", "Фанта"], ["Fanta"], []),
    "redbull": (["Red Bull", "Ред Булл"], ["redbull"], ["GivesYouWings"]),
    "nestle": (["Nestlé", "Нестле"], ["Nestle"], []),
    "lays": (["Lay's", "Лейз", "Лејз"], ["Lays"], []),
    "pringles": (["Pringles", "Принглс"], ["Pringles"], []),
    "snickers": (["Snickers", "Сникерс"], ["SNICKERS"], []),
    "twix": (["Twix", "Твикс"], ["twix"], []),
    "kitkat": (["KitKat", "Kit Kat", "Киткат"], ["KITKAT"], ["HaveABreak"]),
    "milka": (["Milka", "Милка"], ["Milka"], []),
    "oreo": (["Oreo", "Орео"], ["Oreo"], []),
    "heineken": (["Heineken", "Хайнекен"], ["Heineken"], []),
    "carlsberg": (["Carlsberg", "Карлсберг"], ["Carlsberg"], []),
    "tuborg": (["Tuborg", "Туборг"], ["tuborg"], []),
    "starbucks": (["Starbucks", "Старбакс"], ["Starbucks"], []),
    "mcdonalds": (["McDonald's", "Макдоналдс", "Мекдоналдс"], ["McDonalds"], []),
    "kfc": (["KFC", "КФЦ"], ["kfc"], []),
    "burgerking": (["Burger King", "Бургер Кинг"], ["BurgerKing"], []),
    "dominos": (["Domino's", "Доминос"], ["dominos"], []),
    "uber": (["Uber", "Убер"], ["Uber"], []),
    "bolt": (["Bolt", "Болт"], ["Boltapp"], []),
    "glovo": (["Glovo", "Глово"], ["Glovo_app"], []),
    "wolt": (["Wolt", "Волт"], ["woltapp"], []),
    "airbnb": (["Airbnb", "Эйрбиэнби"], ["Airbnb"], []),
    "booking": (["Booking.com", "Букинг"], ["bookingcom"], []),
    "ryanair": (["Ryanair", "Райанэйр"], ["Ryanair"], []),
    "lufthansa": (["Lufthansa", "Люфтганза"], ["lufthansa"], []),
    "mastercard": (["Mastercard", "Мастеркард"], ["Mastercard"], []),
    "paypal": (["PayPal", "Пейпал"], ["PayPal"], []),
    "revolut": (["Revolut", "Револют"], ["RevolutApp"], []),
    "tesla": (["Tesla", "Тесла"], ["Tesla"], []),
    "toyota": (["Toyota", "Тойота", "Тојота"], ["Toyota"], []),
    "volkswagen": (["Volkswagen", "VW", "Фольксваген", "Фолксваген"], ["VW"], []),
    "bmw": (["BMW", "БМВ"], ["BMW"], []),
    "mercedes": (["Mercedes", "Мерседес"], ["MercedesBenz"], []),
    "audi": (["Audi", "Ауди"], ["audi"], []),
    "skoda": (["Škoda", "Шкода"], ["Skoda"], []),
    "renault": (["Renault", "Рено"], ["renault"], []),
    "xiaomi": (["Xiaomi", "Сяоми", "Шаоми"], ["Xiaomi"], []),
    "huawei": (["Huawei", "Хуавей", "Хуавеј"], ["Huawei"], []),
    "sony": (["Sony", "Сони"], ["Sony"], []),
    "playstation": (["PlayStation", "Плейстейшн"], ["PlayStation"], ["PS5"]),
    "nintendo": (["Nintendo", "Нинтендо"], ["NintendoEurope"], []),
    "lenovo": (["Lenovo", "Леново"], ["Lenovo"], []),
    "dell": (["Dell"], ["Dell"], []),
    "asus": (["Asus", "Асус"], ["ASUS"], []),
    "philips": (["Philips", "Филипс"], ["Philips"], []),
    "bosch": (["Bosch", "Бош"], ["BoschGlobal"], []),
    "dyson": (["Dyson", "Дайсон"], ["Dyson"], []),
    "loreal": (["L'Oréal", "Лореаль"], ["LOrealParis"], []),
    "nivea": (["Nivea", "Нивеа"], ["NIVEA"], []),
    "gillette": (["Gillette", "Жиллетт"], ["Gillette"], []),
    "colgate": (["Colgate", "Колгейт"], ["Colgate"], []),
    "lego": (["Lego", "Лего"], ["LEGO_Group"], []),
    "decathlon": (["Decathlon", "Декатлон"], ["Decathlon"], []),
    "lidl": (["Lidl", "Лидл"], ["lidl"], []),
    "aldi": (["Aldi", "Алди"], ["AldiUK"], []),
    "spar": (["Spar", "Спар"], ["SPAR"], []),
    "konzum": (["Konzum"], ["konzum_hr"], []),
    "maxi": (["Maxi", "Макси"], ["maxi_rs"], []),
    "podravka": (["Podravka", "Čokolino"], ["Podravka"], []),
    "kras": (["Kraš", "Bajadera"], ["kras"], []),
    "jamnica": (["Jamnica"], [], []),
    "ledo": (["Ledo"], ["ledo_hr"], []),
    "franck": (["Franck"], [], []),
    "telekom": (["Telekom", "Телеком"], ["telekomsrbija"], []),
    "a1": (["A1 Hrvatska", "A1 Srbija"], ["A1Hrvatska"], []),
    "yettel": (["Yettel", "Јетел"], ["YettelSrbija"], []),
    "mts": (["МТС", "MTS"], ["mts_rs"], []),
    "beeline": (["Билайн", "Beeline"], ["beeline"], []),
    "megafon": (["МегаФон", "Megafon"], ["megafonru"], []),
    "yandex": (["Яндекс", "Yandex"], ["yandex"], []),
    "sber": (["Сбербанк", "Сбер", "Sberbank"], ["sberbank"], []),
    "tinkoff": (["Тинькофф", "Tinkoff"], ["tinkoff"], []),
    "wildberries": (["Wildberries", "Вайлдберриз"], ["wildberries_ru"], []),
    "ozon": (["Ozon", "Озон"], ["ozon_ru"], []),
    "rozetka": (["Rozetka", "Розетка"], ["rozetka_ua"], []),
    "novaposhta": (["Нова пошта", "Nova Poshta"], ["novaposhta"], []),
    "privatbank": (["ПриватБанк", "PrivatBank"], ["privatbank"], []),
    "monobank": (["monobank", "Монобанк"], ["monobank"], []),
    "kyivstar": (["Київстар", "Kyivstar"], ["kyivstar"], []),
    "orbit": (["Orbit", "Орбит"], [], []),
    "tide": (["Tide", "Тайд"], [], []),
}

# Ambiguous names get a query (context rule) instead of, or beside, their names.
QUERIES = {
    "mars": "(Mars OR Марс) NOT (planet* OR planeta OR планет* OR NASA OR rover* OR марсоход*)",
    "vegeta": "Vegeta NOT (goku OR \"dragon ball\" OR saiyan* OR anime)",
    "apple": "Apple NOT (pie* OR juice OR cider OR tree* OR fruit*)",
    "amazon": "Amazon NOT (river OR rainforest OR jungle OR Амазонк*)",
    "orbit": "(Orbit OR Орбит) NEAR/3 (gum OR žvak* OR жвачк* OR жуйк*)",
    "tide": "(Tide OR Тайд) NEAR/4 (detergent OR pods OR prašak OR порошок)",
    "bolt": "Bolt NEAR/4 (taxi OR ride OR vožnj* OR такси OR app OR driver)",
    "spar": "Spar NOT (sparring OR spar-*)",
    "google": "(Pixel OR Пиксель) NEAR/3 (phone OR телефон OR camera OR камера OR google)",
    "zara": "(zara ONEAR/2 (dostav* OR доставк* OR order*)) OR (Зара NOT певица)",
    "nike": "#JustDoIt OR (\"just do it\" NEAR/5 nike)",
    "samsung": "(samsung OR самсунг) NEAR/3 (battery OR батаре* OR baterij*) lang:ru OR @SamsungMobile",
}
EXCLUDES = {"apple": ["apple pie*", "big apple"], "zara": ["Zara Larsson"], "cocacola": ["coke oven*"],
            "lays": ["lays the", "lays down"], "telekom": ["Deutsche Telekom"]}
SAMPLE_NAMES = re.compile(r"\b(Apple|iPhone|Google|Samsung|Microsoft|Coca-Cola|Pepsi|Самсунг|Гугл|Пепси|"
                          r"Майкрософт|Айфон|Кока-Кола)\b")


def build_config() -> BrandConfig:
    """The 100 brands as a validated config."""
    brands = []
    for brand_id, (names, handles, hashtags) in BRANDS.items():
        entry = {"id": brand_id, "names": names, "handles": handles, "hashtags": hashtags,
                 "transliterate": any("\u0400" <= c <= "\u04ff" for n in names for c in n)}
        if brand_id in EXCLUDES:
            entry["exclude"] = EXCLUDES[brand_id]
        brands.append(entry)
    for brand_id, query in QUERIES.items():
        found = [b for b in brands if b["id"] == brand_id]
        if found:
            found[0]["query"] = query
        else:
            brands.append({"id": brand_id, "query": query})
    return parse_config({"brands": brands}, "bench")


def load_posts(path: pathlib.Path, seed: int = 7) -> list[str]:
    """The sample's texts, plus each once more with its brand names swapped for random brands' names."""
    rng = random.Random(seed)
    with open(path, encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for line in fh if line.strip()]
    names = [n for spec in BRANDS.values() for n in spec[0]]
    swapped = [SAMPLE_NAMES.sub(lambda m: rng.choice(names), t) for t in texts]
    return texts + swapped


class PerBrandLoop:
    """The baseline: for each brand, its own regex over its names' forms and its own tag sets."""

    def __init__(self, config: BrandConfig):
        self._brands = []
        for brand in config.brands:
            forms = set()
            for name in brand.names:
                for spelling in spellings(name, brand.transliterate):
                    for key, rests in word_forms(spelling, brand.inflect):
                        forms |= {key + r for r in rests}
            body = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
            regex = re.compile(f"(?<![\\w@#])(?:{body})(?![\\w@])") if forms else None
            tags = {("@", normalize(h)) for h in brand.handles} | {("#", normalize(h)) for h in brand.hashtags}
            self._brands.append((brand.id, regex, tags))

    def match(self, text: str) -> list[str]:
        view = make_view(text)
        tags = {(sigil, name) for sigil, name, _, _ in view.tags}
        return [brand_id for brand_id, regex, brand_tags in self._brands
                if (tags and brand_tags & tags) or (regex is not None and regex.search(view.text))]


def throughput(fn: typing.Callable[[str], typing.Any], posts: list[str], repeat: int) -> tuple:
    """(posts per second, posts with a match), best of `repeat` passes."""
    best, matched = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        matched = sum(1 for p in posts if fn(p))
        best = min(best, time.perf_counter() - start)
    return len(posts) / best, matched


def main(argv: typing.Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", default=str(ROOT / "data" / "sample" / "mentions.jsonl"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    config = build_config()
    posts = load_posts(pathlib.Path(args.posts))
    start = time.perf_counter()
    matcher = BrandMatcher(config)
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    baseline = PerBrandLoop(config)
    baseline_compile_s = time.perf_counter() - start

    ours, ours_matched = throughput(matcher.match, posts, args.repeat)
    theirs, theirs_matched = throughput(baseline.match, posts, 1)  # slow enough to time in one pass
    print(f"brand matching: {len(config.brands)} brands, {len(posts):,} posts "
          f"({sum(map(len, posts)) / len(posts):.0f} chars on average), best of {args.repeat}")
    print(f"  {'':<34} {'mentions/s':>11}  {'matched posts':>13}  {'compile':>8}")
    print(f"  {'BrandMatcher (one automaton)':<34} {ours:>11,.0f}  {ours_matched:>13,}  {compile_s:>7.2f}s")
    print(f"  {'per-brand loop (baseline)':<34} {theirs:>11,.0f}  {theirs_matched:>13,}  "
          f"{baseline_compile_s:>7.2f}s")
    print(f"  speed-up: {ours / theirs:.1f}x")


if __name__ == "__main__":
    main()
