"""`pipelines.options.validate`: one check of every flag, a typed frozen configuration, errors that name the flag.

Each rule between flags is tried with otherwise valid flags (a real brand config, a real input
file, a writable output directory), so that the error seen is the rule's own.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime
import json
import pathlib

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from connectors.base import connector_names
from pipelines.options import FetchConfig, JobConfig, ModelConfig, SocialListeningOptions, validate
from schemas.config import ConfigError

ROOT = pathlib.Path(__file__).resolve().parents[1]
RECORD = {"id": "1", "text": "Sprite all summer", "created_at": "2026-09-07T10:00:00Z", "platform": "x"}


@pytest.fixture
def base(tmp_path: pathlib.Path) -> dict:
    brands = tmp_path / "brands.yaml"
    brands.write_text("brands:\n  - id: sprite\n    names: [Sprite]\n    handles: ['@Sprite']\n"
                      "topics:\n  threshold: 0.7\n", encoding="utf-8")
    inputs = tmp_path / "in.jsonl"
    inputs.write_text(json.dumps(RECORD) + "\n", encoding="utf-8")
    return {"config": str(brands), "input": str(inputs), "out": str(tmp_path / "out")}


def _validate(*argv: str) -> JobConfig:
    return validate(PipelineOptions(list(argv)))


def _files(base: dict, *extra: str) -> JobConfig:
    return _validate("--config", base["config"], "--input", base["input"], "--output_dir", base["out"], *extra)


def _platform(base: dict, *extra: str) -> JobConfig:
    return _validate("--config", base["config"], "--source", "mastodon", "--output_dir", base["out"], *extra)


def _recent(hours: float) -> str:
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=hours)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("make, flags, named", [
    (lambda b, *e: _validate("--input", b["input"], "--output_dir", b["out"], *e), [], "--config is required"),
    (lambda b, *e: _validate("--config", b["config"], "--output_dir", b["out"], *e), [], "--input is required"),
    (lambda b, *e: _validate("--config", b["config"], "--input", b["input"], *e), [], "--output_dir is required"),
    (_files, ["--source", "mastodon"], "--input is read by the file source only"),
    (_platform, ["--chunk_days", "7"], "--chunk_days reads --input files only"),
    (_files, ["--chunk_posts", "100", "--window_start", "2026-09-01"], "--chunk_posts slices a full run"),
    (_files, ["--chunk_days", "3", "--incremental"], "--chunk_days slices a full run"),
    (_files, ["--chunk_posts", "100", "--dry_run", "true"], "--dry_run builds one (drop --chunk_posts)"),
    (_files, ["--chunk_posts", "-1"], "--chunk_posts must not be negative"),
    (_files, ["--window_end", "2026-09-10"], "--window_end needs --window_start"),
    (_files, ["--window_start", "2026-13-01"], "--window_start"),
    (_files, ["--start_time", "2026-09-01T00:00:00Z"], "--start_time applies to the platform sources only"),
    (_platform, ["--end_time", "2026-09-01T00:00:00Z"], "--end_time needs --start_time"),
    (_platform, ["--start_time", _recent(2), "--end_time", _recent(3)], "--start_time must be before --end_time"),
    (_platform, ["--page_size", "0"], "--page_size must be positive"),
    (_platform, ["--http_backoff", "-1"], "--http_backoff must not be negative"),
    (_platform, ["--langs", "en,english"], "--langs: 'english' is not a language code"),
    (_platform, ["--http_timeout", "inf"], "--http_timeout must be a finite number"),
    (lambda b, *e: _validate("--config", b["config"], "--source", "x", "--output_dir", b["out"], *e),
     ["--start_time", _recent(24 * 10)], "--x_search all"),
    (lambda b, *e: _validate("--config", b["config"], "--source", "x", "--output_dir", b["out"], *e),
     ["--x_max_query_length", "0"], "--x_max_query_length must be positive"),
    (_files, ["--source", "file,tiktok"], "--source 'tiktok' is not a source"),
    (_files, ["--label_map", "LABEL_0=negative"], "--label_map applies to a Hugging Face --model"),
    (_files, ["--model", "some/checkpoint", "--label_map", "LABEL_0=bad"], "--label_map: values must be"),
    (_files, ["--topic_label_map", "LABEL_0=price"], "--topic_label_map applies to a Hugging Face --topic_model"),
    (_files, ["--topic_threshold", "1.5"], "--topic_threshold must be in (0, 1]"),
    (_files, ["--max_tokens", "4"], "--max_tokens must be at least 8"),
    (_files, ["--inference_batch_size", "0"], "--inference_batch_size must be positive"),
])
def test_each_rule_stops_the_run_naming_its_flag(base, make, flags, named):
    with pytest.raises(ConfigError) as error:
        make(base, *flags)
    assert named in str(error.value)
    assert not pathlib.Path(base["out"]).exists()  # nothing written: the output probe comes last


def test_the_x_rule_on_the_backfill_start_holds_for_recent_search_only(base):
    config = _validate("--config", base["config"], "--source", "x", "--output_dir", base["out"], "--x_search", "all",
                       "--start_time", _recent(24 * 10))
    assert config.fetch.connectors["x"].search == "all"


def test_a_valid_command_line_gives_a_typed_frozen_configuration(base):
    config = _files(base, "--source", "file,mastodon,x", "--mastodon_instance", "mastodon.example",
                    "--x_search", "all", "--x_bearer_token_file", "/secrets/x", "--x_max_query_length", "1024",
                    "--langs", "EN,uk", "--page_size", "50", "--start_time", _recent(48),
                    "--precision", "int8", "--inference_batch_size", "16")
    assert config.sources == ("file", "mastodon", "x") and config.inputs == (base["input"],)
    assert config.output_dir == base["out"] and config.brands.brand_ids() == ["sprite"]
    assert isinstance(config.model, ModelConfig) and isinstance(config.fetch, FetchConfig)
    assert (config.model.precision, config.model.batch_size, config.model.topic_threshold) == ("int8", 16, 0.7)
    mastodon, x = config.fetch.connectors["mastodon"], config.fetch.connectors["x"]
    assert mastodon.base_url == "https://mastodon.example" and x.base_url == ""
    assert (x.search, x.token_file, x.max_query_length) == ("all", "/secrets/x", 1024)
    assert mastodon.max_query_length == 512 and mastodon.token_file is None  # the X flags are the X connector's
    assert x.langs == mastodon.langs == ("en", "uk") and x.page_size == mastodon.page_size == 50
    assert config.fetch.start is not None and config.window is None and config.chunk_posts is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.output_dir = "elsewhere"  # type: ignore[misc]


def test_window_flags_are_parsed_into_days(base):
    config = _files(base, "--window_start", "2026-09-01", "--window_end", "2026-09-08")
    assert (config.window.start, config.window.end, config.window.incremental) == (
        datetime.date(2026, 9, 1), datetime.date(2026, 9, 8), False)
    assert _files(base, "--incremental").window.incremental is True


def test_every_connector_declares_its_flags_in_its_own_module():
    actions = {a.dest: a for a in SocialListeningOptions.flag_actions()}
    for name in connector_names():
        own = [dest for dest in actions if dest.startswith(f"{name}_")]
        assert own, name
        source = (ROOT / "connectors" / f"{name}.py").read_text(encoding="utf-8")
        for dest in own:
            assert f'"--{dest}"' in source, dest


def _string_constants(path: pathlib.Path) -> set:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}


@pytest.mark.parametrize("module", ["pipelines/run.py", "pipelines/options.py", "pipelines/plan.py",
                                    "pipelines/compose.py", "transforms/job.py"])
def test_the_job_modules_name_no_platform(module):
    strings = _string_constants(ROOT / module)
    for name in connector_names():
        assert name not in strings, (module, name)
        assert not [s for s in strings if s.startswith((f"{name}_", f"--{name}_"))], (module, name)
