"""One HTML page for analysts, rendered from the job's Parquet outputs alone.

    python -m report.html_report --output_dir out/       # -> out/report.html
    make report                                          # the same, on `make run`'s outputs

Reads `metrics/`, `topic_metrics/`, `alerts/`, `response_queue/` and `queue_metrics/` (and `manifest.json`
when present) of the run committed in `--output_dir` (its current snapshot, resolved once, so that
every table and the manifest are the same run's while the next run commits) with pyarrow and pandas,
draws the charts with matplotlib, and writes a
single self-contained page (charts embedded as PNG): volume and net sentiment over time
per brand with the alerts marked, share of voice per competitive set (by mentions, by
engagement, of positive talk), engagement rates, customer service and audience when the
connectors provided them, the response queue per brand (top items, backlog trend), the topics
that drove negative sentiment, and the alerts.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import html
import io
import json
import os
import sys
import typing

import matplotlib

matplotlib.use("Agg")  # no display: render to PNG only

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow.dataset as ds  # noqa: E402

from transforms.snapshots import current_snapshot  # noqa: E402

SECTIONS = ("Overview", "Mentions and net sentiment", "Share of voice", "Engagement rates", "Customer service",
            "Response queue", "Audience", "Topic drivers of negative sentiment", "Alerts")
_ALERT_COLOURS = {"negative_spike": "#d62728", "negative_rate_spike": "#ff7f0e", "share_of_voice_drop": "#7f7f7f"}
# Marker and size per alert kind, so that two alerts on the same day stay visible.
_ALERT_MARKERS = {"negative_spike": ("o", 130), "negative_rate_spike": ("D", 45), "share_of_voice_drop": ("v", 70)}
_ENGAGEMENT_RATES = (
    ("engagement_rate_impressions", "Engagement rate per impression", "impression_reporting_mentions"),
    ("beyond_likes_rate", "Beyond likes: (reposts + replies + quotes) / impressions", "impression_reporting_mentions"),
    ("engagement_rate_followers", "Engagement rate per follower (reach)", "follower_reporting_mentions"),
    ("amplification_rate", "Amplification: reposts + quotes per mention", "amplification_reporting_mentions"),
    ("conversation_rate", "Conversation: replies per mention", "reply_reporting_mentions"),
    ("applause_rate", "Applause: likes per mention", "like_reporting_mentions"),
)


class ReportError(Exception):
    """The outputs cannot be reported on (e.g. no metrics table); the message says what to do."""


# ---- reading ------------------------------------------------------------------------------------

def read_table(output_dir: str, table: str) -> pd.DataFrame:
    """A Hive-partitioned table of the job as a DataFrame (empty when the table is absent)."""
    path = os.path.join(output_dir, table)
    if not os.path.isdir(path) or not any(name.endswith(".parquet") for _r, _d, files in os.walk(path)
                                          for name in files):
        return pd.DataFrame()
    frame = ds.dataset(path, format="parquet", partitioning="hive").to_table().to_pandas()
    for column in ("period", "step"):
        if column in frame.columns:
            frame[column] = frame[column].astype(str)
    if "period_start" in frame.columns:
        frame["period_start"] = pd.to_datetime(frame["period_start"])
    return frame


def _totals(metrics: pd.DataFrame, period: str) -> pd.DataFrame:
    """The total rows (all platforms together) of one period type."""
    rows = metrics[(metrics["period"] == period) & metrics["platform"].isna()]
    return rows.sort_values(["brand_id", "period_start"])


# ---- drawing ------------------------------------------------------------------------------------

def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(png: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{png}">'


def _colours(brands: typing.Sequence[str]) -> dict[str, str]:
    palette = plt.get_cmap("tab10").colors
    return {b: matplotlib.colors.to_hex(palette[i % len(palette)]) for i, b in enumerate(sorted(brands))}


def _date_axis(ax) -> None:
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(maxticks=8))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
    ax.grid(True, alpha=0.3)


def _groups(totals: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """Competitive sets (title, brands by mentions), then each brand without competitors alone."""
    volume = totals.groupby("brand_id")["mentions"].sum().sort_values(ascending=False)
    sets = totals.groupby("brand_id")["competitive_set"].first()
    out, seen = [], set()
    for brand in volume.index:
        if brand in seen:
            continue
        members = [b for b in volume.index if sets.get(b) is not None and sets.get(b) == sets.get(brand)]
        members = members if sets.get(brand) is not None and members else [brand]
        seen.update(members)
        title = f"competitive set: {', '.join(members)}" if sets.get(brand) is not None else f"{brand} (no competitors)"
        out.append((title, members))
    return out


def chart_volume(daily: pd.DataFrame, weekly: pd.DataFrame, alerts: pd.DataFrame, brands: list[str],
                 colours: typing.Mapping[str, str], title: str) -> str:
    """Daily mentions per brand with the day alerts marked, and weekly net sentiment."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.2), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    for brand in brands:
        rows = daily[daily["brand_id"] == brand]
        top.plot(rows["period_start"], rows["mentions"], label=brand, color=colours[brand], lw=1.6)
        week = weekly[weekly["brand_id"] == brand]
        bottom.plot(week["period_start"] + pd.Timedelta(days=3), week["net_sentiment"], marker="o", ms=4,
                    color=colours[brand], lw=1.6, label=brand)
        if not alerts.empty:
            hits = alerts[(alerts["brand_id"] == brand) & (alerts["period"] == "day")]
            for kind, colour in _ALERT_COLOURS.items():
                days = hits[hits["alert"] == kind]["period_start"]
                marked = rows[rows["period_start"].isin(days)]
                if not marked.empty:
                    marker, size = _ALERT_MARKERS[kind]
                    top.scatter(marked["period_start"], marked["mentions"], s=size, marker=marker, facecolors="none",
                                edgecolors=colour, linewidths=2, zorder=5)
    mine = alerts[alerts["brand_id"].isin(brands) & (alerts["period"] == "day")] if not alerts.empty else alerts
    for kind, colour in _ALERT_COLOURS.items():
        if not mine.empty and (mine["alert"] == kind).any():
            marker, size = _ALERT_MARKERS[kind]
            top.scatter([], [], s=size, marker=marker, facecolors="none", edgecolors=colour, linewidths=2,
                        label=f"alert: {kind.replace('_', ' ')}")
    top.set_ylabel("mentions per day")
    top.set_title(title, loc="left", fontsize=11)
    top.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    bottom.axhline(0, color="black", lw=0.8)
    bottom.set_ylim(-1.05, 1.05)
    bottom.set_ylabel("net sentiment\n(week)")
    for ax in (top, bottom):
        _date_axis(ax)
    return _png(fig)


def chart_share_of_voice(weekly: pd.DataFrame, brands: list[str], colours: typing.Mapping[str, str],
                         title: str) -> str:
    """Weekly share of voice by mentions (stacked), by engagement, and of positive mentions."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
    columns = (("share_of_voice", "by mentions"), ("engagement_share_of_voice", "by engagement"),
               ("sentiment_share_of_voice", "of positive mentions"))
    for ax, (column, label) in zip(axes, columns):
        table = (weekly[weekly["brand_id"].isin(brands)]
                 .pivot_table(index="period_start", columns="brand_id", values=column, dropna=False)
                 .reindex(columns=brands).fillna(0.0))
        ax.stackplot(table.index, [table[b] for b in brands], labels=brands, colors=[colours[b] for b in brands],
                     alpha=0.85)
        ax.set_title(f"Share of voice {label}", fontsize=10)
        ax.set_ylim(0, 1)
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        _date_axis(ax)
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle(title, x=0.01, ha="left", fontsize=11)
    return _png(fig)


def chart_engagement(weekly: pd.DataFrame, brands: list[str], colours: typing.Mapping[str, str]) -> str:
    """The six engagement rates per brand and week (weeks where no mention reported the denominator are gaps)."""
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.4))
    for ax, (column, label, _n) in zip(axes.flat, _ENGAGEMENT_RATES):
        for brand in brands:
            rows = weekly[weekly["brand_id"] == brand]
            ax.plot(rows["period_start"] + pd.Timedelta(days=3), rows[column], marker="o", ms=3, lw=1.4,
                    color=colours[brand], label=brand)
        ax.set_title(label, fontsize=9)
        if column in ("engagement_rate_impressions", "beyond_likes_rate", "engagement_rate_followers"):
            ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=1))
        _date_axis(ax)
    axes.flat[0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return _png(fig)


def _grouped_bars(ax, table: pd.DataFrame, colours: typing.Sequence[str],
                  labels: pd.DataFrame | None = None) -> None:
    """Horizontal bars: one group per row of `table`, one bar per column; `labels` (same shape) beside them."""
    height = 0.8 / max(1, len(table.columns))
    top = table.max().max() if table.notna().any().any() else 0
    for j, (column, colour) in enumerate(zip(table.columns, colours)):
        ys = [i + (j - (len(table.columns) - 1) / 2) * height for i in range(len(table))]
        ax.barh(ys, table[column].fillna(0), height=height, color=colour, label=str(column))
        if labels is not None:
            for y, value, text in zip(ys, table[column], labels[column]):
                if isinstance(text, str) and text:
                    ax.text((0 if pd.isna(value) else value) + (top or 1) * 0.01, y, text, va="center", fontsize=7)
    ax.set_yticks(range(len(table)))
    ax.set_yticklabels(table.index)
    ax.set_xlim(0, (top or 1) * 1.35)
    ax.invert_yaxis()
    ax.grid(True, axis="x", alpha=0.3)


def chart_service(monthly: pd.DataFrame) -> str:
    """Per brand and month: share of negative mentions answered, and the median time to the first reply."""
    rows = monthly[monthly["service_negative_mentions"].notna()].copy()
    rows["month"] = rows["period_start"].dt.strftime("%b %Y")
    rows["rate_label"] = [f"{a:.0f}/{n:.0f}" if n else "no complaint"
                          for a, n in zip(rows["answered_negative_mentions"], rows["service_negative_mentions"])]
    rows["minutes_label"] = [f"{m:.0f} min" if pd.notna(m) else "" for m in rows["median_response_minutes"]]
    months = list(dict.fromkeys(rows.sort_values("period_start")["month"]))
    shades = plt.get_cmap("Blues")([0.45 + 0.5 * i / max(1, len(months) - 1) for i in range(len(months))])
    brands = list(rows.groupby("brand_id")["service_negative_mentions"].sum().sort_values(ascending=False).index)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, max(2.6, 0.8 + 0.32 * len(brands) * len(months))))

    def pivot(values):
        return rows.pivot_table(index="brand_id", columns="month", values=values, aggfunc="first",
                                dropna=False).reindex(index=brands, columns=months)

    _grouped_bars(left, pivot("negative_reply_rate"), shades, pivot("rate_label"))
    left.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    left.set_title("Negative mentions answered by the brand's own account (answered/complaints)", fontsize=10)
    _grouped_bars(right, pivot("median_response_minutes"), shades, pivot("minutes_label"))
    right.set_title("Median minutes to the first reply", fontsize=10)
    right.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return _png(fig)


def chart_audience(daily: pd.DataFrame, brands: list[str], colours: typing.Mapping[str, str]) -> str:
    """Followers of the brand's own accounts over time."""
    fig, ax = plt.subplots(figsize=(11, 3.4))
    for brand in brands:
        rows = daily[(daily["brand_id"] == brand) & daily["account_followers"].notna()]
        if not rows.empty:
            ax.plot(rows["period_start"], rows["account_followers"], marker="o", ms=3, color=colours[brand],
                    label=brand)
    ax.set_ylabel("followers")
    ax.legend(fontsize=8)
    _date_axis(ax)
    return _png(fig)


def chart_topics(topics: pd.DataFrame, brands: list[str], months: list[pd.Timestamp]) -> str:
    """Per brand: negative mentions per topic in each of `months` (the latest last), with its share of negatives.

    The label beside the latest month's bar is the topic's share of the brand's negative mentions that month.
    """
    n = len(brands)
    cols = min(3, n)
    rows_n = (n + cols - 1) // cols
    labels = [f"{m:%b %Y}" for m in months]
    shades = plt.get_cmap("Reds")([0.4 + 0.5 * i / max(1, len(months) - 1) for i in range(len(months))])
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.6 * cols, 3.1 * rows_n), squeeze=False)
    for ax, brand in zip(axes.flat, brands):
        mine = topics[(topics["brand_id"] == brand) & topics["period_start"].isin(months)]
        negatives = mine.groupby("topic")["negative_mentions"].sum()
        order = negatives[negatives > 0].sort_values(ascending=False).head(8).index

        def pivot(values, mine=mine, order=order):
            table = mine.pivot_table(index="topic", columns="period_start", values=values, aggfunc="first",
                                     dropna=False).reindex(index=order, columns=months)
            table.columns = labels
            return table

        shares = pivot("negative_share").map(lambda v: f"{v:.0%}" if pd.notna(v) and v else "")
        shares[labels[:-1]] = ""  # the share is written for the latest month only
        _grouped_bars(ax, pivot("negative_mentions"), shades, shares)
        ax.set_title(brand, fontsize=10)
    axes.flat[0].legend(fontsize=7, loc="lower right")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle("Negative mentions per topic", x=0.01, ha="left", fontsize=11)
    fig.tight_layout()
    return _png(fig)


def chart_backlog(daily: pd.DataFrame, brands: list[str], colours: typing.Mapping[str, str]) -> str:
    """Per brand: items open in the response queue at the end of each day, and those past the target."""
    fig, ax = plt.subplots(figsize=(11, 3.4))
    for brand in brands:
        rows = daily[daily["brand_id"] == brand].sort_values("period_start")
        if rows["queue_size"].sum() or rows["calls_for_answer"].sum():
            ax.plot(rows["period_start"], rows["queue_size"], color=colours[brand], lw=1.6, label=f"{brand}: open")
            ax.plot(rows["period_start"], rows["queue_breached"], color=colours[brand], lw=1, ls="--",
                    label=f"{brand}: past target")
    ax.set_ylabel("items open at day end")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _date_axis(ax)
    return _png(fig)


# ---- the page -----------------------------------------------------------------------------------

def _fmt(value: typing.Any, kind: str = "") -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if kind == "%":
        return f"{value:.1%}"
    if kind == "pp":
        return f"{value * 100:+.1f} pp"
    if kind == "x%":
        return f"{value:+.0%}"
    if kind == "n":
        return f"{int(value):,}"
    return f"{value:.2f}"


def _kpi_table(weekly: pd.DataFrame) -> tuple[str, str]:
    """The last full week per brand, against the week before and the 4-week benchmark."""
    full = weekly[weekly["days_in_run"] == 7]
    if full.empty:
        full = weekly
    last = full["period_start"].max()
    rows = full[full["period_start"] == last].sort_values("mentions", ascending=False)
    head = ("<tr><th>brand</th><th>mentions</th><th>vs prev. week</th><th>vs 4-week avg</th><th>share of voice</th>"
            "<th>Δ</th><th>net sentiment</th><th>Δ vs 4-week avg</th><th>negative rate</th><th>untagged share</th>"
            "<th>engagement / impression</th><th>complaints answered</th></tr>")
    body = []
    for r in rows.itertuples():
        body.append(
            f"<tr><td>{html.escape(r.brand_id)}</td><td>{_fmt(r.mentions, 'n')}</td>"
            f"<td>{_fmt(r.mentions_growth_rate, 'x%')}</td><td>{_fmt(r.mentions_vs_trailing4, 'x%')}</td>"
            f"<td>{_fmt(r.share_of_voice, '%')}</td><td>{_fmt(r.share_of_voice_change, 'pp')}</td>"
            f"<td>{_fmt(r.net_sentiment)}</td><td>{_fmt(r.net_sentiment_vs_trailing4)}</td>"
            f"<td>{_fmt(r.negative_rate, '%')}</td><td>{_fmt(r.untagged_share, '%')}</td>"
            f"<td>{_fmt(r.engagement_rate_impressions, '%')}</td><td>{_fmt(r.negative_reply_rate, '%')}</td></tr>")
    return last.date().isoformat(), f"<table>{head}{''.join(body)}</table>"


def _listed(row, name: str) -> list:
    """A list column of one alert row (absent in outputs written before the column existed)."""
    value = getattr(row, name, None)
    return [] if value is None or (isinstance(value, float) and pd.isna(value)) else list(value)


def _alert_posts(r) -> str:
    """The alert's representative posts: reach, platform, author, excerpt, each linked where a link exists."""
    items = []
    for url, platform, author, text, reach, copies in zip(
            _listed(r, "post_urls"), _listed(r, "post_platforms"), _listed(r, "post_authors"),
            _listed(r, "post_excerpts"), _listed(r, "post_reach"), _listed(r, "post_copies")):
        who = f"{platform} @{author}" if author else platform
        facts = [f"reach {_fmt(reach, 'n')}" if reach is not None and not pd.isna(reach) else "reach unknown"]
        if copies and copies > 1:
            facts.append(f"{copies} copies")
        quote = html.escape(text) if text else "<em>(no text)</em>"
        link = f' <a href="{html.escape(url)}">open</a>' if url else ""
        items.append(f"<li><b>{html.escape(who)}</b> ({html.escape(', '.join(facts))}): {quote}{link}</li>")
    return f"<ol class='posts'>{''.join(items)}</ol>" if items else ""


def _alerts_table(alerts: pd.DataFrame) -> str:
    head = ("<tr><th>period</th><th>start</th><th>brand</th><th>alert</th><th>value</th><th>baseline median</th>"
            "<th>robust z</th><th class='text'>top topics</th><th class='text'>key phrases</th></tr>")
    body = []
    for r in alerts.sort_values(["period_start", "period", "brand_id"], ascending=[False, True, True]).itertuples():
        kind = "n" if r.metric == "negative_mentions" else "%"
        topics = ", ".join(f"{t} ({n})" for t, n in zip(r.top_topics, r.top_topic_mentions)) or "–"
        phrases = list(zip(_listed(r, "key_phrases"), _listed(r, "key_phrase_posts")))
        # Outputs from before key phrases existed list their top terms instead.
        phrases = phrases or list(zip(r.top_terms, r.top_term_mentions))
        terms = ", ".join(f"{t} ({n})" for t, n in phrases) or "–"
        body.append(
            f'<tr><td>{r.period}</td><td>{r.period_start.date().isoformat()}</td><td>{html.escape(r.brand_id)}</td>'
            f'<td><span class="tag" style="background:{_ALERT_COLOURS.get(r.alert, "#555")}">'
            f'{html.escape(r.alert.replace("_", " "))}</span></td><td>{_fmt(r.value, kind)}</td>'
            f"<td>{_fmt(r.baseline_median, kind)}</td><td>{r.z_score:+.1f}</td><td class='text'>{html.escape(topics)}"
            f"</td><td class='text'>{html.escape(terms)}</td></tr>")
        posts = _alert_posts(r)
        if posts:
            body.append(f"<tr class='why'><td></td><td colspan='8' class='text'>{posts}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


_CSS = """
body { font-family: -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; margin: 0 auto;
       max-width: 1320px; padding: 16px 28px; color: #222; }
h1 { margin-bottom: 4px; } h2 { border-bottom: 2px solid #eee; padding-bottom: 4px; margin-top: 36px; }
p.note { color: #555; font-size: 14px; max-width: 1000px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border-bottom: 1px solid #e5e5e5; padding: 4px 8px; text-align: right; }
ol.posts { margin: 0 0 4px 0; padding-left: 22px; color: #333; max-width: 1000px; }
th { background: #f6f6f6; } td:first-child, th:first-child, td.text, th.text { text-align: left; }
img { max-width: 100%; display: block; margin: 8px 0 18px; }
.tag { color: white; border-radius: 3px; padding: 1px 6px; font-size: 12px; white-space: nowrap; }
nav a { margin-right: 14px; font-size: 14px; }
"""


def _queue_items_table(items: pd.DataFrame) -> str:
    head = ("<tr><th>#</th><th>priority</th><th class='text'>why</th><th>age (h)</th><th class='text'>author</th>"
            "<th>followers</th><th class='text'>kind</th><th class='text'>post</th></tr>")
    body = []
    for r in items.itertuples():
        text = r.text if len(r.text) <= 140 else r.text[:139] + "…"
        link = (f'<a href="{html.escape(r.url)}">{html.escape(text)}</a>' if isinstance(r.url, str) and r.url
                else f"{html.escape(text)} <small>({html.escape(r.platform)} {html.escape(r.mention_id)})</small>")
        age = f"{r.age_hours:.1f}" + (" ⚠" if r.breached_target else "")
        body.append(
            f"<tr><td>{r.rank}</td><td>{r.priority:.1f}</td><td class='text'>{html.escape(', '.join(r.reasons))}</td>"
            f"<td>{age}</td><td class='text'>@{html.escape(str(r.author_handle or '?'))}"
            f"{' (repeat)' if r.author_complaints >= 2 else ''}</td><td>{_fmt(r.author_followers, 'n')}</td>"
            f"<td class='text'>{html.escape(r.match_kind)}</td><td class='text'>{link}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _queue_section(queue: pd.DataFrame, queue_metrics: pd.DataFrame, brands: list[str],
                   colours: typing.Mapping[str, str], top: int = 10) -> str:
    """The response queue: the backlog per day, then per brand its figures and top items with links."""
    if queue_metrics.empty:
        return "<p>No response queue in these outputs (written by runs since the queue was added).</p>"
    daily = queue_metrics[(queue_metrics["period"] == "day") & queue_metrics["match_kind"].isna()]
    weekly = queue_metrics[queue_metrics["period"] == "week"]
    parts = ["<p class='note'>What the brand's team should answer now: complaints, questions addressed to the "
             "brand, and untagged fans worth thanking, with no reply from the brand's answering accounts yet, "
             "ranked by priority (reach, negativity, age, untagged, repeat complainer; docs/response-queue.md). "
             "⚠: past the brand's response-time target at the run's as-of time.</p>",
             _img(chart_backlog(daily, brands, colours), "response queue backlog")]
    for brand in brands:
        items = queue[queue["brand_id"] == brand].sort_values("rank") if not queue.empty else queue
        mine = weekly[weekly["brand_id"] == brand]
        last = mine["period_start"].max() if not mine.empty else None
        figures = []
        for kind, label in ((None, "all"), ("tagged", "tagged"), ("untagged", "untagged")):
            rows = mine[(mine["period_start"] == last)
                        & (mine["match_kind"].isna() if kind is None else mine["match_kind"] == kind)]
            if not rows.empty:
                r = rows.iloc[0]
                figures.append(f"{label}: {int(r['calls_for_answer'])} called for an answer, "
                               f"{_fmt(r['answered_within_target_share'], '%')} answered within target, median "
                               f"{_fmt(r['median_response_minutes'], 'n')} min, p90 "
                               f"{_fmt(r['p90_response_minutes'], 'n')} min")
        as_of = items["as_of"].max() if not items.empty else None
        parts.append(f"<h3>{html.escape(brand)}</h3><p>{len(items)} open"
                     + (f", {int(items['breached_target'].sum())} past the {int(items['target_minutes'].iloc[0])}"
                        f"-minute target, as of {as_of:%Y-%m-%d %H:%M} UTC" if as_of is not None else "")
                     + (f". Week of {last:%Y-%m-%d}: " + "; ".join(figures) if figures else "") + ".</p>"
                     + (_queue_items_table(items.head(top)) if not items.empty else ""))
    return "".join(parts)


def _anchor(title: str) -> str:
    return title.lower().replace(" ", "-")


def render(output_dir: str) -> str:
    """The report page for the job outputs under `output_dir`.

    Args:
        output_dir: The job's `--output_dir` (local).

    Returns:
        The HTML page.

    Raises:
        ReportError: when there is no metrics table to report on.
    """
    committed = current_snapshot(output_dir) or output_dir  # one run's tables and manifest
    metrics = read_table(committed, "metrics")
    if metrics.empty:
        raise ReportError(f"{output_dir}: no metrics table (run the job first, e.g. `make run`)")
    topics = read_table(committed, "topic_metrics")
    alerts = read_table(committed, "alerts")
    queue, queue_metrics = read_table(committed, "response_queue"), read_table(committed, "queue_metrics")
    manifest_path = os.path.join(committed, "manifest.json")
    manifest = json.load(open(manifest_path, encoding="utf-8")) if os.path.exists(manifest_path) else {}

    daily, weekly, monthly = (_totals(metrics, p) for p in ("day", "week", "month"))
    brands = list(weekly.groupby("brand_id")["mentions"].sum().sort_values(ascending=False).index)
    colours = _colours(brands)
    first, last = daily["period_start"].min().date(), daily["period_start"].max().date()
    sections: dict[str, str] = {}

    week_of, kpis = _kpi_table(weekly)
    counts = manifest.get("counts", {})
    facts = [f"{len(brands)} brands", f"{first.isoformat()} to {last.isoformat()} (UTC)",
             f"{int(daily['mentions'].sum()):,} brand mentions"]
    if counts:
        facts.append(f"{counts.get('records_read', 0):,} records read, {counts.get('dead_letter_rows', 0):,} "
                     "dead letters")
    if manifest.get("model", {}).get("model_ids"):
        facts.append("model " + ", ".join(manifest["model"]["model_ids"]))
    sections["Overview"] = (
        f"<p>{html.escape(' · '.join(facts))}. {len(alerts)} alert(s).</p>"
        f"<p class='note'>The week of {week_of} (the last complete week), every brand, all platforms and "
        "languages. Changes of rates are in percentage points (pp); the 4-week average is the brand's own "
        "benchmark.</p>" + kpis)

    groups = _groups(weekly)
    sections["Mentions and net sentiment"] = (
        "<p class='note'>Mentions per day; markers show the days with an alert. Below, net sentiment per ISO week: "
        "(positive − negative) / (positive + negative).</p>"
        + "".join(_img(chart_volume(daily, weekly, alerts, members, colours, title), f"mentions, {title}")
                  for title, members in groups))

    sets = [(t, m) for t, m in groups if len(m) > 1]
    sections["Share of voice"] = (
        "<p class='note'>Each brand's share of its competitive set per ISO week: of the mentions, of the "
        "engagements, and of the positive mentions (sentiment share of voice).</p>"
        + ("".join(_img(chart_share_of_voice(weekly, m, colours, t), f"share of voice, {t}") for t, m in sets)
           or "<p>No brand has competitors configured.</p>"))

    reported = {n: int(weekly[n].sum()) for _c, _l, n in _ENGAGEMENT_RATES}
    sections["Engagement rates"] = (
        "<p class='note'>Per ISO week, over the mentions that report each rate's denominator (over the run: "
        + ", ".join(f"{label.split(':')[0].lower()} {reported[n]:,}" for _c, label, n in _ENGAGEMENT_RATES)
        + " mentions). A gap is a week where none did: unknown, not zero.</p>"
        + _img(chart_engagement(weekly, brands, colours), "engagement rates"))

    if monthly["service_negative_mentions"].notna().any():
        sections["Customer service"] = (
            "<p class='note'>Per month: negative mentions (not plain reposts) on the platforms where the brand's "
            "own replies are known, the share its account answered directly, and the median time to that "
            "answer. No bar: no such complaint, or none answered.</p>" + _img(chart_service(monthly), "service"))
    else:
        sections["Customer service"] = ("<p>No brand replies are known: they come from the X connector "
                                        "(<code>--source x</code>) or from the brand accounts' own posts in "
                                        "the input.</p>")

    sections["Response queue"] = _queue_section(queue, queue_metrics, brands, colours)

    if daily["account_followers"].notna().any():
        growth = (monthly.dropna(subset=["follower_growth_rate"])[["brand_id", "period_start", "follower_growth_rate"]])
        sections["Audience"] = (_img(chart_audience(daily, brands, colours), "followers")
                                + ("" if growth.empty else "<p>Follower growth per month: " + ", ".join(
                                    f"{r.brand_id} {r.period_start:%b %Y} {r.follower_growth_rate:+.2%}"
                                    for r in growth.itertuples()) + "</p>"))
    else:
        sections["Audience"] = ("<p>No account snapshots: follower counts come from the X connector "
                                "(<code>--source x</code>), one snapshot per run.</p>")

    if topics.empty:
        sections["Topic drivers of negative sentiment"] = (
            "<p>No topics: the model that scored these mentions names none (the <code>topics</code> column of "
            "<code>brand_mentions</code> is empty). The alerts below list the top terms instead.</p>")
    else:
        month = topics[topics["period"] == "month"]
        months = sorted(month["period_start"].unique())[-2:]
        recent = month[month["period_start"].isin(months)]
        with_negatives = [b for b in brands if recent[recent["brand_id"] == b]["negative_mentions"].sum() > 0]
        sections["Topic drivers of negative sentiment"] = (
            "<p class='note'>What the negative mentions were about, last month against the month before: "
            "negative mentions per topic (a post may carry several), and beside the latest month's bar the topic's "
            "share of the brand's negative mentions. The first and last month of a run may be partial.</p>"
            + (_img(chart_topics(recent, with_negatives, [pd.Timestamp(m) for m in months]), "topic drivers")
               if with_negatives else "<p>No negative mention carried a topic in those months.</p>"))

    sections["Alerts"] = (
        "<p class='note'>Spikes in negative mentions or negative rate, and drops in share of voice, against the "
        "brand's own trailing baseline (robust z-score on median and MAD; thresholds in the config's "
        "<code>alerts:</code>). Key phrases: what the period's negative posts say more than the brand's other "
        "mentions (number of posts in brackets); below each alert, its most-read negative posts, copies "
        "collapsed (docs/alerts.md).</p>" + (_alerts_table(alerts) if not alerts.empty else "<p>No alerts.</p>"))

    nav = "".join(f'<a href="#{_anchor(t)}">{html.escape(t)}</a>' for t in SECTIONS)
    body = "".join(f'<h2 id="{_anchor(t)}">{html.escape(t)}</h2>\n{sections[t]}\n' for t in SECTIONS)
    generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'><title>Social listening report</title>"
            f"<style>{_CSS}</style></head><body><h1>Social listening report</h1>"
            f"<p class='note'>Rendered {generated} from <code>{html.escape(output_dir)}</code>"
            f"{' (run ' + html.escape(manifest['run_id']) + ')' if manifest.get('run_id') else ''}.</p>"
            f"<nav>{nav}</nav>{body}</body></html>\n")


def main(argv: typing.Sequence[str] | None = None) -> int:
    """Command-line entry point: writes the page and prints where."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", required=True, help="The job's --output_dir (local).")
    parser.add_argument("--report", default=None, help="Where to write the page (default <output_dir>/report.html).")
    args = parser.parse_args(argv)
    try:
        page = render(args.output_dir)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = args.report or os.path.join(args.output_dir, "report.html")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(page)
    print(f"report -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
