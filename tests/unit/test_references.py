"""Reference checks over a prefetched snapshot (pure)."""

import pytest

from pipeline.events import Event
from pipeline.references import NOT_OWNER, UNKNOWN_REFERENCE, TweetState, check_batch, needs, retry_delay


def ev(etype, actor, **data):
    return Event(event_id=1, type=etype, version=1, occurred_at=0, actor=actor,
                 data={k: str(v) for k, v in data.items()})


USERS = {1, 2}
TWEETS = {10: TweetState(author_id=2, deleted=False), 11: TweetState(author_id=2, deleted=True)}


@pytest.mark.parametrize("event, reason", [
    (ev("tweet.created", 1, tweet_id=20, text="x"), None),
    (ev("tweet.created", 3, tweet_id=20, text="x"), UNKNOWN_REFERENCE),          # unregistered author
    (ev("tweet.created", 1, tweet_id=20, text="x", reply_to=10), None),
    (ev("tweet.created", 1, tweet_id=20, text="x", reply_to=99), UNKNOWN_REFERENCE),
    (ev("tweet.created", 1, tweet_id=20, text="x", quote_of=11), UNKNOWN_REFERENCE),  # deleted
    (ev("tweet.deleted", 2, tweet_id=10), None),
    (ev("tweet.deleted", 2, tweet_id=11), None),                                  # replayed delete
    (ev("tweet.deleted", 1, tweet_id=10), NOT_OWNER),
    (ev("tweet.deleted", 1, tweet_id=99), UNKNOWN_REFERENCE),
    (ev("like.created", 1, tweet_id=10), None),
    (ev("like.created", 1, tweet_id=11), UNKNOWN_REFERENCE),
    (ev("like.removed", 1, tweet_id=99), None),                                   # undo never waits
    (ev("retweet.created", 1, tweet_id=10, retweet_id=30), None),
    (ev("follow.created", 1, followee_id=2), None),
    (ev("follow.created", 1, followee_id=3), UNKNOWN_REFERENCE),
    (ev("follow.removed", 1, followee_id=3), None),
    (ev("block.created", 1, blocked_id=3), UNKNOWN_REFERENCE),
    (ev("mute.created", 1, muted_id=2), None),
    (ev("user.registered", 5, handle="x", display_name="X"), None),
    (ev("user.updated", 5, bio="b"), UNKNOWN_REFERENCE),
])
def test_verdicts(event, reason):
    [problem] = check_batch([event], USERS, TWEETS)
    assert (problem.reason if problem else None) == reason


def test_earlier_events_in_the_batch_count():
    batch = [ev("user.registered", 7, handle="n", display_name="N"),
             ev("tweet.created", 7, tweet_id=40, text="first"),
             ev("tweet.created", 1, tweet_id=41, text="reply", reply_to=40),
             ev("tweet.deleted", 7, tweet_id=40),
             ev("like.created", 1, tweet_id=40)]
    assert [p.reason if p else None for p in check_batch(batch, USERS, TWEETS)] == [
        None, None, None, None, UNKNOWN_REFERENCE]


def test_needs_lists_every_reference():
    users, tweets = needs([ev("tweet.created", 1, tweet_id=20, text="x", reply_to=10, quote_of=11),
                           ev("follow.created", 2, followee_id=3), ev("user.registered", 9, handle="h", display_name="H")])
    assert users == {1, 2, 3} and tweets == {10, 11}


def test_retry_schedule_ends():
    delays = (1.0, 5.0)
    assert [retry_delay(a, delays) for a in range(4)] == [1.0, 5.0, None, None]


def test_derived_events_are_not_looked_up_again():
    """tweet.referenced and hashtag.observed come from events already checked: no lookups."""
    from pipeline.events import Event
    from pipeline.references import check_batch, needs

    derived = [Event(1, "hashtag.observed", 1, 0, 42, {"tag": "x", "tweet_id": "7", "present": True}),
               Event(2, "tweet.referenced", 1, 0, 43, {"tweet_id": "8", "ref_id": "9", "kind": "reply", "present": True})]
    assert needs(derived) == (set(), set())
    assert check_batch(derived, set(), {}) == [None, None]
