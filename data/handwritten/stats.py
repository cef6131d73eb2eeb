"""Prints the counts of the hand-written sentiment and stance data, as pasted into README.md.

Run from the repository root: python data/handwritten/stats.py
"""

import collections
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent
LANGS = ('en', 'ru', 'uk', 'hr', 'sr')
SPLITS = ('train', 'validation', 'test')
LABELS = ('negative', 'neutral', 'positive')


def read(dataset: str, split: str) -> list[dict]:
    """Reads one split of one dataset.

    Args:
        dataset: 'sentiment' or 'stance'.
        split: 'train', 'validation' or 'test'.

    Returns:
        The split's records, in file order.
    """
    with (ROOT / dataset / f'{split}.jsonl').open(encoding='utf-8') as f:
        return [json.loads(line) for line in f]


def sentiment_table() -> str:
    """Posts per language and split, with their labels, sarcastic posts and Cyrillic/Latin scripts."""
    lines = ['| lang | split | posts | negative | neutral | positive | sarcasm | Cyrl/Latn |',
             '|---|---|---:|---:|---:|---:|---:|---|']
    for lang in LANGS:
        for split in SPLITS:
            rows = [r for r in read('sentiment', split) if r['lang'] == lang]
            labels = collections.Counter(r['label'] for r in rows)
            scripts = collections.Counter(r['script'] for r in rows)
            sarcasm = sum(r['sarcasm'] for r in rows)
            lines.append(f"| {lang} | {split} | {len(rows)} | " + ' | '.join(str(labels[x]) for x in LABELS)
                         + f" | {sarcasm} | {scripts['Cyrl']}/{scripts['Latn']} |")
    return '\n'.join(lines)


def stance_table() -> str:
    """Posts per language and split, and the labels of their brand targets."""
    lines = ['| lang | split | posts | targets | negative | neutral | positive |', '|---|---|---:|---:|---:|---:|---:|']
    for lang in LANGS:
        for split in SPLITS:
            rows = [r for r in read('stance', split) if r['lang'] == lang]
            labels = collections.Counter(t['label'] for r in rows for t in r['targets'])
            lines.append(f"| {lang} | {split} | {len(rows)} | {sum(labels.values())} | "
                         + ' | '.join(str(labels[x]) for x in LABELS) + ' |')
    return '\n'.join(lines)


def kind_and_domain_table() -> str:
    """Sentiment posts per kind and per domain, all languages and splits together."""
    rows = [r for split in SPLITS for r in read('sentiment', split)]
    kinds = collections.Counter(r['kind'] for r in rows)
    domains = collections.Counter(r['domain'] for r in rows)
    return ('kinds: ' + ', '.join(f'{k} {n}' for k, n in kinds.most_common()) + '\n'
            + 'domains: ' + ', '.join(f'{k} {n}' for k, n in domains.most_common()))


if __name__ == '__main__':
    print('Sentiment (data/handwritten/sentiment/)\n')
    print(sentiment_table())
    print('\n' + kind_and_domain_table())
    print('\nStance (data/handwritten/stance/)\n')
    print(stance_table())
