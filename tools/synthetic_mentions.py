"""Synthetic mentions at any size, for load tests and `make bench-scale`.

Writes JSON Lines in the job's input format, streamed (nothing is held but the current
record), spread over several files so that runners read them in parallel::

    python -m tools.synthetic_mentions --mentions 1000000 --files 16 --out /tmp/synthetic/1m

    python -m pipelines.run --config brands.yaml --input '/tmp/synthetic/1m/*.jsonl' --output_dir out/

What the posts look like (seeded: the same arguments give the same files):

- **lengths**: a log-normal number of words (median about 14, a long tail; Reddit's
  longer, X's capped at 280 characters), like real short-form posts;
- **languages**: en 45 %, ru 15 %, uk 10 %, sr 10 % (half Cyrillic, half Latin), hr 8 %,
  de 5 %, and 7 % with no language reported; words from small per-language vocabularies;
- **brands**: `--brand_rate` of the posts (default 0.6) name one of the config's brands
  (sometimes two), in the script of their language, as a name, an @handle or a #hashtag;
  the rest name none (the job's unmatched posts);
- **reposts**: `--repost_ratio` (default 0.2) are plain reposts (`RT @author: <text>`,
  `is_repost`, `repost_of`) of an earlier post; replies and quotes at smaller rates;
- **platforms**: x 50 %, reddit 20 %, mastodon 15 %, bluesky 15 %, each reporting the
  engagement counts it has (impressions on X only, for example; unknown stays null);
- **time**: spread evenly over `--days` days from `--start` (UTC), with a daily rhythm;
- **duplicates**: `--duplicate_ratio` (default 0.01) of the records are a second copy of
  a post (same platform and id), as overlapping exports have.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import random
import sys
import typing

UTC = datetime.timezone.utc

LANGS = (("en", 0.45), ("ru", 0.15), ("uk", 0.10), ("sr", 0.05), ("sr-Latn", 0.05), ("hr", 0.08), ("de", 0.05),
         (None, 0.07))
PLATFORMS = (("x", 0.50), ("reddit", 0.20), ("mastodon", 0.15), ("bluesky", 0.15))
WORDS = {
    "en": "the a is and to of in my this that it for with just was so not but have new today really love great "
          "bad worst price order delivery store phone battery camera drink taste summer week support service "
          "refund again why how better than ever good awful broken fast slow cheap expensive update app".split(),
    "ru": "и в не на что это я как так но уже очень сегодня новый цена доставка заказ магазин телефон батарея "
          "камера вкус лето неделя поддержка снова почему лучше хуже отлично ужас плохо быстро дорого дешево".split(),
    "uk": "і в не на що це я як так але вже дуже сьогодні новий ціна доставка замовлення магазин телефон "
          "батарея камера смак літо тиждень підтримка знову чому краще гірше чудово жах погано швидко".split(),
    "sr": "и у не на што је ја како тако али већ веома данас нови цена достава поруџбина продавница телефон "
          "батерија камера укус лето недеља подршка опет зашто боље горе одличан лош брзо скупо јефтино".split(),
    "sr-Latn": "i u ne na što je ja kako tako ali već veoma danas novi cena dostava porudžbina prodavnica telefon "
               "baterija kamera ukus leto nedelja podrška opet zašto bolje gore odličan loš brzo skupo".split(),
    "hr": "i u ne na što je ja kako tako ali već jako danas novi cijena dostava narudžba trgovina mobitel "
          "baterija kamera okus ljeto tjedan podrška opet zašto bolje gore super loše brzo skupo jeftino".split(),
    "de": "und der die das ist nicht ich wie aber schon sehr heute neu Preis Lieferung Bestellung Laden Handy "
          "Akku Kamera Geschmack Sommer Woche wieder warum besser schlechter toll schlimm schnell teuer".split(),
}
CYRILLIC = {"ru", "uk", "sr"}


def _pick(rnd: random.Random, weighted: typing.Sequence[tuple[typing.Any, float]]):
    x, acc = rnd.random(), 0.0
    for value, weight in weighted:
        acc += weight
        if x < acc:
            return value
    return weighted[-1][0]


def _is_cyrillic(text: str) -> bool:
    return any("\u0400" <= ch <= "\u04ff" for ch in text)


class Brand(typing.NamedTuple):
    names_latin: tuple[str, ...]
    names_cyrillic: tuple[str, ...]
    handles: tuple[str, ...]
    hashtags: tuple[str, ...]


def brands_from_config(path: str | None) -> list[Brand]:
    """The config's brands as the generator writes them (plain names, handles, hashtags)."""
    if path is None:
        return [Brand(("Sprite",), ("Спрайт",), ("Sprite",), ("Sprite",)),
                Brand(("Coca-Cola", "Coke"), ("Кока-Кола",), ("CocaCola",), ("CocaCola",))]
    from schemas.config import load_config

    out = []
    for brand in load_config(path).brands:
        latin = tuple(n for n in brand.names if not _is_cyrillic(n)) or tuple(brand.handles)
        cyrillic = tuple(n for n in brand.names if _is_cyrillic(n)) or latin
        if latin:
            out.append(Brand(latin, cyrillic, tuple(brand.handles), tuple(brand.hashtags)))
    if not out:
        raise ValueError(f"{path}: no brand with a name or handle to write")
    return out


def _words(rnd: random.Random, lang: str | None, platform: str) -> list[str]:
    vocab = WORDS[lang or "en"]
    # Log-normal word counts: median ~14, a tail of long posts (Reddit's are longer).
    mu = 2.65 + (0.6 if platform == "reddit" else 0.0)
    n = max(1, min(400, int(rnd.lognormvariate(mu, 0.75))))
    return [rnd.choice(vocab) for _ in range(n)]


def _brand_term(rnd: random.Random, brand: Brand, lang: str | None) -> str:
    kind = rnd.random()
    if kind < 0.15 and brand.handles:
        return "@" + rnd.choice(brand.handles)
    if kind < 0.25 and brand.hashtags:
        return "#" + rnd.choice(brand.hashtags)
    return rnd.choice(brand.names_cyrillic if lang in CYRILLIC else brand.names_latin)


def generate(n: int, *, seed: int = 1, start: datetime.date = datetime.date(2026, 7, 1), days: int = 92,
             brands: typing.Sequence[Brand] = (), brand_rate: float = 0.6, repost_ratio: float = 0.2,
             reply_ratio: float = 0.1, quote_ratio: float = 0.03, duplicate_ratio: float = 0.01
             ) -> typing.Iterator[dict]:
    """Yields `n` records in the job's input format (see the module docstring).

    Args:
        n: Records to write (duplicates included).
        seed: Random seed: the same arguments give the same records.
        start: First day (UTC).
        days: Days the posts spread over.
        brands: Brands to name (default: two drinks brands).
        brand_rate: Share of original posts that name a brand.
        repost_ratio: Share of posts that are plain reposts of an earlier post.
        reply_ratio: Share of original posts that reply to an earlier post.
        quote_ratio: Share of original posts that quote an earlier post.
        duplicate_ratio: Share of records that repeat an earlier record (same platform and id).

    Yields:
        One JSON-ready dict per record.
    """
    rnd = random.Random(seed)
    brands = list(brands) or brands_from_config(None)
    t0 = datetime.datetime.combine(start, datetime.time(), UTC).timestamp()
    span = days * 86400.0
    recent: list[dict] = []  # a small ring of earlier posts to repost, reply to, quote, duplicate
    for i in range(n):
        if recent and rnd.random() < duplicate_ratio:
            yield dict(rnd.choice(recent))
            continue
        # Evenly over the days, with a daily rhythm (quiet at night UTC).
        frac = (i + rnd.random()) / n
        ts = t0 + frac * span
        ts += 3600 * 4 * math.sin(2 * math.pi * ts / 86400)
        created = datetime.datetime.fromtimestamp(min(max(ts, t0), t0 + span - 1), UTC)
        platform = _pick(rnd, PLATFORMS)
        author = f"u{rnd.randrange(max(10, n // 5))}"
        record: dict[str, typing.Any] = {
            "id": f"syn-{seed}-{i:09d}", "platform": platform, "created_at": created.isoformat(),
            "author_id": author, "author_handle": f"user_{author}",
            "author_followers": int(rnd.paretovariate(1.2) * 50) if platform != "reddit" else None,
            "fetched_at": (created + datetime.timedelta(minutes=rnd.randrange(5, 600))).isoformat(),
        }
        if recent and rnd.random() < repost_ratio:
            original = rnd.choice(recent)
            record.update(text=f"RT @{original['author_handle']}: {original['text']}", lang=original["lang"],
                          is_repost=True, repost_of=original["id"], likes=0, replies=0, quotes=0, reposts=0)
        else:
            lang = _pick(rnd, LANGS)
            words = _words(rnd, lang, platform)
            if rnd.random() < brand_rate:
                for _ in range(2 if rnd.random() < 0.1 else 1):
                    words.insert(rnd.randrange(len(words) + 1), _brand_term(rnd, rnd.choice(brands), lang))
            text = " ".join(words)
            if platform == "x":
                text = text[:280]
            record.update(text=text, lang=lang.split("-")[0] if lang else None, is_repost=False)
            if recent and rnd.random() < reply_ratio:
                record.update(is_reply=True, reply_to=rnd.choice(recent)["id"])
            elif recent and rnd.random() < quote_ratio:
                record.update(is_quote=True, quote_of=rnd.choice(recent)["id"])
            likes = int(rnd.expovariate(1 / 8))
            record.update(likes=likes, reposts=int(rnd.expovariate(1 / 2)), replies=int(rnd.expovariate(1)),
                          quotes=int(rnd.expovariate(3)) if platform in ("x", "bluesky") else None,
                          impressions=likes * 40 + rnd.randrange(1, 500) if platform == "x" else None)
        if len(recent) < 512:
            recent.append(record)
        else:
            recent[rnd.randrange(512)] = record
        yield record


def write_files(records: typing.Iterable[dict], out_dir: str, files: int) -> list[str]:
    """Writes records round-robin into `files` JSON Lines files under `out_dir`; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, f"mentions-{k:04d}.jsonl") for k in range(files)]
    handles = [open(p, "w", encoding="utf-8") for p in paths]
    try:
        for i, record in enumerate(records):
            handles[i % files].write(json.dumps(record, ensure_ascii=False) + "\n")
    finally:
        for fh in handles:
            fh.close()
    return paths


def main(argv: typing.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mentions", type=int, required=True, help="Records to write.")
    parser.add_argument("--out", required=True, help="Directory for the JSON Lines files.")
    parser.add_argument("--files", type=int, default=8, help="Number of files (parallel reads).")
    parser.add_argument("--config", default="brands.yaml", help="Brand config whose brands the posts name.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", default="2026-07-01", help="First day, YYYY-MM-DD (UTC).")
    parser.add_argument("--days", type=int, default=92)
    parser.add_argument("--brand_rate", type=float, default=0.6)
    parser.add_argument("--repost_ratio", type=float, default=0.2)
    parser.add_argument("--duplicate_ratio", type=float, default=0.01)
    args = parser.parse_args(argv)
    if args.mentions < 0 or args.files < 1 or args.days < 1:
        parser.error("--mentions must be >= 0, --files and --days >= 1")
    records = generate(args.mentions, seed=args.seed, start=datetime.date.fromisoformat(args.start), days=args.days,
                       brands=brands_from_config(args.config), brand_rate=args.brand_rate,
                       repost_ratio=args.repost_ratio, duplicate_ratio=args.duplicate_ratio)
    paths = write_files(records, args.out, args.files)
    print(f"{args.mentions:,} mentions -> {len(paths)} files in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
