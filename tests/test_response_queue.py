"""The response queue: what calls for an answer, when it leaves, its priority, its metrics; full = chain of windows.

Four days of posts (2026-09-07 .. 09-10) about Sprite and Coca-Cola: complaints tagged and
untagged, a repeat complainer, questions (tagged, untagged with a topic, untagged without),
fans worth thanking and not, the brand's own post, a repost, a reply by a stranger, and the
brand's replies from its main account and from its support account (SpriteCares) arriving
on later days. Expected queues are computed by hand below. The model is the lexicon double.
"""

from __future__ import annotations

import csv
import datetime
import json
import math
import pathlib
import re
import shutil

import pyarrow.dataset as ds
import pytest

from connectors.base import ACCOUNT, BRAND_REPLIES, ConnectorSettings
from connectors.x import XConnector
from report import html_report as report, queue_export
from pipelines.run import main, run
from schemas.config import ConfigError, parse_config
from schemas.records import BrandMention
from tests.support.fake_model import FakeSentimentHandler
from transforms.response_queue import as_of_time, is_question, priority, queue_recompute_from, queue_rules, reasons

UTC = datetime.timezone.utc

BRANDS = """\
brands:
  - id: sprite
    names: [Sprite, Спрайт]
    handles: [Sprite]
    response:
      accounts: ["@SpriteCares"]
      target_minutes: 60
      horizon_days: 3
      thank_min_followers: 1000
  - id: cocacola
    names: [Coca-Cola]
    handles: [CocaCola]
"""


def _post(pid, text, at, author=None, followers=None, **extra):
    record = {"id": pid, "text": text, "created_at": at, "platform": "x", "lang": extra.pop("lang", "en")}
    if author:
        record.update(author_id="id-" + author.lower(), author_handle=author)
    if followers is not None:
        record["author_followers"] = followers
    record.update(extra)
    return record


POSTS = [
    # Sep 7: a tagged complaint, answered next morning by the support account (a second account)...
    _post("c1", "@Sprite my order arrived broken, awful", "2026-09-07T10:00:00Z", "ana", 100, likes=2),
    # ... and an untagged one nobody answers: past the 3-day horizon by the end (Sep 11, 00:00).
    _post("old1", "Sprite is awful today", "2026-09-07T11:00:00Z", "olga", 20),
    _post("own", "Sprite: our bad-ass new flavour is here", "2026-09-07T12:00:00Z", "Sprite", 900000),
    _post("r1", "@ana sorry about that, a new one is on its way", "2026-09-08T09:00:00Z", "SpriteCares",
          is_reply=True, reply_to="c1"),
    # Sep 9: the repeat complainer's first complaint (a stranger's reply answers nothing; a repost never enters).
    _post("c2", "Sprite is the worst, bad taste", "2026-09-09T08:00:00Z", "boris", 50000, likes=10),
    _post("s1", "@boris agreed", "2026-09-09T09:00:00Z", "vera", 5, is_reply=True, reply_to="c2"),
    _post("rt", "Sprite is the worst, bad taste", "2026-09-09T09:30:00Z", "dan", 7, is_repost=True, repost_of="c2"),
    _post("q2", "Где купить Спрайт со скидкой?", "2026-09-09T10:00:00Z", "ivan", lang="ru"),
    # A tagged complaint and question, answered by the main account within the target.
    _post("q4", "@Sprite is there a refund for broken cans?", "2026-09-09T12:00:00Z", "petra", 300),
    _post("r2", "@petra yes, send us a DM", "2026-09-09T12:30:00Z", "Sprite", is_reply=True, reply_to="q4"),
    _post("q3", "Is Sprite sold in cans?", "2026-09-09T13:00:00Z", "mark"),  # untagged, no topic: not for us
    # Sep 10: the fan worth thanking and one not, a tagged fan, the second complaint, a fresh question.
    _post("f1", "I love Sprite, best summer drink", "2026-09-10T09:00:00Z", "lena", 5000),
    _post("f2", "I love Sprite", "2026-09-10T10:00:00Z", "tom", 10),
    _post("f3", "@Sprite love it", "2026-09-10T11:00:00Z", "kim", 9000),
    _post("c3", "Sprite again bad, I hate it", "2026-09-10T12:00:00Z", "boris", 50000),
    _post("cc1", "Coca-Cola delivery was bad again", "2026-09-10T15:00:00Z", "zoe"),
    _post("q1", "@Sprite when will my order arrive?", "2026-09-10T23:30:00Z", "chris"),
]


def _reach(followers, eng=0):
    return min(1.0, math.log10(1 + followers + 10 * eng) / 6)


# The queue at the end of Sep 10 (as of 2026-09-11T00:00Z), by hand: (brand, id) -> reasons, age in hours,
# breached, the author's complaints, priority = 100 x (.30 reach + .25 p_negative + .20 age + .10 untagged
# + .15 repeat), with the fake model's p_negative 0.8 (negative), 0.1 (neutral), 0.05 (positive).
EXPECTED_FULL = {
    ("sprite", "c2"): (["complaint"], 40.0, True, 2, 100 * (.3 * _reach(50000, 10) + .25 * .8 + .2 + .1 + .15)),
    ("sprite", "c3"): (["complaint"], 12.0, True, 2, 100 * (.3 * _reach(50000) + .25 * .8 + .2 + .1 + .15)),
    ("sprite", "f1"): (["thanks"], 15.0, True, 0, 100 * (.3 * _reach(5000) + .25 * .05 + .2 + .1)),
    ("sprite", "q2"): (["question"], 38.0, True, 0, 100 * (.25 * .1 + .2 + .1)),
    ("sprite", "q1"): (["question"], 0.5, False, 0, 100 * (.25 * .1 + .2 * 30 / 60)),
    # Coca-Cola has every default: a 120-minute target, a 7-day horizon.
    ("cocacola", "cc1"): (["complaint"], 9.0, True, 1, 100 * (.25 * .8 + .2 + .1)),
}


def _run(config, posts, out, *flags):
    argv = ["--config", str(config), "--input", str(posts), "--output_dir", str(out)] + list(flags)
    return run(argv, model_handler=FakeSentimentHandler())


def _rows(out: pathlib.Path, table: str) -> list:
    rows = ds.dataset(out / table, format="parquet", partitioning="hive").to_table().to_pylist()
    norm = [{k: (round(v, 9) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]
    return sorted(norm, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def _queue(out: pathlib.Path) -> dict:
    return {(r["brand_id"], r["mention_id"]): r for r in _rows(out, "response_queue")}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("queue")
    config = root / "brands.yaml"
    config.write_text(BRANDS, encoding="utf-8")
    posts = root / "posts.jsonl"
    posts.write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in POSTS) + "\n", encoding="utf-8")
    return root, config, posts


@pytest.fixture(scope="module")
def full(inputs) -> pathlib.Path:
    root, config, posts = inputs
    _run(config, posts, root / "full")
    return root / "full"


@pytest.fixture(scope="module")
def chain(inputs) -> dict:
    """Two windowed runs, the queue read after each: Sep 7, then Sep 8-10 (the answer to Sep 7 comes on Sep 8)."""
    root, config, posts = inputs
    out, seen = root / "chain", {}
    for start, end in (("2026-09-07", "2026-09-08"), ("2026-09-08", "2026-09-11")):
        _run(config, posts, out, "--window_start", start, "--window_end", end)
        seen[end] = _queue(out)
    return {"out": out, "queues": seen}


def test_the_full_run_queue_is_the_hand_computed_one(full):
    queue = _queue(full)
    assert set(queue) == set(EXPECTED_FULL)
    for key, (why, age, breached, complaints, score) in EXPECTED_FULL.items():
        row = queue[key]
        assert (row["reasons"], row["age_hours"], row["breached_target"], row["author_complaints"]) == \
            (why, age, breached, complaints), key
        assert row["priority"] == pytest.approx(round(score, 2), abs=0.006), key
        assert row["as_of"] == datetime.datetime(2026, 9, 11, tzinfo=UTC)
        assert row["url"] is None and row["platform"] == "x"
    # Ranked per brand by priority: the repeat complainer with reach first, the fresh tagged question last.
    order = [k[1] for k, _ in sorted(queue.items(), key=lambda kv: (kv[0][0], kv[1]["rank"])) if k[0] == "sprite"]
    assert order == ["c2", "c3", "f1", "q2", "q1"]
    assert queue[("sprite", "c2")]["priority"] == pytest.approx(88.5, abs=0.01)
    assert queue[("sprite", "q1")]["target_minutes"] == 60 and queue[("cocacola", "cc1")]["target_minutes"] == 120
    assert queue[("sprite", "q2")]["lang"] == "ru" and queue[("sprite", "q2")]["match_kind"] == "untagged"


def test_replies_from_either_account_answer_and_items_leave_as_later_runs_see_them(chain):
    queues = chain["queues"]
    # Sep 7: both complaints are open, old1 13 hours old (within the 3-day horizon); the brand's own post is
    # not a complaint.
    assert set(queues) == {"2026-09-08", "2026-09-11"}
    assert set(queues["2026-09-08"]) == {("sprite", "c1"), ("sprite", "old1")}
    assert queues["2026-09-08"][("sprite", "c1")]["age_hours"] == 14.0
    assert queues["2026-09-08"][("sprite", "old1")]["age_hours"] == 13.0
    # Sep 8-10, the next run: SpriteCares (the second account) answered c1 on Sep 8, so c1 leaves; old1 is past
    # the 3-day horizon; q4 was answered by @Sprite; one row per item, no duplicates.
    assert ("sprite", "c1") not in queues["2026-09-11"] and ("sprite", "old1") not in queues["2026-09-11"]
    assert set(queues["2026-09-11"]) == set(EXPECTED_FULL)
    assert len(_rows(chain["out"], "response_queue")) == len(EXPECTED_FULL)


def test_a_chain_of_windowed_runs_gives_the_full_runs_queue_and_metrics(chain, full):
    assert _rows(chain["out"], "response_queue") == _rows(full, "response_queue")
    assert _rows(chain["out"], "queue_metrics") == _rows(full, "queue_metrics")


def _metric(out, period, start, kind=None, brand="sprite"):
    (row,) = [r for r in _rows(out, "queue_metrics") if (r["brand_id"], r["period"], str(r["period_start"]),
                                                          r["match_kind"]) == (brand, period, start, kind)]
    return row


def test_queue_metrics_count_answers_targets_and_the_backlog(full):
    sep7 = _metric(full, "day", "2026-09-07")
    assert (sep7["calls_for_answer"], sep7["complaints"], sep7["answered"], sep7["due"],
            sep7["answered_within_target"], sep7["answered_within_target_share"]) == (2, 2, 1, 2, 0, 0.0)
    assert sep7["median_response_minutes"] == pytest.approx(23 * 60, rel=0.01)
    assert sep7["p90_response_minutes"] == pytest.approx(23 * 60, rel=0.01)
    assert (sep7["queue_size"], sep7["queue_breached"]) == (2, 2)  # c1 and old1 at midnight
    assert sep7["measured_at"] == datetime.datetime(2026, 9, 8, tzinfo=UTC)
    assert _metric(full, "day", "2026-09-08")["queue_size"] == 1  # old1
    sep9 = _metric(full, "day", "2026-09-09")
    assert (sep9["calls_for_answer"], sep9["complaints"], sep9["questions"], sep9["answered"],
            sep9["answered_within_target"], sep9["due"]) == (3, 2, 2, 1, 1, 3)  # c2, q2, q4 (answered in 30 min)
    assert sep9["answered_within_target_share"] == pytest.approx(1 / 3)
    assert sep9["median_response_minutes"] == pytest.approx(30, rel=0.01)
    sep10 = _metric(full, "day", "2026-09-10")
    assert (sep10["queue_size"], sep10["queue_breached"], sep10["thanks"]) == (5, 4, 1)  # the whole queue; q1 fresh
    # Tagged and untagged apart: c1 and q4 answered (tagged), none of the untagged.
    week = {k: _metric(full, "week", "2026-09-07", k) for k in (None, "tagged", "untagged")}
    assert [week[k]["answered"] for k in (None, "tagged", "untagged")] == [2, 2, 0]
    assert [week[k]["calls_for_answer"] for k in (None, "tagged", "untagged")] == [8, 3, 5]
    assert week[None]["queue_size"] == 5 and week[None]["measured_at"] == datetime.datetime(2026, 9, 11, tzinfo=UTC)
    assert week["tagged"]["p90_response_minutes"] == pytest.approx(23 * 60, rel=0.01)
    # A silent brand-day still has its row, with zeros.
    assert _metric(full, "day", "2026-09-08", brand="cocacola")["calls_for_answer"] == 0


def test_the_second_account_answers_in_the_service_metrics_too(full):
    (row,) = [r for r in _rows(full, "metrics") if r["brand_id"] == "sprite" and r["period"] == "day"
              and str(r["period_start"]) == "2026-09-07" and r["platform"] is None]
    # c1 (answered by SpriteCares), old1, and the brand's own post, which the metrics count but the queue skips.
    assert (row["service_negative_mentions"], row["answered_negative_mentions"]) == (3, 1)


@pytest.mark.parametrize("text", [
    "Where can I buy the new Pixel?", "When will my order arrive?", "Где купить Спрайт?",
    "Подскажите, где купить Спрайт", "Коли буде доставка?", "Чи є знижка на Спрайт?", "Gdje mogu kupiti Coca-Colu?",
    "Kad stiže moja narudžba?", "Када стиже поруџбина?", "Da li imate dostavu? Hvala", "pomozite, ne radi aplikacija",
])
def test_questions_are_found_in_every_language(text):
    assert is_question(text)


@pytest.mark.parametrize("text", [
    "I love Sprite!", "Sprite или Кока-Кола? Кока-Кола лучше", "Koka-kola je loš izbor, Fanta je super",
    "Купив Спрайт.", "Novi Sprite je stigao",
])
def test_statements_and_choices_are_not_questions(text):
    assert not is_question(text)


def _mention(**overrides) -> BrandMention:
    base = dict(mention_id="m", platform="x", created_at=datetime.datetime(2026, 9, 9, tzinfo=UTC), text="Sprite",
                lang="en", brand_id="sprite", match_kind="untagged", matched_term="Sprite", matched_rule="names",
                sentiment="neutral", p_negative=0.1, p_neutral=0.8, p_positive=0.1, sentiment_target="post",
                model_id="m", topics=[], topic_scores={}, url=None, author_id="a", author_handle="someone",
                author_followers=None,
                is_repost=False, repost_of=None, is_reply=False, reply_to=None, is_quote=False, quote_of=None,
                conversation_id=None, likes=None, reposts=None, replies=None, quotes=None, impressions=None,
                bookmarks=None, fetched_at=None, connector="file", query=None)
    base.update(overrides)
    return BrandMention(**base)


@pytest.mark.parametrize("overrides, expected", [
    (dict(sentiment="negative", p_negative=0.8), ("complaint",)),
    (dict(sentiment="negative", p_negative=0.8, is_repost=True), ()),
    (dict(sentiment="negative", p_negative=0.8, author_handle="spritecares"), ()),  # the brand's own account
    (dict(sentiment="negative", p_negative=0.4), ()),  # below min_p_negative 0.5
    (dict(text="Where can I buy Sprite?", topics=["purchase_delivery"]), ("question",)),
    (dict(text="Where can I buy Sprite?"), ()),  # untagged without a question topic
    (dict(text="@Sprite where is it?", match_kind="tagged"), ("question",)),
    (dict(sentiment="positive", author_followers=999), ()),
    (dict(sentiment="positive", author_followers=1000), ("thanks",)),
    (dict(sentiment="positive", likes=40, reposts=10), ("thanks",)),  # engagement 50
    (dict(sentiment="positive", author_followers=5000, match_kind="tagged"), ()),
    (dict(sentiment="negative", p_negative=0.9, text="@Sprite why is it broken?", match_kind="tagged"),
     ("complaint", "question")),
])
def test_entry_rules(overrides, expected):
    config = parse_config({"brands": [{"id": "sprite", "names": ["Sprite"], "handles": ["Sprite"],
                                       "response": {"accounts": ["SpriteCares"], "min_p_negative": 0.5}}]})
    assert reasons(_mention(**overrides), queue_rules(config)["sprite"]) == expected


def test_priority_formula_and_as_of():
    assert priority(None, None, 0.0, 0, 60, False, False) == 0.0
    assert priority(10**6, None, 1.0, 120, 60, True, True) == 100.0  # every term at its maximum
    assert priority(999, None, 0.5, 30, 60, False, False) == pytest.approx(100 * (.3 * .5 + .25 * .5 + .2 * .5))
    assert as_of_time((datetime.date(2026, 9, 7), datetime.date(2026, 9, 10))) == datetime.datetime(
        2026, 9, 11, tzinfo=UTC)
    assert as_of_time(None) is None
    assert queue_recompute_from(datetime.date(2026, 9, 9), datetime.timedelta(days=3)) == {
        "day": datetime.date(2026, 9, 6), "week": datetime.date(2026, 8, 31), "month": datetime.date(2026, 9, 1),
        "quarter": datetime.date(2026, 7, 1)}


@pytest.mark.parametrize("response, message", [
    ({"target_minutes": 0}, "brands[0].response.target_minutes: expected an integer"),
    ({"horizon_days": 91}, "brands[0].response.horizon_days"),
    ({"accounts": ["not a handle"]}, "brands[0].response.accounts[0]"),
    ({"min_p_negative": 1.5}, "brands[0].response.min_p_negative"),
    ({"question_topics": ["Bad Topic"]}, "brands[0].response.question_topics[0]"),
    ({"thank_min_followers": -1}, "brands[0].response.thank_min_followers"),
    ({"horizon_days": 1, "target_minutes": 2000}, "longer than horizon_days"),
    ({"target": 60}, "brands[0].response: unknown key(s) ['target']"),
    ("fast", "brands[0].response: expected a mapping"),
])
def test_bad_response_settings_name_the_field(response, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config({"brands": [{"id": "sprite", "names": ["Sprite"], "response": response}]})


def test_a_bad_response_setting_stops_the_run_with_exit_2(inputs, tmp_path, capsys):
    _root, _config, posts = inputs
    config = tmp_path / "bad.yaml"
    config.write_text(BRANDS.replace("target_minutes: 60", "target_minutes: soon"), encoding="utf-8")
    assert main(["--config", str(config), "--input", str(posts), "--output_dir", str(tmp_path / "o")]) == 2
    assert "brands[0].response.target_minutes" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_make_queue_writes_the_queue_as_csv(full, tmp_path, capsys):
    path = tmp_path / "queue.csv"
    assert queue_export.main(["--output_dir", str(full), "--csv", str(path)]) == 0
    assert "6 item(s)" in capsys.readouterr().out
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert [(r["brand_id"], r["rank"], r["mention_id"]) for r in rows] == [
        ("cocacola", "1", "cc1"), ("sprite", "1", "c2"), ("sprite", "2", "c3"), ("sprite", "3", "f1"),
        ("sprite", "4", "q2"), ("sprite", "5", "q1")]
    assert rows[1]["reasons"] == "complaint" and rows[1]["created_at"] == "2026-09-09T08:00:00Z"
    assert rows[1]["breached_target"] == "true" and rows[1]["author_handle"] == "boris" and rows[1]["url"] == ""
    assert rows[4]["text"] == "Где купить Спрайт со скидкой?" and rows[4]["topics"] == "price_promotion"
    assert queue_export.main(["--output_dir", str(full), "--csv", str(path), "--brand", "cocacola"]) == 0
    assert len(list(csv.DictReader(path.open(encoding="utf-8")))) == 1
    assert queue_export.main(["--output_dir", str(tmp_path / "none")]) == 2
    assert "no response queue" in capsys.readouterr().err


def test_the_report_shows_each_brands_queue_and_backlog(full):
    page = report.render(str(full))
    section = page[page.index(">Response queue</h2>"):page.index(">Audience</h2>")]
    assert "<h3>sprite</h3>" in section and "<h3>cocacola</h3>" in section
    assert "5 open, 4 past the 60-minute target, as of 2026-09-11 00:00 UTC" in section
    assert section.index("Sprite is the worst, bad taste") < section.index("when will my order arrive?")
    assert "@boris (repeat)" in section and 'alt="response queue backlog"' in section


def test_a_post_gone_from_the_input_leaves_the_queue_when_its_window_is_rerun(inputs, chain, tmp_path):
    _root, config, _posts = inputs
    out = tmp_path / "out"
    shutil.copytree(chain["out"], out)
    posts = tmp_path / "posts.jsonl"  # q1 was deleted on the platform: the next export lacks it
    posts.write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in POSTS if p["id"] != "q1") + "\n",
                     encoding="utf-8")
    _run(config, posts, out, "--window_start", "2026-09-09", "--window_end", "2026-09-11")
    assert set(_queue(out)) == set(EXPECTED_FULL) - {("sprite", "q1")}
    assert _metric(out, "day", "2026-09-10")["queue_size"] == 4


def test_the_x_connector_fetches_the_support_accounts_replies_too():
    config = parse_config({"brands": [{"id": "sprite", "names": ["Sprite"], "handles": ["Sprite"],
                                       "response": {"accounts": ["SpriteCares"]}}]})
    queries = XConnector.queries(config, ConnectorSettings(base_url=""), {"bearer_token": "t"})
    kinds = {(q.kind, q.text) for q in queries}
    assert {(BRAND_REPLIES, "from:Sprite is:reply"), (BRAND_REPLIES, "from:SpriteCares is:reply"),
            (ACCOUNT, "Sprite")} <= kinds
    assert (ACCOUNT, "SpriteCares") not in kinds  # its followers are not the brand's audience
