"""The command line: --help lists every flag of the job; a misconfiguration exits 2 at start naming the flag or field.

Two cases go through the real command line (`python -m pipelines.run` in a subprocess: about 6 s each,
most of it importing Beam and torch): --help, and one misconfiguration; the others call `main()` in this
process, with the steps that do the work replaced by ones that fail the test, so that an error found late cannot pass.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys

import pytest

from pipelines import run as job
from pipelines.run import SocialListeningOptions, check_output_dir, main
from schemas.config import ConfigError

ROOT = pathlib.Path(__file__).resolve().parents[1]
RECORD = {"id": "1", "text": "Sprite all summer", "created_at": "2026-09-07T10:00:00Z", "platform": "x"}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.run", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def _job_flags() -> list[tuple[str, str]]:
    """The job's flags and their help, read from the options class (not a list kept by hand)."""
    parser = argparse.ArgumentParser(add_help=False)
    SocialListeningOptions._add_argparse_args(parser)
    return [(action.option_strings[0], action.help) for action in parser._actions]


@pytest.mark.slow  # a new interpreter per case: the real command line
def test_help_lists_every_flag_of_the_job_with_its_help():
    flags = _job_flags()
    assert len(flags) >= 35
    proc = _cli("--help")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    listed = proc.stdout.split("\n\nConfig, input and output:\n", 1)[1]  # past the usage line
    for flag, text in flags:
        assert f"  {flag} " in listed or f"  {flag}\n" in listed, flag
        assert " ".join(text.split()[:3]) in " ".join(listed.split()), (flag, text)
    for section in ("Sentiment and topic models:", "Platform connectors", "Windows and slices"):
        assert section in listed
    assert "https://beam.apache.org/documentation/runners/" in proc.stdout and "--runner" in proc.stdout


def test_dash_h_prints_the_same_help(capsys):
    assert main(["--config", "brands.yaml", "-h"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == job.help_text().strip() and "--chunk_posts" in out


@pytest.fixture
def files(tmp_path: pathlib.Path) -> dict:
    brands = tmp_path / "brands.yaml"
    brands.write_text("brands:\n  - id: sprite\n    names: [Sprite]\n    hashtags: [Sprite]\n", encoding="utf-8")
    inputs = tmp_path / "in.jsonl"
    inputs.write_text(json.dumps(RECORD) + "\n", encoding="utf-8")
    a_file = tmp_path / "report.txt"
    a_file.write_text("not a directory\n", encoding="utf-8")
    return {"brands": str(brands), "input": str(inputs), "file": str(a_file), "tmp": tmp_path}


def _bad_config(files: dict, name: str, text: str) -> str:
    path = files["tmp"] / name
    path.write_text(text, encoding="utf-8")
    return str(path)


BOMB = ("brands:\n  - names: [Sprite]\n    id:\n      - &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
        + "".join(f"      - &{c} [{','.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")))


def _case_argv(files: dict, case: str) -> list[str]:
    out = str(files["tmp"] / "out")
    deep = "brands:\n  - id: a\n    query: '" + "(" * 200 + "sprite" + ")" * 200 + "'\n"
    return {
        "output_dir is a file": ["--config", files["brands"], "--input", files["input"], "--output_dir", files["file"]],
        "alias bomb": ["--config", _bad_config(files, "bomb.yaml", BOMB), "--input", files["input"],
                       "--output_dir", out],
        "200 nested parentheses": ["--config", _bad_config(files, "deep.yaml", deep), "--input", files["input"],
                                   "--output_dir", out],
        "NaN timeout": ["--config", files["brands"], "--source", "mastodon", "--output_dir", out,
                        "--http_timeout", "nan"],
    }[case]


CASES = [
    ("output_dir is a file", "--output_dir"),
    ("alias bomb", "brands[0].id"),
    ("200 nested parentheses", "brands[0].query: nesting deeper than 50"),
    ("NaN timeout", "--http_timeout"),
]


@pytest.mark.slow  # a new interpreter: the real command line
def test_a_misconfiguration_exits_2_from_the_command_line(files):
    # One case through `python -m pipelines.run` (the exit status and stderr a user sees); the others go
    # through the same main() in this process below.
    proc = _cli(*_case_argv(files, "alias bomb"))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "brands[0].id" in proc.stderr and "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-2000:]
    assert len(proc.stderr.strip().splitlines()[-1]) < 400


@pytest.mark.parametrize("case, named", CASES)
def test_hostile_misconfigurations_exit_2_with_a_short_message(files, no_work, capsys, case, named):
    assert main(_case_argv(files, case)) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err, err[-2000:]
    assert len(err.strip().splitlines()[-1]) < 400


@pytest.mark.parametrize("flags, named", [
    (lambda f: ["--output_dir", f["file"]], "--output_dir '{file}': is a file, not a directory"),
    (lambda f: ["--output_dir", f["file"] + "/out"], "--output_dir '{file}/out': cannot write there"),
    (lambda f: ["--output_dir", str(f["tmp"] / ("x" * 300))], "cannot write there: File name too long"),
    (lambda f: ["--output_dir", str(f["tmp"] / "o"), "--window_start", "0001-01-01"],
     "--window_start: 0001-01-01 is before 1990-01-01"),
    (lambda f: ["--output_dir", str(f["tmp"] / "o"), "--inference_threads", "100000000"],
     "--inference_threads must be at most 1,024"),
])
def test_misconfigurations_stop_the_run_before_any_work(files, no_work, capsys, flags, named):
    argv = ["--config", files["brands"], "--input", files["input"]] + flags(files)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert named.format(**files) in err and "Traceback" not in err, err


@pytest.mark.parametrize("flags, named", [
    (["--lookback_hours", "1e300"], "--lookback_hours must be at most"),
    (["--start_time", "0001-01-01T00:00:00Z"], "--start_time: 0001-01-01 is before 1990-01-01"),
    (["--start_time", "2026-01-01T00:00:00Z", "--end_time", "9999-12-31T00:00:00Z"],
     "--start_time .. --end_time in slices of --slice_hours: more than 10,000 slices"),
    (["--start_time", "9" * 5_000], "--start_time: '99999"),
])
def test_platform_flag_misconfigurations_exit_2(files, no_work, capsys, flags, named):
    argv = ["--config", files["brands"], "--source", "mastodon", "--output_dir", str(files["tmp"] / "o")] + flags
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err and len(err) < 400, err[:1000]


def test_a_deep_label_map_is_a_flag_error(files, capsys):
    argv = ["--config", files["brands"], "--input", files["input"], "--output_dir", str(files["tmp"] / "o"),
            "--label_map", '{"a":' * 100_000]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --label_map: not valid JSON") and len(err) < 400, err[:1000]


def test_the_output_dir_probe_leaves_the_filesystem_as_it_was(tmp_path):
    existing = tmp_path / "out"
    existing.mkdir()
    (existing / "manifest.json").write_text("{}", encoding="utf-8")
    check_output_dir(str(existing))
    check_output_dir(str(tmp_path / "a" / "b") + "/")
    with pytest.raises(ConfigError, match="--output_dir .*: cannot write there"):
        check_output_dir(str(tmp_path / "a" / "b" / "c" / "\0"))
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["manifest.json", "out"]
