"""Who is notified of what, and how a page of notifications is grouped (pipeline/notifications.py)."""

from hypothesis import given
from hypothesis import strategies as st

from pipeline.events import Event
from pipeline.notifications import SHOWN_ACTORS, Notification, for_event, group, group_key, needs


def ev(etype, actor, data, event_id=1):
    return Event(event_id=event_id, type=etype, version=1, occurred_at=0, actor=actor, data=data)


def test_a_reply_that_mentions_notifies_each_recipient_once_and_never_the_actor():
    e = ev("tweet.created", 5, {"tweet_id": "100", "text": "@Ann @bob @Me hi", "reply_to": "50"})
    tweets, handles = needs([e])
    assert tweets == {50} and handles == {"ann", "bob", "me"}
    out = for_event(e, {50: 1}, {"ann": 1, "bob": 2, "me": 5})
    assert [(n.user_id, n.kind, n.tweet_id) for n in out] == [(1, "reply", 100), (2, "mention", 100)]


def test_likes_retweets_and_follows():
    like = for_event(ev("like.created", 7, {"tweet_id": "9"}), {9: 3}, {})
    assert like == [Notification(3, 1, "like", 7, 9, "like:9")]
    assert for_event(ev("like.created", 3, {"tweet_id": "9"}), {9: 3}, {}) == [], "own tweet"
    assert for_event(ev("follow.created", 7, {"followee_id": "3"}), {}, {})[0].group_key == "follow"
    assert for_event(ev("like.removed", 7, {"tweet_id": "9"}), {9: 3}, {}) == []


def test_grouping_keeps_order_counts_distinct_actors_and_unread():
    rows = [  # newest first
        Notification(1, 60, "like", 4, 9, group_key("like", 9)),
        Notification(1, 50, "mention", 5, 20, group_key("mention", 20)),
        Notification(1, 40, "like", 6, 9, group_key("like", 9)),
        Notification(1, 30, "like", 4, 9, group_key("like", 9)),   # liked again after an unlike
        Notification(1, 20, "mention", 5, 21, group_key("mention", 21)),
    ]
    groups = group(rows, read_up_to=45)
    assert [(g.kind, g.latest_id) for g in groups] == [("like", 60), ("mention", 50), ("mention", 20)]
    assert groups[0].actors == [4, 6] and groups[0].unread and groups[0].others == 0
    assert groups[1].unread and not groups[2].unread
    hidden = group(rows, 0, visible=lambda n: n.actor_id != 4)
    assert [(g.kind, g.latest_id, g.actors) for g in hidden] == [("mention", 50, [5]), ("like", 40, [6]),
                                                                 ("mention", 20, [5])]


@given(st.lists(st.tuples(st.sampled_from(["like", "retweet", "follow", "mention"]), st.integers(1, 30),
                          st.integers(1, 3)), max_size=80))
def test_groups_partition_the_visible_rows(spec):
    rows = [Notification(1, 1000 - i, kind, actor, None if kind == "follow" else tweet, group_key(kind, tweet))
            for i, (kind, actor, tweet) in enumerate(spec)]
    groups = group(rows, read_up_to=0)
    ids = sorted(i for g in groups for i in g.notification_ids)
    assert ids == sorted(n.notification_id for n in rows), "every row in exactly one group"
    assert [g.latest_id for g in groups] == sorted((g.latest_id for g in groups), reverse=True)
    for g in groups:
        assert len(set(g.actors)) == len(g.actors) and g.others == max(0, len(g.actors) - SHOWN_ACTORS)
