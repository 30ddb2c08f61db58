"""Verdict records, the events they publish, and author histories rebuilt from Cassandra rows."""

from hypothesis import given
from hypothesis import strategies as st

from adapters.hot_cache import decode_tweet, encode_tweet
from api.reads import allowed, render_tweet
from pipeline.events import Contracts, encode
from pipeline.model import Tweet, User
from pipeline.moderation import Action, AuthorHistory, Verdict
from pipeline.routing import partition_key
from pipeline.verdicts import MODERATOR, VerdictRecord, created_event, history_from_rows
from pipeline.visibility import Viewer
from tests.e2e.helpers import event

C = Contracts()
ALL = C.event_types


def _verdict(action=Action.LABEL):
    return Verdict(11, 22, action, ("sensitive_term",), {"offensive_text": 0.61234567, "burst": 1.0},
                   ("sensitive_term:spoilers",))


def test_a_model_verdict_publishes_a_valid_event_keyed_by_author():
    record = VerdictRecord.of_model(_verdict(), tweet_at_ms=1_000)
    e = record.event(event_id=99)
    assert C.decode(encode(e), ALL, 65536) == e
    assert partition_key(e) == b"22" and e.actor == 22 and e.occurred_at == 1_000
    assert e.data["delivered"] is True and e.data["source"] == "model" and "previous" not in e.data


def test_an_override_is_later_than_the_tweet_whatever_the_clocks_say():
    override = event("verdict.overridden", 7, {"tweet_id": "11", "author_id": "22", "action": "block"},
                     occurred_at=500)
    record = VerdictRecord.of_override(override, previous=Action.ALLOW, tweet_at_ms=1_000)
    assert record.decided_at == 1_001 and record.source == MODERATOR and not record.delivered
    e = record.event(event_id=override.event_id)
    assert C.decode(encode(e), ALL, 65536) == e
    assert e.actor == 7 and e.data["previous"] == "allow" and partition_key(e) == b"22"


def test_a_restored_tweet_is_the_same_tweet_created_again():
    t = Tweet(11, 22, "hello", reply_to=5, quote_of=None, created_at=1_000,
              media=({"url": "https://x/y.png", "type": "image"},), moderation="block")
    e = created_event(t, event_id=99)
    assert C.decode(encode(e), ALL, 65536) == e
    back = Tweet.from_event(e)
    assert (back.tweet_id, back.author_id, back.text, back.reply_to, back.media) == (11, 22, "hello", 5, t.media)


@given(st.lists(st.tuples(st.integers(1, 10**6), st.integers(0, 10**9), st.sampled_from(["", "ab12"]),
                          st.sampled_from(["allow", "label", "hide", "block"])), unique_by=lambda r: r[0],
                max_size=80), st.integers(1, 40))
def test_history_from_rows_keeps_the_newest_posts_and_strikes(rows, history_max):
    h = history_from_rows([{"tweet_id": i, "at": at, "fingerprint": fp, "action": a} for i, at, fp, a in rows],
                          history_max)
    ordered = sorted(rows)
    assert [p[0] for p in h.posts] == [r[0] for r in ordered][-history_max:]
    assert [s[0] for s in h.strikes] == [r[0] for r in ordered if r[3] in ("hide", "block")][-history_max:]
    assert all(s[2] >= Action.HIDE for s in h.strikes)


def test_history_rows_round_trip_what_the_moderator_recorded():
    h = AuthorHistory(posts=((1, 10, "fp"), (2, 20, "")), strikes=((2, 20, int(Action.BLOCK)),))
    rows = [{"tweet_id": 1, "at": 10, "fingerprint": "fp", "action": "allow"},
            {"tweet_id": 2, "at": 20, "fingerprint": None, "action": "block"},
            {"tweet_id": 3, "at": None, "fingerprint": None, "action": "hide"}]  # expired row, updated later
    assert history_from_rows(rows, 32) == h


def test_the_cache_keeps_the_verdict_and_reads_old_entries_as_allowed():
    t = Tweet(11, 22, "x", None, None, 1, moderation="hide")
    assert decode_tweet(encode_tweet(t)) == t
    assert decode_tweet(b'[11,22,"x",null,null,1,[],null]').moderation == "allow"


def test_withheld_tweets_are_seen_by_their_author_only_and_labels_render():
    author = User(22, "a", "A", "", False, None, 0)
    viewer = Viewer(user_id=5, following=frozenset({22}), hidden=frozenset(), blocked_either_way=frozenset())
    own = Viewer(user_id=22, following=frozenset(), hidden=frozenset(), blocked_either_way=frozenset())
    rule = lambda v, a, p: True  # noqa: E731 - every author visible: only moderation decides here
    for action, others_see in (("allow", True), ("label", True), ("hide", False), ("block", False)):
        t = Tweet(11, 22, "x", None, None, 1, moderation=action)
        assert allowed(rule, viewer, (t, author, None, {})) is others_see
        assert allowed(rule, own, (t, author, None, {})) is True
        out = render_tweet(t, author)
        assert out["possibly_sensitive"] is (action == "label")
        assert ("withheld" in out) is (not others_see)
    original = Tweet(12, 22, "x", None, None, 1, moderation="block")
    retweet = Tweet(13, 5, "", None, None, 2, retweet_of=12)
    assert not allowed(rule, Viewer(9, frozenset(), frozenset(), frozenset()),
                       (retweet, author, (original, author), {})), "a retweet of a blocked tweet is hidden too"
