"""Engagement counts, who-liked lists, private likes and notifications, through the running pipeline."""

import secrets

from api.auth import mint_token
from tests.e2e.helpers import event, eventually, new_id


async def get(http, settings, uid, path, **params):
    async with http.get(path, params=params, headers={"Authorization": f"Bearer {mint_token(settings, uid)}"}) as r:
        return r.status, await r.json()


async def post(http, settings, uid, path, body=None):
    headers = {"Authorization": f"Bearer {mint_token(settings, uid)}"}
    async with http.post(path, json=body, headers=headers) if body is not None else http.post(path, headers=headers) as r:
        return r.status, await r.json()


async def make_users(producer, cass, n):
    ids, handles = [new_id() for _ in range(n)], [f"e{secrets.token_hex(5)}" for _ in range(n)]
    for uid, handle in zip(ids, handles):
        await producer.send_event(event("user.registered", uid, {"handle": handle, "display_name": "E"}))
    await eventually(lambda: cass.existing_users(ids), lambda f: len(f) == len(ids), what="users")
    return ids, handles


async def tweet(producer, author, text, **data):
    tid = new_id()
    await producer.send_event(event("tweet.created", author, {"tweet_id": str(tid), "text": text,
                                                              **{k: str(v) for k, v in data.items()}}))
    return tid


def metrics(body):
    return body["data"]["public_metrics"] if "data" in body else None


async def test_counts_lists_and_private_likes(running, producer, http, cass):
    (author, b, c, d, e), _ = await make_users(producer, cass, 5)
    tid = await tweet(producer, author, "count me")
    await eventually(lambda: cass.get_tweets([tid]), lambda t: tid in t, what="tweet stored")

    now = event("like.created", b, {"tweet_id": str(tid)}).occurred_at
    like_c = event("like.created", c, {"tweet_id": str(tid)})
    for ev in (
        event("like.created", b, {"tweet_id": str(tid)}),
        like_c, like_c,                                                     # a duplicate delivery
        event("like.created", d, {"tweet_id": str(tid)}, occurred_at=now + 1),
        event("like.removed", d, {"tweet_id": str(tid)}, occurred_at=now + 2),
        # e's unlike (later) arrives before e's like (earlier): e ends not liking it
        event("like.removed", e, {"tweet_id": str(tid)}, occurred_at=now + 10),
        event("like.created", e, {"tweet_id": str(tid)}, occurred_at=now + 5),
        event("retweet.created", d, {"tweet_id": str(tid), "retweet_id": str(new_id())}),
    ):
        await producer.send_event(ev)
    reply = await tweet(producer, c, "a reply", reply_to=tid)
    await tweet(producer, b, "a quote", quote_of=tid)

    want = {"like_count": 2, "retweet_count": 1, "reply_count": 1, "quote_count": 1}
    await eventually(lambda: get(http, running, e, f"/v1/tweets/{tid}"), lambda r: metrics(r[1]) == want,
                     what="exact counts on the hydrated tweet")
    counts = (await cass.engagement_counts([tid]))[tid]
    assert {k: counts.get(k) for k in ("likes", "retweets", "replies", "quotes")} == \
        {"likes": 2, "retweets": 1, "replies": 1, "quotes": 1}, "Cassandra holds the same absolute counts"

    status, body = await get(http, running, e, f"/v1/tweets/{tid}/liking_users")
    assert status == 200 and [u["id"] for u in body["data"]] == sorted([b, c])
    status, body = await get(http, running, e, f"/v1/tweets/{tid}/retweeted_by")
    assert [u["id"] for u in body["data"]] == [d]

    status, body = await get(http, running, b, f"/v1/users/{b}/likes")
    assert status == 200 and [t["id"] for t in body["data"]] == [tid]
    status, body = await get(http, running, c, f"/v1/users/{b}/likes")
    assert status == 403 and body["error"]["field"] == "user_id", "likes are private"

    await producer.send_event(event("tweet.deleted", c, {"tweet_id": str(reply)}))
    await eventually(lambda: get(http, running, e, f"/v1/tweets/{tid}"),
                     lambda r: metrics(r[1]) == {**want, "reply_count": 0}, what="a deleted reply uncounted")


async def test_notifications_grouped_filtered_and_marked_read(running, producer, http, cass):
    (author, b, c, d, blocked, stranger), handles = await make_users(producer, cass, 6)
    await producer.send_event(event("block.created", author, {"blocked_id": str(blocked)}))
    await eventually(lambda: cass.relationship(author, blocked), lambda r: r["blocking"], what="block")
    tid = await tweet(producer, author, "notify me")
    await eventually(lambda: cass.get_tweets([tid]), lambda t: tid in t, what="tweet stored")

    for liker in (b, c, d):
        await producer.send_event(event("like.created", liker, {"tweet_id": str(tid)}))
    await producer.send_event(event("follow.created", b, {"followee_id": str(author)}))
    mention = await tweet(producer, c, f"hello @{handles[0].upper()}")   # handles match case-insensitively
    await tweet(producer, blocked, f"hey @{handles[0]} it's me")         # from a blocked account: nothing
    await tweet(producer, stranger, "a reply", reply_to=tid)
    await producer.send_event(event("like.created", blocked, {"tweet_id": str(tid)}))  # counted, not notified

    async def page():
        return await get(http, running, author, "/v1/notifications")

    def complete(r):
        # The three likes can land in more than one batch: the like group can show before all
        # three are in it, so it is waited for with at least three actors (a fourth, the blocked
        # account's, fails the assertion below).
        kinds = sorted(g["kind"] for g in r[1]["data"])
        likes = [g for g in r[1]["data"] if g["kind"] == "like"]
        return kinds == ["follow", "like", "mention", "reply"] and likes[0]["actor_count"] >= 3

    status, body = await eventually(page, complete, what="grouped notifications")
    groups = {g["kind"]: g for g in body["data"]}
    like = groups["like"]
    assert like["actor_count"] == 3 and like["others"] == 0 and like["unread"] is True
    assert {a["id"] for a in like["actors"]} == {b, c, d} and like["tweet"]["id"] == tid
    assert groups["mention"]["tweet"]["id"] == mention and groups["mention"]["actors"][0]["id"] == c
    assert groups["follow"]["actors"][0]["id"] == b
    assert "it's me" not in str(body), "nothing from a blocked account"
    ids = [int(g["id_str"]) for g in body["data"]]
    assert ids == sorted(ids, reverse=True), "newest group first"

    status, body = await get(http, running, author, "/v1/notifications/unread_count")
    assert status == 200 and body["data"]["unread_groups"] == 4 and body["data"]["unread"] == 6

    status, body = await post(http, running, author, "/v1/notifications/read", {"up_to": "1"})
    assert status == 200  # an older mark than none: accepted, no effect on what is unread
    status, body = await post(http, running, author, "/v1/notifications/read")
    assert status == 200 and int(body["data"]["read_up_to"]) == max(ids)
    status, body = await get(http, running, author, "/v1/notifications/unread_count")
    assert body["data"] == {"unread": 0, "unread_groups": 0, "capped": False}
    status, body = await post(http, running, author, "/v1/notifications/read", {"up_to": "12"})
    assert int(body["data"]["read_up_to"]) == max(ids), "a mark never moves back"
    status, body = await post(http, running, author, "/v1/notifications/read", {"up_to": 12})
    assert status == 400 and body["error"]["field"] == "up_to"

    # A block after the fact hides that account's earlier notifications too.
    await producer.send_event(event("block.created", author, {"blocked_id": str(c)}))
    _, body = await eventually(page, lambda r: all(g["kind"] != "mention" for g in r[1]["data"]),
                               what="blocked account's mention hidden")
    like = next(g for g in body["data"] if g["kind"] == "like")
    assert {a["id"] for a in like["actors"]} == {b, d}
