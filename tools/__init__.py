"""Developer tools that build data; none of them runs on the job's workers, so `setup.py` does not ship them.

    python -m tools.build_sample          # the bundled sample, data/sample/mentions.jsonl (`make sample`)
    python -m tools.synthetic_mentions    # synthetic mentions at any size, for `make bench-scale`
    python tools/build_hostile_corpus.py tests/data/hostile   # the hostile input corpus
"""
