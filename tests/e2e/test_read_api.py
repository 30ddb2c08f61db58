"""Read endpoints through the running pipeline: lookups, user timelines, conversations, profiles and
the graph, and a protected account's tweets never reaching a non-follower."""

import secrets

from api.auth import mint_token
from tests.e2e.helpers import event, eventually, new_id


async def get(http, settings, uid, path, **params):
    async with http.get(path, params=params, headers={"Authorization": f"Bearer {mint_token(settings, uid)}"}) as r:
        return r.status, await r.json()


async def make_users(producer, cass, *protected):
    ids = [new_id() for _ in protected]
    for uid, prot in zip(ids, protected):
        await producer.send_event(event("user.registered", uid, {
            "handle": f"r{secrets.token_hex(5)}", "display_name": "R", "protected": prot}))
    await eventually(lambda: cass.existing_users(ids), lambda f: len(f) == len(ids), what="users")
    return ids


async def tweet(producer, author, text, **data):
    tid = new_id()
    await producer.send_event(event("tweet.created", author, {"tweet_id": str(tid), "text": text,
                                                              **{k: str(v) for k, v in data.items()}}))
    return tid


async def test_protected_account_is_visible_only_to_itself_and_followers(running, producer, http, cass):
    private, follower, stranger = await make_users(producer, cass, True, False, False)
    await producer.send_event(event("follow.created", follower, {"followee_id": str(private)}))
    await eventually(lambda: cass.following(follower), lambda f: private in f, what="follow")
    secret = await tweet(producer, private, "for followers only")
    await eventually(lambda: cass.get_tweets([secret]), lambda t: secret in t, what="tweet stored")

    for uid, allowed in ((private, True), (follower, True), (stranger, False)):
        status, body = await get(http, running, uid, f"/v1/tweets/{secret}")
        assert status == (200 if allowed else 404)
        assert ("for followers only" in str(body)) is allowed
        status, body = await get(http, running, uid, f"/v1/users/{private}/tweets")
        assert status == (200 if allowed else 404) and ("for followers only" in str(body)) is allowed
        status, body = await get(http, running, uid, "/v1/timelines/home")
        assert ("for followers only" in str(body)) is (uid != stranger)

    # A public reply to the protected tweet is listed only for those who may see the root.
    public_reply = await tweet(producer, follower, "a public reply", reply_to=secret)
    await eventually(lambda: cass.replies(secret, None, 10), lambda r: public_reply in r, what="reply")
    status, body = await get(http, running, follower, f"/v1/tweets/{secret}/replies")
    assert status == 200 and [t["id"] for t in body["data"]] == [public_reply]
    status, body = await get(http, running, stranger, f"/v1/tweets/{secret}/replies")
    assert status == 404 and "for followers only" not in str(body)

    # The profile itself (no tweets) stays visible, with exact counts.
    status, body = await get(http, running, stranger, f"/v1/users/{private}")
    assert status == 200 and body["data"]["protected"] is True and body["data"]["followers_count"] == 1
    status, _ = await get(http, running, stranger, f"/v1/users/{private}/followers")
    assert status == 404


async def test_user_timeline_conversation_lookup_and_delete(running, producer, http, cass):
    author, reader = await make_users(producer, cass, False, False)
    root = await tweet(producer, author, "root")
    await eventually(lambda: cass.get_tweets([root]), lambda t: root in t, what="root")
    replies = [await tweet(producer, reader, f"reply {i}", reply_to=root) for i in range(3)]
    own_reply = await tweet(producer, author, "author replies", reply_to=replies[0])
    later = await tweet(producer, author, "later")
    await eventually(lambda: cass.recent_tweet_ids(author, 10), lambda ids: later in ids and own_reply in ids,
                     what="author's tweets")
    await eventually(lambda: cass.replies(root, None, 10), lambda r: len(r) == 3, what="replies")

    status, body = await get(http, running, reader, f"/v1/users/{author}/tweets")
    assert status == 200 and [t["id"] for t in body["data"]] == [later, root], "replies left out by default"
    status, body = await get(http, running, reader, f"/v1/users/{author}/tweets", include_replies="true")
    assert [t["id"] for t in body["data"]] == [later, own_reply, root]

    status, page1 = await get(http, running, reader, f"/v1/tweets/{root}/replies", limit="2")
    status, page2 = await get(http, running, reader, f"/v1/tweets/{root}/replies", limit="2",
                              after=page1["meta"]["next_after"])
    assert [t["id"] for t in page1["data"] + page2["data"]] == replies, "oldest first, cursor pagination"

    await producer.send_event(event("tweet.deleted", reader, {"tweet_id": str(replies[1])}))
    await eventually(lambda: get(http, running, reader, f"/v1/tweets/{replies[1]}"), lambda r: r[0] == 404,
                     what="deleted tweet gone from lookup")
    status, body = await get(http, running, reader, f"/v1/tweets/{root}/replies")
    assert [t["id"] for t in body["data"]] == [replies[0], replies[2]]


async def test_graph_lists_counts_and_relationship(running, producer, http, cass):
    star, *fans = await make_users(producer, cass, False, False, False, False, False)
    for fan in fans:
        await producer.send_event(event("follow.created", fan, {"followee_id": str(star)}))
    await producer.send_event(event("follow.created", star, {"followee_id": str(fans[0])}))
    await producer.send_event(event("mute.created", fans[1], {"muted_id": str(star)}))
    await eventually(lambda: cass.follower_counts([star]), lambda c: star in c and c[star].followers == 4,
                     what="count")
    # The star's own follow and the mute are keyed by their targets: other partitions, own pace.
    await eventually(lambda: cass.following(star), lambda f: fans[0] in f, what="the star's follow")
    await eventually(lambda: cass.relationship(fans[1], star), lambda r: r["muting"], what="the mute")
    status, body = await get(http, running, fans[0], f"/v1/users/{star}")
    assert body["data"]["followers_count"] == 4 and body["data"]["following_count"] == 1

    seen, after = [], None
    while True:
        params = {"limit": "3", **({"after": after} if after else {})}
        status, page = await get(http, running, fans[0], f"/v1/users/{star}/followers", **params)
        seen += [u["id"] for u in page["data"]]
        after = page["meta"].get("next_after")
        if not after:
            break
    assert sorted(seen) == sorted(fans) and seen == sorted(seen)

    status, rel = await get(http, running, fans[0], f"/v1/users/{star}/relationship")
    assert rel["data"] | {} == {"user_id": str(star), "following": True, "followed_by": True,
                                "blocking": False, "blocked_by": False, "muting": False}
    status, rel = await get(http, running, fans[1], f"/v1/users/{star}/relationship")
    assert rel["data"]["muting"] is True and rel["data"]["followed_by"] is False


async def test_retweets_are_timeline_entries(running, producer, http, cass):
    reader, retweeter, author = await make_users(producer, cass, False, False, False)
    await producer.send_event(event("follow.created", reader, {"followee_id": str(retweeter)}))
    await eventually(lambda: cass.following(reader), lambda f: retweeter in f, what="follow")
    await get(http, running, reader, "/v1/timelines/home")  # built
    original = await tweet(producer, author, "worth sharing")
    await eventually(lambda: cass.get_tweets([original]), lambda t: original in t, what="original")

    entry = new_id()
    await producer.send_event(event("retweet.created", retweeter, {"tweet_id": str(original), "retweet_id": str(entry)}))

    async def home():
        return (await get(http, running, reader, "/v1/timelines/home"))[1]

    body = await eventually(home, lambda b: [t["id"] for t in b["data"]] == [entry], what="retweet in home")
    item = body["data"][0]
    assert item["author_id"] == str(retweeter) and item["retweeted_tweet"]["id"] == original
    assert item["retweeted_tweet"]["text"] == "worth sharing"
    _, mine = await get(http, running, reader, f"/v1/users/{retweeter}/tweets")
    assert [t["id"] for t in mine["data"]] == [entry]
    _, mine = await get(http, running, reader, f"/v1/users/{retweeter}/tweets", include_retweets="false")
    assert mine["data"] == []

    await producer.send_event(event("retweet.removed", retweeter, {"tweet_id": str(original)}))
    await eventually(home, lambda b: b["data"] == [], what="undone retweet gone from home")
    # Lookups may serve an API process's local copy for up to 2 s (adapters/hot_cache.py).
    await eventually(lambda: get(http, running, reader, f"/v1/tweets/{entry}"), lambda r: r[0] == 404,
                     what="undone retweet gone from lookup")

    # A retweet whose original is deleted disappears with it.
    again = new_id()
    await producer.send_event(event("retweet.created", retweeter, {"tweet_id": str(original), "retweet_id": str(again)}))
    await eventually(home, lambda b: [t["id"] for t in b["data"]] == [again], what="retweeted again")
    await producer.send_event(event("tweet.deleted", author, {"tweet_id": str(original)}))
    await eventually(home, lambda b: b["data"] == [], what="gone with its original")


async def test_cached_views_follow_profile_and_graph_changes(running, producer, http, cass):
    """Users, viewers and tweets are cached in Redis after the first read (adapters/hot_cache.py);
    a profile going protected, a block, an unblock and a delete still take effect on later reads."""
    author, stranger = await make_users(producer, cass, False, False)
    tid = await tweet(producer, author, "public for now")
    await eventually(lambda: cass.get_tweets([tid]), lambda t: tid in t, what="tweet stored")
    status, _ = await get(http, running, stranger, f"/v1/tweets/{tid}")
    assert status == 200  # tweet, author and the stranger's viewer are now cached

    await producer.send_event(event("user.updated", author, {"protected": True}))
    await eventually(lambda: get(http, running, stranger, f"/v1/tweets/{tid}"), lambda r: r[0] == 404,
                     what="protected author's tweet hidden from a stranger")
    status, body = await get(http, running, stranger, f"/v1/users/{author}")
    assert status == 200 and body["data"]["protected"] is True

    await producer.send_event(event("user.updated", author, {"protected": False}))
    await eventually(lambda: get(http, running, stranger, f"/v1/tweets/{tid}"), lambda r: r[0] == 200,
                     what="public again")
    await producer.send_event(event("block.created", author, {"blocked_id": str(stranger)}))
    await eventually(lambda: get(http, running, stranger, f"/v1/tweets/{tid}"), lambda r: r[0] == 404,
                     what="blocked reader")
    await producer.send_event(event("block.removed", author, {"blocked_id": str(stranger)}))
    await eventually(lambda: get(http, running, stranger, f"/v1/tweets/{tid}"), lambda r: r[0] == 200,
                     what="unblocked reader")
    await producer.send_event(event("tweet.deleted", author, {"tweet_id": str(tid)}))
    await eventually(lambda: get(http, running, stranger, f"/v1/tweets/{tid}"), lambda r: r[0] == 404,
                     what="deleted tweet")
