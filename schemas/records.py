"""The pipeline's records: Mention, BrandMention, RejectedMatch, Metric, LangMetric, TopicMetric, Alert,
DeadLetter, ResponseQueueItem, QueueMetric, AccountSnapshot, BrandReply.

Each record is a field list (see `schemas.fields`), a NamedTuple registered with
Beam's RowCoder, and a pyarrow schema built from the same list. Timestamps are
UTC and timezone-aware; ids are strings; counts a platform may not report are
nullable (unknown is not zero).
"""

from __future__ import annotations

import datetime
import typing

import pyarrow as pa

from schemas.fields import TIMESTAMP, arrow_schema, f, record_type

DT = datetime.datetime
DATE = datetime.date

# Engagement counts, shared by Mention and BrandMention.
ENGAGEMENT_FIELDS = (
    f("likes", int, pa.int64(), "Likes / favourites; null when the platform did not report it."),
    f("reposts", int, pa.int64(), "Reposts / retweets / boosts; null when not reported."),
    f("replies", int, pa.int64(), "Replies / comments; null when not reported."),
    f("quotes", int, pa.int64(), "Quote posts; null when not reported."),
    f("impressions", int, pa.int64(), "Times the post was seen; null when not reported."),
    f("bookmarks", int, pa.int64(), "Bookmarks / saves; null when not reported."),
)

_POST_FIELDS = (
    f("url", str, pa.string(), "Link to the post on its platform."),
    f("author_id", str, pa.string(), "The author's platform id."),
    f("author_handle", str, pa.string(), "The author's handle, without '@'."),
    f("author_followers", int, pa.int64(), "The author's follower count when fetched; null if unknown."),
    f("is_repost", bool, pa.bool_(), "True if the post is a plain repost / retweet / boost."),
    f("repost_of", str, pa.string(), "Id of the reposted post."),
    f("is_reply", bool, pa.bool_(), "True if the post replies to another post."),
    f("reply_to", str, pa.string(), "Id of the post replied to."),
    f("is_quote", bool, pa.bool_(), "True if the post quotes another post."),
    f("quote_of", str, pa.string(), "Id of the quoted post."),
    f("conversation_id", str, pa.string(), "Id of the thread's root post."),
) + ENGAGEMENT_FIELDS + (
    f("fetched_at", DT, TIMESTAMP, "When the connector fetched the post (UTC)."),
    f("connector", str, pa.string(), "The connector that produced the record (e.g. 'file').", nullable=False),
    f("query", str, pa.string(), "The connector's query or input path that produced it."),
)

MENTION_FIELDS = (
    f("id", str, pa.string(), "The post's id on its platform.", nullable=False),
    f("platform", str, pa.string(), "Platform: x, mastodon, reddit, bluesky, ...; 'unknown' when the input does not say.", nullable=False),
    f("created_at", DT, TIMESTAMP, "When the post was published (UTC).", nullable=False),
    f("text", str, pa.string(), "The post's text.", nullable=False),
    f("lang", str, pa.string(), "Language code (ISO 639-1) as reported by the platform; null if unknown (the "
      "job's language step fills it in `brand_mentions`)."),
) + _POST_FIELDS

LANG_SOURCES = ("platform", "detected")
SCRIPTS = ("Latn", "Cyrl", "other")

# Set by the job's language step (transforms.language) before matching; a post as read has them null.
LANGUAGE_FIELDS = (
    f("lang_source", str, pa.string(),
      "Where `lang` comes from: 'platform' (reported with the post), 'detected' (transforms.language, offline, "
      "from the text); null when the language is unknown (empty, emoji-only or link-only text, or too little "
      "evidence), and in `posts` (the archive keeps posts as read)."),
    f("script", str, pa.string(),
      "The writing system of the text's letters: 'Latn', 'Cyrl' or 'other' (most letters win; links, @handles "
      "left out); null when the text has no letters (and in `posts`)."),
)

MENTION_FIELDS = MENTION_FIELDS + LANGUAGE_FIELDS

Mention = record_type("Mention", MENTION_FIELDS, __name__)
# Connectors build posts before the language step: these two default to null (and come last, so that
# every record built before they existed still builds).
Mention.__new__.__defaults__ = (None,) * len(LANGUAGE_FIELDS)
Mention._field_defaults.update({fld.name: None for fld in LANGUAGE_FIELDS})
MENTION_SCHEMA = arrow_schema(MENTION_FIELDS, "Mention")

MATCH_KINDS = ("tagged", "untagged")
SENTIMENTS = ("negative", "neutral", "positive")

BRAND_MENTION_FIELDS = (
    f("mention_id", str, pa.string(), "The post's id (the input's `id`).", nullable=False),
    f("platform", str, pa.string(), "Platform the post comes from.", nullable=False),
    f("created_at", DT, TIMESTAMP, "When the post was published (UTC).", nullable=False),
    f("text", str, pa.string(), "The post's text.", nullable=False),
    f("lang", str, pa.string(),
      "Language code (ISO 639-1: en, ru, uk, hr, sr, bs, ...): the platform's, else detected from the text "
      "(`lang_source`); null when unknown."),
    f("brand_id", str, pa.string(), "The brand matched (the config's `id`).", nullable=False),
    f("match_kind", str, pa.string(),
      "'tagged' (via @handle or #hashtag) or 'untagged' (the name in plain text); tagged wins when both.",
      nullable=False),
    f("matched_term", str, pa.string(),
      "The config term that matched, as written in the config (with '@'/'#' for tagged).", nullable=False),
    f("matched_rule", str, pa.string(),
      "The rule that counted the post: 'names', 'handles', 'hashtags', or 'query: <the top-level OR branch "
      "of the brand's query, as written>'.", nullable=False),
    f("sentiment", str, pa.string(), "Most probable class: negative, neutral or positive.", nullable=False),
    f("p_negative", float, pa.float32(), "Model probability of negative.", nullable=False),
    f("p_neutral", float, pa.float32(), "Model probability of neutral.", nullable=False),
    f("p_positive", float, pa.float32(), "Model probability of positive.", nullable=False),
    f("sentiment_target", str, pa.string(),
      "Where `sentiment` toward this row's brand came from, in a post naming several brands: 'comparison' (a "
      "comparison cue: 'Bolt > Uber', 'switched from X to Y', 'bolji od' make the winner positive and the loser "
      "negative; 'X is as bad as Y' gives both the post's label), 'segment' (the model's label for the clause "
      "naming the brand: 'Love Bolt, but Uber was awful again' is negative for uber) or 'post' (the post's own "
      "label: a post naming one brand, a clause too short or read as neutral, a brand not found in the text, or "
      "a clause whose scoring failed). docs/model.md#stance-brand_mentionssentiment_target.",
      nullable=False),
    f("model_id", str, pa.string(), "Id of the model that scored the text: sentiment, topics and, in a job that "
      "judges an ambiguous brand, relevance (`+relevance-<hash of profiles, calibration, projection and layers>`).",
      nullable=False),
    f("topics", list[str], pa.list_(pa.string()),
      "The primary topic first, then any other scoring at least the threshold, best first; `[\"other\"]` alone when "
      "no topic fits (docs/topics.md); empty when the model has no topics.",
      nullable=False),
    f("topic_scores", typing.Mapping[str, float], pa.map_(pa.string(), pa.float32()),
      "Every topic's score in [0, 1], independent across topics (DuckDB: `topic_scores['price_promotion']`); "
      "empty when the model has no topics.", nullable=False),
) + _POST_FIELDS + LANGUAGE_FIELDS + (
    # Last, with a default of None, so that code building rows without it keeps working.
    f("relevance", float, pa.float32(),
      "How surely the post is about the brand, in [0, 1], for a brand whose name is ambiguous (docs/relevance.md): "
      "1.0 when tagged or when it names a competitor or product, else the model's judgement from context; matches "
      "below the threshold are in `rejected_matches`, not here. Null for brands not judged (names that are not "
      "ambiguous)."),
)

BrandMention = record_type("BrandMention", BRAND_MENTION_FIELDS, __name__)
BrandMention.__new__.__defaults__ = (None,) * (len(LANGUAGE_FIELDS) + 1)
BrandMention._field_defaults.update({fld.name: None for fld in LANGUAGE_FIELDS + BRAND_MENTION_FIELDS[-1:]})
BRAND_MENTION_SCHEMA = arrow_schema(BRAND_MENTION_FIELDS, "BrandMention")

# The matches on ambiguous brand names judged not about the brand (transforms.relevance): kept for review.
REJECTED_MATCH_FIELDS = (
    f("mention_id", str, pa.string(), "The post's id (the input's `id`).", nullable=False),
    f("platform", str, pa.string(), "Platform the post comes from.", nullable=False),
    f("created_at", DT, TIMESTAMP, "When the post was published (UTC).", nullable=False),
    f("lang", str, pa.string(), "Language code reported for the post; null if unknown."),
    f("brand_id", str, pa.string(), "The brand whose name matched.", nullable=False),
    f("matched_term", str, pa.string(), "The config term that matched, as written in the config.", nullable=False),
    f("matched_rule", str, pa.string(), "The rule that matched (as `brand_mentions.matched_rule`).", nullable=False),
    f("relevance", float, pa.float32(), "The model's relevance of the post to the brand, in [0, 1].",
      nullable=False),
    f("threshold", float, pa.float32(), "The config's `relevance.threshold` it fell below.", nullable=False),
    f("reason", str, pa.string(), "Why the match was rejected, in words.", nullable=False),
    f("text_excerpt", str, pa.string(), "The post's text, cut at 280 characters.", nullable=False),
    f("url", str, pa.string(), "Link to the post on its platform."),
    f("author_handle", str, pa.string(), "The author's handle, without '@'."),
    f("model_id", str, pa.string(), "Id of the model that judged it (its `+relevance-` part names the relevance "
      "profiles, calibration, projection and layers).", nullable=False),
)

RejectedMatch = record_type("RejectedMatch", REJECTED_MATCH_FIELDS, __name__)
REJECTED_MATCH_SCHEMA = arrow_schema(REJECTED_MATCH_FIELDS, "RejectedMatch")

PERIODS = ("day", "week", "month", "quarter")
_PERIOD_DOC = "'day', 'week' (ISO week, Monday to Sunday), 'month' or 'quarter' (calendar), all in UTC."
_COUNT, _NULL_IF_NONE = pa.int64(), "null when none reported it"

# The rates of `metrics` that also get `<rate>_change` and `<rate>_vs_trailing4` columns (growth rates
# are changes already). `transforms.metrics` computes them from this same list.
METRIC_CHANGE_RATES = (
    "untagged_share", "share_of_voice", "engagement_share_of_voice", "sentiment_share_of_voice",
    "negative_rate", "neutral_rate", "positive_rate", "net_sentiment",
    "engagement_rate_impressions", "beyond_likes_rate", "engagement_rate_followers",
    "amplification_rate", "conversation_rate", "applause_rate", "negative_reply_rate",
)
TOPIC_CHANGE_RATES = ("topic_share", "negative_share", "negative_rate", "neutral_rate", "positive_rate",
                      "net_sentiment")
TRAILING_PERIODS = 4


def _change_fields(rates: typing.Sequence[str]) -> tuple:
    out = []
    for rate in rates:
        out.append(f(f"{rate}_change", float, pa.float64(),
                     f"`{rate}` minus its value in the previous period (a difference in rate points); "
                     "null when either is null."))
        out.append(f(f"{rate}_vs_trailing4", float, pa.float64(),
                     f"`{rate}` minus its mean over the {TRAILING_PERIODS} periods before (the brand's own "
                     f"benchmark; periods where it is null are skipped); null when the run has fewer than "
                     f"{TRAILING_PERIODS} earlier periods or the rate is null in all of them."))
    return tuple(out)


def _sentiment_fields(counted: str) -> tuple:
    """The sentiment counts, rates and net sentiment of a metric row (``metrics``, ``topic_metrics``).

    Args:
        counted: Which mentions a count counts, as its doc opens ("Mentions", "Mentions with this topic").
    """
    counts = tuple(f(f"{s}_mentions", int, _COUNT, f"{counted} scored {s}.", nullable=False) for s in SENTIMENTS)
    rates = tuple(f(f"{s}_rate", float, pa.float64(), f"{s}_mentions / mentions; null when mentions is 0.")
                  for s in SENTIMENTS)
    return counts + rates + (
        f("net_sentiment", float, pa.float64(),
          "(positive - negative) / (positive + negative), in [-1, 1]; null when both are 0."),)


_BREAKDOWN_FIELDS = (
    f("brand_id", str, pa.string(), "The brand.", nullable=False),
    f("period", str, pa.string(), _PERIOD_DOC, nullable=False),
    f("period_start", DATE, pa.date32(), "First day of the period (UTC).", nullable=False),
)

_METRIC_VALUE_FIELDS = (
    f("days_in_run", int, pa.int64(),
      "Days of the period inside the run's date range (first to last valid post): fewer than the period's "
      "length for a partial first or last period.", nullable=False),
    f("competitive_set", str, pa.string(),
      "The brand and its configured competitors, ids sorted and comma-separated; null when it has none."),
    # Volume
    f("mentions", int, _COUNT, "Posts that mention the brand in the period.", nullable=False),
    f("previous_mentions", int, _COUNT,
      "Mentions in the previous period of the same kind; null for the first period of the run."),
    f("mentions_growth_rate", float, pa.float64(),
      "(mentions - previous_mentions) / previous_mentions; null when previous is 0 or unknown."),
    f("mentions_trailing4", float, pa.float64(),
      f"Mean mentions over the {TRAILING_PERIODS} periods before; null when the run has fewer earlier periods."),
    f("mentions_vs_trailing4", float, pa.float64(),
      "(mentions - mentions_trailing4) / mentions_trailing4; null when the trailing mean is 0 or unknown."),
    f("tagged_mentions", int, _COUNT, "Mentions with the brand's @handle or #hashtag.", nullable=False),
    f("untagged_mentions", int, _COUNT, "Mentions naming the brand only in plain text.", nullable=False),
    f("untagged_share", float, pa.float64(), "untagged_mentions / mentions; null when mentions is 0."),
    f("unique_authors", int, _COUNT, "Distinct author ids among the mentions (authors with no id not counted): "
      "exact up to 2,048, above that a HyperLogLog estimate (relative standard error 0.81 %).", nullable=False),
    f("unique_authors_estimated", bool, pa.bool_(),
      "True when unique_authors is the HyperLogLog estimate (more than 2,048 distinct authors), false when exact.",
      nullable=False),
    # Share of voice
    f("competitive_set_mentions", int, _COUNT,
      "Mentions of the brand plus its configured competitors in the same period and platform (language in "
      "`lang_metrics`); null when the brand has no competitors."),
    f("share_of_voice", float, pa.float64(),
      "mentions / competitive_set_mentions; null when the brand has no competitors or the set has 0 mentions."),
    f("competitive_set_engagements", int, _COUNT,
      "engagements of the brand plus its competitors in the same period and platform (language in "
      "`lang_metrics`); null without competitors."),
    f("engagement_share_of_voice", float, pa.float64(),
      "engagements / competitive_set_engagements; null without competitors or when the set has 0 engagements."),
    f("competitive_set_positive_mentions", int, _COUNT,
      "positive_mentions of the brand plus its competitors in the same period and platform (language in "
      "`lang_metrics`); null without competitors."),
    f("sentiment_share_of_voice", float, pa.float64(),
      "positive_mentions / competitive_set_positive_mentions: the brand's share of the set's positive talk; "
      "null without competitors or when the set has no positive mention."),
    # Sentiment
    *_sentiment_fields("Mentions"),
    # Engagement
    f("engagements", int, _COUNT,
      "Sum of likes + reposts + replies + quotes over the mentions that report any of them.", nullable=False),
    f("engagement_reporting_mentions", int, _COUNT,
      "Mentions that report at least one of likes, reposts, replies, quotes.", nullable=False),
    f("impressions", int, _COUNT,
      "Sum of impressions over the mentions that report impressions and engagement.", nullable=False),
    f("impression_reporting_mentions", int, _COUNT,
      "Mentions that report impressions and engagement: the denominator's sample size.", nullable=False),
    f("engagement_rate_impressions", float, pa.float64(),
      "Engagements / impressions over impression-reporting mentions; null when none or 0 impressions."),
    f("beyond_likes_rate", float, pa.float64(),
      "(reposts + replies + quotes) / impressions over the same impression-reporting mentions: the engagement "
      "rate that leaves likes out; null when none or 0 impressions."),
    f("follower_reach", int, _COUNT,
      "Sum of author followers over the mentions that report followers and engagement.", nullable=False),
    f("follower_reporting_mentions", int, _COUNT,
      "Mentions that report author followers and engagement: the denominator's sample size.", nullable=False),
    f("engagement_rate_followers", float, pa.float64(),
      "Engagements / follower_reach over follower-reporting mentions; null when none or 0 followers."),
    f("amplifications", int, _COUNT,
      "Sum of reposts + quotes over the mentions that report either.", nullable=False),
    f("amplification_reporting_mentions", int, _COUNT, "Mentions that report reposts or quotes.",
      nullable=False),
    f("amplification_rate", float, pa.float64(),
      f"amplifications / amplification_reporting_mentions (reposts + quotes per mention); {_NULL_IF_NONE}."),
    f("replies", int, _COUNT, "Sum of replies the mentions received, over the mentions that report replies.",
      nullable=False),
    f("reply_reporting_mentions", int, _COUNT, "Mentions that report replies.", nullable=False),
    f("conversation_rate", float, pa.float64(),
      f"replies / reply_reporting_mentions (replies per mention); {_NULL_IF_NONE}."),
    f("likes", int, _COUNT, "Sum of likes over the mentions that report likes.", nullable=False),
    f("like_reporting_mentions", int, _COUNT, "Mentions that report likes.", nullable=False),
    f("applause_rate", float, pa.float64(),
      f"likes / like_reporting_mentions (likes per mention); {_NULL_IF_NONE}."),
    # Service
    f("service_negative_mentions", int, _COUNT,
      "Negative mentions (plain reposts left out) on the platforms where the brand's own replies are known; "
      "null when they are known on none of this row's platforms."),
    f("answered_negative_mentions", int, _COUNT,
      "Of service_negative_mentions, those the brand's own account replied to directly (reply after the post)."),
    f("negative_reply_rate", float, pa.float64(),
      "answered_negative_mentions / service_negative_mentions; null when that is 0 or unknown."),
    f("median_response_minutes", float, pa.float64(),
      "Median minutes from a negative mention to the brand's first reply, over the answered ones (within 1%); "
      "null when none was answered."),
    # Audience
    f("account_followers", int, _COUNT,
      "Followers of the brand's own accounts at each one's last snapshot in the period (summed over accounts); "
      "null without snapshots (and in `lang_metrics`: accounts have no language)."),
    f("follower_growth_rate", float, pa.float64(),
      "(followers at the last snapshot in the period - at the last snapshot before the period) / the latter, "
      "summed over the accounts that have both; null otherwise (and in `lang_metrics`)."),
) + _change_fields(METRIC_CHANGE_RATES)

METRIC_FIELDS = _BREAKDOWN_FIELDS + (
    f("platform", str, pa.string(), "Platform of this breakdown; null for all platforms together."),
) + _METRIC_VALUE_FIELDS

Metric = record_type("Metric", METRIC_FIELDS, __name__)
METRIC_SCHEMA = arrow_schema(METRIC_FIELDS, "Metric")

# The same metrics broken down by language (all platforms together): a table of its own, so that
# `metrics` keeps one total row per (brand, period, period_start) where `platform IS NULL`.
LANG_METRIC_FIELDS = _BREAKDOWN_FIELDS + (
    f("lang", str, pa.string(),
      "Language of the posts (`brand_mentions.lang`: reported, else detected; e.g. 'en', 'sr'); 'und' for posts "
      "whose language is unknown.", nullable=False),
) + _METRIC_VALUE_FIELDS

LangMetric = record_type("LangMetric", LANG_METRIC_FIELDS, __name__)
LANG_METRIC_SCHEMA = arrow_schema(LANG_METRIC_FIELDS, "LangMetric")

TOPIC_METRIC_FIELDS = _BREAKDOWN_FIELDS + (
    f("topic", str, pa.string(), "The topic (a name from `brand_mentions.topics`).", nullable=False),
    f("days_in_run", int, _COUNT, "Days of the period inside the run's date range.", nullable=False),
    f("brand_total_mentions", int, _COUNT, "All the brand's mentions in the period (every topic or none).",
      nullable=False),
    f("brand_negative_mentions", int, _COUNT, "All the brand's negative mentions in the period.", nullable=False),
    f("mentions", int, _COUNT, "The brand's mentions with this topic among their `topics`.", nullable=False),
    f("previous_mentions", int, _COUNT, "mentions in the previous period; null for the first period of the run."),
    f("mentions_growth_rate", float, pa.float64(),
      "(mentions - previous_mentions) / previous_mentions; null when previous is 0 or unknown."),
    f("topic_share", float, pa.float64(),
      "mentions / brand_total_mentions (a post may have several topics); null when the brand has none."),
    *_sentiment_fields("Mentions with this topic"),
    f("negative_share", float, pa.float64(),
      "negative_mentions / brand_negative_mentions: how much of the brand's negative talk carries this topic "
      "(the driver of negative sentiment); null when the brand has no negative mention."),
) + _change_fields(TOPIC_CHANGE_RATES)

TopicMetric = record_type("TopicMetric", TOPIC_METRIC_FIELDS, __name__)
TOPIC_METRIC_SCHEMA = arrow_schema(TOPIC_METRIC_FIELDS, "TopicMetric")

ALERT_KINDS = ("negative_spike", "negative_rate_spike", "share_of_voice_drop")

ALERT_FIELDS = _BREAKDOWN_FIELDS + (
    f("alert", str, pa.string(),
      "'negative_spike' (negative mentions), 'negative_rate_spike' or 'share_of_voice_drop'.", nullable=False),
    f("metric", str, pa.string(), "The `metrics` column tested: negative_mentions, negative_rate or "
      "share_of_voice (all platforms and languages together).", nullable=False),
    f("value", float, pa.float64(), "The metric in this period.", nullable=False),
    f("baseline_median", float, pa.float64(), "Median of the metric over the baseline periods.", nullable=False),
    f("baseline_mad", float, pa.float64(), "Median absolute deviation from that median.", nullable=False),
    f("baseline_scale", float, pa.float64(),
      "The z-score's denominator: max(1.4826 x MAD, the noise floor; see docs/outputs.md, 'Early warnings').",
      nullable=False),
    f("baseline_periods", int, _COUNT,
      "Baseline periods used: the trailing ones before this period where the metric is defined.",
      nullable=False),
    f("z_score", float, pa.float64(), "(value - baseline_median) / baseline_scale.", nullable=False),
    f("z_threshold", float, pa.float64(), "The configured threshold it crossed (negative for a drop).",
      nullable=False),
    f("mentions", int, _COUNT, "The brand's mentions in the period.", nullable=False),
    f("negative_mentions", int, _COUNT, "The brand's negative mentions in the period.", nullable=False),
    f("negative_rate", float, pa.float64(), "negative_mentions / mentions."),
    f("share_of_voice", float, pa.float64(), "The brand's share of voice in the period."),
    f("competitive_set_mentions", int, _COUNT, "Mentions of the brand's competitive set in the period."),
    f("top_topics", list[str], pa.list_(pa.string()),
      "Most frequent topics of the brand's negative mentions in the period, most first.", nullable=False),
    f("top_topic_mentions", list[int], pa.list_(pa.int64()),
      "How many of those negative mentions carry each of `top_topics`.", nullable=False),
    f("top_terms", list[str], pa.list_(pa.string()),
      "Most frequent single words of those negative mentions, word forms folded and shown in their most used "
      "form (stop words of en, ru, uk, hr, sr, bs, links, @handles and the brand's own names left out), most "
      "first; see `key_phrases` for what sets them apart.", nullable=False),
    f("top_term_mentions", list[int], pa.list_(pa.int64()),
      "How many of those negative mentions use each of `top_terms`.", nullable=False),
    f("key_phrases", list[str], pa.list_(pa.string()),
      "Words and 2-3 word phrases of those negative mentions that the brand's other mentions of the run use "
      "least, best first (log-odds z-score with an informative prior; word forms folded, stop words and the "
      "brand's names left out; docs/alerts.md).", nullable=False),
    f("key_phrase_posts", list[int], pa.list_(pa.int64()),
      "How many distinct negative posts (copies collapsed) use each of `key_phrases` (at least 2).",
      nullable=False),
    f("key_phrase_scores", list[float], pa.list_(pa.float64()),
      "Each key phrase's z-score: its log-odds ratio, these posts against the baseline, over its standard "
      "error.", nullable=False),
    f("key_phrase_baseline_rates", list[float | None], pa.list_(pa.float64()),
      "Share of the brand's other mentions of the run (the baseline) that use each key phrase; null where the "
      "brand has no other mention.", nullable=False),
    f("post_ids", list[str], pa.list_(pa.string()),
      "Up to 5 representative negative posts of the period (`mention_id`): the highest reach, copies and "
      "near-identical texts collapsed into one, most reach first.", nullable=False),
    f("post_urls", list[str | None], pa.list_(pa.string()),
      "Each representative post's link: its `url`, else built from the platform and id (x, bluesky, reddit "
      "posts); null where neither exists.", nullable=False),
    f("post_platforms", list[str], pa.list_(pa.string()),
      "Each representative post's platform.", nullable=False),
    f("post_authors", list[str | None], pa.list_(pa.string()),
      "Each representative post's author handle; null where unknown.", nullable=False),
    f("post_excerpts", list[str], pa.list_(pa.string()),
      "Each representative post's text on one line, cut at a word to 280 characters ('…' when cut).",
      nullable=False),
    f("post_reach", list[int | None], pa.list_(pa.int64()),
      "Reach of each representative post with its copies: author_followers + likes + reposts + replies + "
      "quotes, summed over the copies; null where none reported any of them.", nullable=False),
    f("post_copies", list[int], pa.list_(pa.int64()),
      "How many negative mentions of the period each representative post stands for (itself, its copies and "
      "near-identical texts).", nullable=False),
    f("summary", str, pa.string(), "The alert in one sentence, for people.", nullable=False),
)

Alert = record_type("Alert", ALERT_FIELDS, __name__)
ALERT_SCHEMA = arrow_schema(ALERT_FIELDS, "Alert")

DEAD_LETTER_FIELDS = (
    f("step", str, pa.string(), "Pipeline step that rejected the record (e.g. 'parse', 'sentiment').",
      nullable=False),
    f("reason", str, pa.string(), "Why it was rejected, in words a user can act on.", nullable=False),
    f("record", str, pa.string(),
      "The rejected record as received (a JSON/CSV line or a JSON rendering; invalid bytes escaped).",
      nullable=False),
    f("source", str, pa.string(), "Where it came from, e.g. 'path/to/file.jsonl:17'."),
    f("time", DT, TIMESTAMP, "When it was rejected (UTC).", nullable=False),
)

DeadLetter = record_type("DeadLetter", DEAD_LETTER_FIELDS, __name__)
DEAD_LETTER_SCHEMA = arrow_schema(DEAD_LETTER_FIELDS, "DeadLetter")

# The platform connectors' own records: the brand account over time, and its replies.
ACCOUNT_SNAPSHOT_FIELDS = (
    f("brand_id", str, pa.string(), "The brand whose account it is (the config's `id`).", nullable=False),
    f("platform", str, pa.string(), "Platform of the account.", nullable=False),
    f("handle", str, pa.string(), "The account's handle, without '@'.", nullable=False),
    f("account_id", str, pa.string(), "The account's platform id."),
    f("followers", int, pa.int64(), "Follower count when fetched; null when not reported."),
    f("following", int, pa.int64(), "Accounts it follows when fetched; null when not reported."),
    f("posts", int, pa.int64(), "Posts it has published (X: tweet_count); null when not reported."),
    f("fetched_at", DT, TIMESTAMP, "When the snapshot was taken (UTC); one row per account and run.",
      nullable=False),
)

AccountSnapshot = record_type("AccountSnapshot", ACCOUNT_SNAPSHOT_FIELDS, __name__)
ACCOUNT_SNAPSHOT_SCHEMA = arrow_schema(ACCOUNT_SNAPSHOT_FIELDS, "AccountSnapshot")

BRAND_REPLY_FIELDS = (
    f("id", str, pa.string(), "The reply's id on its platform.", nullable=False),
    f("platform", str, pa.string(), "Platform of the reply.", nullable=False),
    f("brand_id", str, pa.string(), "The brand whose account replied (the config's `id`).", nullable=False),
    f("handle", str, pa.string(), "The brand account's handle, without '@'.", nullable=False),
    f("created_at", DT, TIMESTAMP, "When the reply was published (UTC).", nullable=False),
    f("in_reply_to_id", str, pa.string(),
      "Id of the post it answers (joins `brand_mentions.mention_id`); null when the platform did not say."),
    f("in_reply_to_user_id", str, pa.string(), "Author id of the post it answers."),
    f("conversation_id", str, pa.string(),
      "Id of the thread's root post (joins `brand_mentions.conversation_id`)."),
    f("text", str, pa.string(), "The reply's text.", nullable=False),
    f("url", str, pa.string(), "Link to the reply on its platform."),
    f("fetched_at", DT, TIMESTAMP, "When the connector fetched it (UTC).", nullable=False),
    f("query", str, pa.string(), "The query that fetched it (e.g. 'from:Sprite is:reply')."),
)

BrandReply = record_type("BrandReply", BRAND_REPLY_FIELDS, __name__)
BRAND_REPLY_SCHEMA = arrow_schema(BRAND_REPLY_FIELDS, "BrandReply")

# The response queue (transforms.response_queue): what the brand's team should answer now, and how fast it did.
QUEUE_REASONS = ("complaint", "question", "thanks")

RESPONSE_QUEUE_FIELDS = (
    f("brand_id", str, pa.string(), "The brand that should answer (the config's `id`).", nullable=False),
    f("rank", int, pa.int64(), "1 for the brand's highest priority item, then 2, 3, ...", nullable=False),
    f("priority", float, pa.float64(),
      "Priority score in [0, 100]: 100 x (0.30 reach + 0.25 negativity + 0.20 age + 0.10 untagged + 0.15 repeat "
      "complainer); see docs/response-queue.md.", nullable=False),
    f("reasons", list[str], pa.list_(pa.string()),
      "Why it is in the queue, of 'complaint' (negative toward the brand), 'question' (a question addressed to "
      "the brand) and 'thanks' (a positive untagged mention by an author worth thanking).", nullable=False),
    f("mention_id", str, pa.string(), "The post's id (joins `brand_mentions.mention_id`).", nullable=False),
    f("platform", str, pa.string(), "Platform of the post.", nullable=False),
    f("url", str, pa.string(), "Link to the post, to answer it."),
    f("author_id", str, pa.string(), "The author's platform id."),
    f("author_handle", str, pa.string(), "The author's handle, without '@'."),
    f("created_at", DT, TIMESTAMP, "When the post was published (UTC).", nullable=False),
    f("lang", str, pa.string(), "Language code reported for the post; null if unknown."),
    f("text", str, pa.string(), "The post's text.", nullable=False),
    f("sentiment", str, pa.string(), "Sentiment toward the brand: negative, neutral or positive.", nullable=False),
    f("p_negative", float, pa.float32(), "Model probability of negative.", nullable=False),
    f("topics", list[str], pa.list_(pa.string()), "The post's topics (as in `brand_mentions`).",
      nullable=False),
    f("match_kind", str, pa.string(), "'tagged' (the brand was notified) or 'untagged' (it was not).",
      nullable=False),
    f("author_followers", int, pa.int64(), "The author's followers; null if unknown."),
    f("engagement", int, pa.int64(),
      "likes + reposts + replies + quotes over the counts reported; null when none is."),
    f("author_complaints", int, pa.int64(),
      "The author's complaints about the brand (on this platform) within the horizon before `as_of`, this one "
      "included when it is one; 2 or more: a repeat complainer.", nullable=False),
    f("age_hours", float, pa.float64(), "Hours from created_at to `as_of`.", nullable=False),
    f("target_minutes", int, pa.int64(), "The brand's response-time target (config `response.target_minutes`).",
      nullable=False),
    f("breached_target", bool, pa.bool_(), "True when the item is older than the target at `as_of`.",
      nullable=False),
    f("as_of", DT, TIMESTAMP,
      "The run's reference time: midnight (UTC) after the last day of the run's date range (a windowed run: its "
      "window's end, or the latest processed day's end).", nullable=False),
)

ResponseQueueItem = record_type("ResponseQueueItem", RESPONSE_QUEUE_FIELDS, __name__)
RESPONSE_QUEUE_SCHEMA = arrow_schema(RESPONSE_QUEUE_FIELDS, "ResponseQueueItem")

QUEUE_METRIC_FIELDS = _BREAKDOWN_FIELDS + (
    f("match_kind", str, pa.string(), "'tagged' or 'untagged'; null for both together."),
    f("calls_for_answer", int, _COUNT,
      "Mentions created in the period that called for an answer (the queue's entry rules).", nullable=False),
    f("complaints", int, _COUNT, "Of calls_for_answer, those with the reason 'complaint'.", nullable=False),
    f("questions", int, _COUNT, "Of calls_for_answer, those with the reason 'question'.", nullable=False),
    f("thanks", int, _COUNT, "Of calls_for_answer, those with the reason 'thanks'.", nullable=False),
    f("answered", int, _COUNT,
      "Of calls_for_answer, those the brand's answering accounts replied to within the horizon (as far as the run "
      "has seen).", nullable=False),
    f("due", int, _COUNT,
      "Of calls_for_answer, those whose target has passed at `as_of` or that were answered within it: the "
      "denominator of answered_within_target_share.", nullable=False),
    f("answered_within_target", int, _COUNT, "Of calls_for_answer, those answered within the target.",
      nullable=False),
    f("answered_within_target_share", float, pa.float64(), "answered_within_target / due; null when due is 0."),
    f("median_response_minutes", float, pa.float64(),
      "Median minutes to the brand's first reply over the answered ones (within 1%); null when none."),
    f("p90_response_minutes", float, pa.float64(),
      "90th percentile (nearest rank) of those minutes (within 1%); null when none was answered."),
    f("queue_size", int, _COUNT,
      "Items open (not answered, within the horizon) at the period's end, or at the run's `as_of` for the period "
      "in progress: the backlog.", nullable=False),
    f("queue_breached", int, _COUNT, "Of queue_size, those past the response-time target then.", nullable=False),
    f("measured_at", DT, TIMESTAMP, "When queue_size is measured: the period's end, or the run's `as_of` if "
      "earlier.", nullable=False),
)

QueueMetric = record_type("QueueMetric", QUEUE_METRIC_FIELDS, __name__)
QUEUE_METRIC_SCHEMA = arrow_schema(QUEUE_METRIC_FIELDS, "QueueMetric")
