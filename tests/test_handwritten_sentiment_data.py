"""Checks on the hand-written sentiment and stance data in data/handwritten/.

The per-language accuracy figures of the sentiment model are computed on these files, so the files must
hold what data/handwritten/README.md promises: every line well formed, enough posts per language and split,
no label swamping a split, brand spans that really occur in their posts, and a TEST split that shares no
post (after normalisation) with the splits a model is trained or selected on.
"""

import collections
import json
import pathlib
import re
import unicodedata

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / 'data' / 'handwritten'
LANGS = ('en', 'ru', 'uk', 'hr', 'sr')
SPLITS = ('train', 'validation', 'test')
LABELS = {'negative', 'neutral', 'positive'}
KINDS = {'complaint', 'praise', 'question', 'news', 'ad', 'sarcasm', 'mixed', 'recommendation', 'thanks'}
DOMAINS = {'retail', 'food_delivery', 'telecom', 'banking', 'fashion', 'electronics', 'drinks', 'transport',
           'streaming', 'food'}
SENTIMENT_MIN = {'train': 150, 'validation': 50, 'test': 70}
STANCE_MIN = {'train': 40, 'validation': 12, 'test': 20}
CYRILLIC = re.compile('[\u0400-\u04ff]')


def _read(path: pathlib.Path) -> list[dict]:
    """Reads one JSONL file; a line that does not parse fails the test that reads it."""
    with path.open(encoding='utf-8') as f:
        return [json.loads(line) for line in f]


SENTIMENT = {split: _read(ROOT / 'sentiment' / f'{split}.jsonl') for split in SPLITS}
STANCE = {split: _read(ROOT / 'stance' / f'{split}.jsonl') for split in SPLITS}


def normalise(text: str) -> str:
    """Casefolds, drops diacritics, punctuation and emoji, and collapses spaces.

    Two posts that differ only in these are the same post for the split-overlap checks.
    """
    text = text.casefold().replace('đ', 'd')
    text = ''.join(c for c in unicodedata.normalize('NFKD', text) if not unicodedata.combining(c))
    text = re.sub(r'[\W_]+', ' ', text)
    return ' '.join(text.split())


def test_normalise_equates_posts_that_differ_in_case_diacritics_and_emoji():
    assert normalise('Nisam mogao VJEROVATI koliko je brzo stiglo!! 😍') == normalise(
        'nisam mogao vjerovati, koliko je brzo stiglo')
    assert normalise('Šta ćeš, Đorđe…') == 'sta ces dorde'
    assert normalise('Сбер опять лёг 🙃') == normalise('сбер опять лег')
    assert normalise('Wolt je brz') != normalise('Glovo je brz')


@pytest.mark.parametrize('split', SPLITS)
def test_sentiment_lines_have_the_fields_and_allowed_values(split):
    fields = {'id', 'lang', 'script', 'text', 'label', 'brand', 'domain', 'kind', 'sarcasm'}
    for row in SENTIMENT[split]:
        assert set(row) == fields, row['id']
        assert row['lang'] in LANGS, row['id']
        assert row['label'] in LABELS, row['id']
        assert row['kind'] in KINDS, row['id']
        assert row['domain'] in DOMAINS, row['id']
        assert isinstance(row['sarcasm'], bool), row['id']
        assert row['sarcasm'] == (row['kind'] == 'sarcasm'), row['id']
        assert row['brand'].strip() and row['text'].strip() == row['text'] and row['text'], row['id']
        assert row['id'].startswith(f"{row['lang']}-{split}-"), row['id']
        assert row['script'] == ('Cyrl' if CYRILLIC.search(row['text']) else 'Latn'), row['id']


@pytest.mark.parametrize('split', SPLITS)
def test_stance_lines_have_the_fields_and_spans_occur_in_text(split):
    for row in STANCE[split]:
        assert set(row) == {'id', 'lang', 'script', 'text', 'targets', 'domain'}, row['id']
        assert row['lang'] in LANGS and row['domain'] in DOMAINS, row['id']
        assert row['id'].startswith(f"{row['lang']}-stance-{split}-"), row['id']
        assert row['script'] == ('Cyrl' if CYRILLIC.search(row['text']) else 'Latn'), row['id']
        assert 2 <= len(row['targets']) <= 3, row['id']
        brands = [t['brand'] for t in row['targets']]
        assert len(set(brands)) == len(brands), row['id']
        for target in row['targets']:
            assert set(target) == {'brand', 'span', 'label'}, row['id']
            assert re.fullmatch('[a-z0-9_]+', target['brand']), row['id']
            assert target['label'] in LABELS, row['id']
            assert target['span'] and target['span'] in row['text'], (row['id'], target['span'])


def test_stance_spans_of_one_post_name_different_places():
    for split in SPLITS:
        for row in STANCE[split]:
            starts = [row['text'].index(t['span']) for t in row['targets']]
            assert len(set(starts)) == len(starts), row['id']


@pytest.mark.parametrize('split', SPLITS)
def test_each_language_has_the_minimum_count(split):
    sentiment = collections.Counter(row['lang'] for row in SENTIMENT[split])
    stance = collections.Counter(row['lang'] for row in STANCE[split])
    for lang in LANGS:
        assert sentiment[lang] >= SENTIMENT_MIN[split], (lang, sentiment[lang])
        assert stance[lang] >= STANCE_MIN[split], (lang, stance[lang])


@pytest.mark.parametrize('split', SPLITS)
def test_each_label_holds_20_to_45_percent_per_language(split):
    for lang in LANGS:
        labels = collections.Counter(row['label'] for row in SENTIMENT[split] if row['lang'] == lang)
        total = sum(labels.values())
        for label in LABELS:
            assert 0.20 <= labels[label] / total <= 0.45, (lang, split, label, labels[label], total)


@pytest.mark.parametrize('split', SPLITS)
def test_stance_uses_every_label_per_language(split):
    for lang in LANGS:
        labels = collections.Counter(t['label'] for row in STANCE[split] if row['lang'] == lang
                                     for t in row['targets'])
        assert set(labels) == LABELS, (lang, split, labels)


def test_ids_are_unique():
    ids = [row['id'] for rows in (*SENTIMENT.values(), *STANCE.values()) for row in rows]
    duplicates = [i for i, n in collections.Counter(ids).items() if n > 1]
    assert duplicates == []


@pytest.mark.parametrize('dataset', ['sentiment', 'stance'])
def test_no_normalised_text_occurs_twice_or_in_two_splits(dataset):
    data = SENTIMENT if dataset == 'sentiment' else STANCE
    seen: dict[str, str] = {}
    clashes = []
    for split in SPLITS:
        for row in data[split]:
            key = normalise(row['text'])
            if key in seen:
                clashes.append((seen[key], row['id']))
            seen[key] = row['id']
    assert clashes == []


def test_no_train_or_validation_post_echoes_the_wording_of_a_test_post():
    """Word sets (words of 3+ letters, normalised) of a test post and any other post of its language share
    under 40 % (Jaccard) or fewer than 3 words: a paraphrase of a test post would leak it into training."""
    def words(text: str) -> set[str]:
        return {w for w in normalise(text).split() if len(w) > 2}

    test = [(row['lang'], row['id'], words(row['text'])) for row in SENTIMENT['test']]
    echoes = []
    for row in SENTIMENT['train'] + SENTIMENT['validation']:
        mine = words(row['text'])
        for lang, test_id, theirs in test:
            shared = len(mine & theirs)
            if lang == row['lang'] and shared >= 3 and shared / len(mine | theirs) >= 0.4:
                echoes.append((row['id'], test_id))
    assert echoes == []


def test_no_post_is_shared_between_sentiment_and_stance():
    sentiment = {normalise(row['text']) for rows in SENTIMENT.values() for row in rows}
    shared = [row['id'] for rows in STANCE.values() for row in rows if normalise(row['text']) in sentiment]
    assert shared == []


def test_each_language_test_split_has_sarcasm():
    for lang in LANGS:
        sarcastic = [row for row in SENTIMENT['test'] if row['lang'] == lang and row['sarcasm']]
        assert len(sarcastic) >= 3, lang


def test_serbian_is_written_in_both_scripts_in_every_split():
    for split in SPLITS:
        scripts = collections.Counter(row['script'] for row in SENTIMENT[split] if row['lang'] == 'sr')
        total = sum(scripts.values())
        assert 0.3 <= scripts['Cyrl'] / total <= 0.7, (split, scripts)


def test_some_russian_is_typed_in_latin_letters():
    latin = [row['id'] for rows in SENTIMENT.values() for row in rows if row['lang'] == 'ru'
             and row['script'] == 'Latn']
    assert len(latin) >= 5
