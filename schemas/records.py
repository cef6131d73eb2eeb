"""The pipeline's records: Mention, BrandMention, Metric, DeadLetter, AccountSnapshot and BrandReply.

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
    f("lang", str, pa.string(), "Language code (ISO 639-1) as reported by the platform; null if unknown."),
) + _POST_FIELDS

Mention = record_type("Mention", MENTION_FIELDS, __name__)
MENTION_SCHEMA = arrow_schema(MENTION_FIELDS, "Mention")

MATCH_KINDS = ("tagged", "untagged")
SENTIMENTS = ("negative", "neutral", "positive")

BRAND_MENTION_FIELDS = (
    f("mention_id", str, pa.string(), "The post's id (the input's `id`).", nullable=False),
    f("platform", str, pa.string(), "Platform the post comes from.", nullable=False),
    f("created_at", DT, TIMESTAMP, "When the post was published (UTC).", nullable=False),
    f("text", str, pa.string(), "The post's text.", nullable=False),
    f("lang", str, pa.string(), "Language code reported for the post; null if unknown."),
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
    f("model_id", str, pa.string(), "Id of the sentiment model that scored the text.", nullable=False),
    f("topics", typing.List[str], pa.list_(pa.string()),
      "Topics whose score is above the threshold, best first; empty when none is (or the model has no topics).",
      nullable=False),
    f("topic_scores", typing.Mapping[str, float], pa.map_(pa.string(), pa.float32()),
      "Every topic's score in [0, 1] (DuckDB: `topic_scores['price_promotion']`); empty when the model has no "
      "topics.", nullable=False),
) + _POST_FIELDS

BrandMention = record_type("BrandMention", BRAND_MENTION_FIELDS, __name__)
BRAND_MENTION_SCHEMA = arrow_schema(BRAND_MENTION_FIELDS, "BrandMention")

PERIODS = ("day", "week")

METRIC_FIELDS = (
    f("brand_id", str, pa.string(), "The brand.", nullable=False),
    f("period", str, pa.string(), "'day' or 'week' (ISO week, Monday to Sunday, UTC).", nullable=False),
    f("period_start", DATE, pa.date32(), "First day of the period (UTC).", nullable=False),
    f("platform", str, pa.string(), "Platform of this breakdown; null for all platforms together."),
    f("mentions", int, pa.int64(), "Posts that mention the brand in the period.", nullable=False),
    f("previous_mentions", int, pa.int64(),
      "Mentions in the previous period of the same kind; null for the first period of the run."),
    f("mentions_growth_rate", float, pa.float64(),
      "(mentions - previous_mentions) / previous_mentions; null when previous is 0 or unknown."),
    f("tagged_mentions", int, pa.int64(), "Mentions with the brand's @handle or #hashtag.", nullable=False),
    f("untagged_mentions", int, pa.int64(), "Mentions naming the brand only in plain text.", nullable=False),
    f("untagged_share", float, pa.float64(), "untagged_mentions / mentions; null when mentions is 0."),
    f("unique_authors", int, pa.int64(), "Distinct author ids among the mentions (authors with no id not counted).",
      nullable=False),
    f("competitive_set_mentions", int, pa.int64(),
      "Mentions of the brand plus its configured competitors in the same period and platform; "
      "null when the brand has no competitors."),
    f("share_of_voice", float, pa.float64(),
      "mentions / competitive_set_mentions; null when the brand has no competitors or the set has 0 mentions."),
    f("negative_mentions", int, pa.int64(), "Mentions scored negative.", nullable=False),
    f("neutral_mentions", int, pa.int64(), "Mentions scored neutral.", nullable=False),
    f("positive_mentions", int, pa.int64(), "Mentions scored positive.", nullable=False),
    f("negative_rate", float, pa.float64(), "negative_mentions / mentions; null when mentions is 0."),
    f("positive_rate", float, pa.float64(), "positive_mentions / mentions; null when mentions is 0."),
    f("net_sentiment", float, pa.float64(),
      "(positive - negative) / (positive + negative), in [-1, 1]; null when both are 0."),
    f("engagements", int, pa.int64(),
      "Sum of likes + reposts + replies + quotes over the mentions that report any of them.", nullable=False),
    f("engagement_reporting_mentions", int, pa.int64(),
      "Mentions that report at least one of likes, reposts, replies, quotes.", nullable=False),
    f("impressions", int, pa.int64(),
      "Sum of impressions over the mentions that report impressions and engagement.", nullable=False),
    f("impression_reporting_mentions", int, pa.int64(),
      "Mentions that report impressions and engagement: the denominator's sample size.", nullable=False),
    f("engagement_rate_impressions", float, pa.float64(),
      "Engagements / impressions over impression-reporting mentions; null when none or 0 impressions."),
    f("follower_reach", int, pa.int64(),
      "Sum of author followers over the mentions that report followers and engagement.", nullable=False),
    f("follower_reporting_mentions", int, pa.int64(),
      "Mentions that report author followers and engagement: the denominator's sample size.", nullable=False),
    f("engagement_rate_followers", float, pa.float64(),
      "Engagements / follower_reach over follower-reporting mentions; null when none or 0 followers."),
)

Metric = record_type("Metric", METRIC_FIELDS, __name__)
METRIC_SCHEMA = arrow_schema(METRIC_FIELDS, "Metric")

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

# Every table the pipeline writes: name -> (fields, schema).
TABLES: typing.Dict[str, tuple] = {
    "brand_mentions": (BRAND_MENTION_FIELDS, BRAND_MENTION_SCHEMA),
    "metrics": (METRIC_FIELDS, METRIC_SCHEMA),
    "dead_letters": (DEAD_LETTER_FIELDS, DEAD_LETTER_SCHEMA),
    # Written by runs with a platform --source (x, mastodon, reddit, bluesky):
    "posts": (MENTION_FIELDS, MENTION_SCHEMA),
    "brand_replies": (BRAND_REPLY_FIELDS, BRAND_REPLY_SCHEMA),
    "account_snapshots": (ACCOUNT_SNAPSHOT_FIELDS, ACCOUNT_SNAPSHOT_SCHEMA),
}
