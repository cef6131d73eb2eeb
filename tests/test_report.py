"""The analyst's page renders from the job's Parquet outputs: every section, real PNG charts, the alerts."""

from __future__ import annotations

import base64
import io
import re
import shutil

import pytest
from PIL import Image

from report.html_report import SECTIONS, main, render


@pytest.fixture(scope="module")
def out(metrics_job):
    """The job's outputs on the metrics tests' five weeks (the session's `metrics_job` run, read only)."""
    return metrics_job


@pytest.fixture(scope="module")
def page(out):
    return render(str(out))


def _images(page: str):
    return re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)">', page)


def test_every_section_is_there(page):
    for title in SECTIONS:
        assert f">{title}</h2>" in page
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")


def test_charts_are_valid_pngs(page):
    images = _images(page)
    alts = [alt for alt, _ in images]
    # volume per competitive set (sprite + cocacola, fanta alone), share of voice for the set,
    # engagement, service (the brand account's replies), topic drivers
    assert sum(a.startswith("mentions, ") for a in alts) == 2
    assert sum(a.startswith("share of voice, ") for a in alts) == 1
    assert {"engagement rates", "service", "topic drivers"} <= set(alts)
    for alt, data in images:
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        image.verify()
        assert image.format == "PNG" and image.size[0] >= 600 and image.size[1] >= 200, alt


def test_alerts_and_key_figures_are_in_the_page(page):
    alerts = page[page.index(">Alerts</h2>"):]
    assert "2026-09-29" in alerts and "negative spike" in alerts and "purchase_delivery (25)" in alerts
    assert "broken (25)" in alerts
    # Under each alert, its representative posts (docs/alerts.md).
    assert "<ol class='posts'>" in alerts and "my order arrived broken, awful" in alerts
    overview = page[page.index(">Overview</h2>"):page.index(">Mentions and net sentiment</h2>")]
    assert "sprite" in overview and "fanta" in overview and "3 brands" in overview
    assert "No account snapshots" in page  # the file source has none: said, not drawn empty


def test_command_line_writes_the_page_and_fails_clearly_without_outputs(out, tmp_path, capsys):
    target = tmp_path / "r.html"
    assert main(["--output_dir", str(out), "--report", str(target)]) == 0
    assert _images(target.read_text(encoding="utf-8"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["--output_dir", str(empty)]) == 2
    assert "no metrics table" in capsys.readouterr().err


def test_renders_without_topics_alerts_or_manifest(out, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(out / "metrics", bare / "metrics")
    page = render(str(bare))
    assert "No topics" in page and "No alerts." in page
    assert all(f">{t}</h2>" in page for t in SECTIONS)


def test_audience_chart_when_the_connector_took_snapshots(out, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from report.html_report import read_table

    metrics = read_table(str(out), "metrics")
    sprite = (metrics["brand_id"] == "sprite") & metrics["platform"].isna()
    metrics.loc[sprite & (metrics["period"] == "day"), "account_followers"] = range(
        1000, 1000 + int((sprite & (metrics["period"] == "day")).sum()))
    metrics.loc[sprite & (metrics["period"] == "month"), "follower_growth_rate"] = 0.0123
    for period, rows in metrics.groupby("period"):
        target = tmp_path / "o" / "metrics" / f"period={period}"
        target.mkdir(parents=True)
        rows = rows.drop(columns="period").assign(period_start=rows["period_start"].dt.date)
        pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), target / "part-0.parquet")
    page = render(str(tmp_path / "o"))
    assert "followers" in [alt for alt, _ in _images(page)]
    assert "sprite Sep 2026 +1.23%" in page
