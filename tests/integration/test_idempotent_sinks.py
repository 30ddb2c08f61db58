"""Cassandra and Redis writes are idempotent and ordered by event time, as replays require."""

import secrets

from adapters import cassandra_store, cql
from adapters.redis_store import TimelineCache, timeline_key
from pipeline.model import Tweet
from pipeline.moderation import Action, stored_scores
from pipeline.snowflake import STARLING_EPOCH_MS, Snowflake
from pipeline.verdicts import MODEL, MODERATOR, VerdictRecord

T = 1_800_000_000_000


def _uid():
    return 10**15 + secrets.randbelow(10**9)


async def test_replayed_follow_and_unfollow_end_in_the_latest_state(cass):
    a, b = _uid(), _uid()
    await cass.apply_follows([(a, b, True, T), (a, b, False, T + 10)])
    await cass.apply_follows([(a, b, True, T)])  # the older follow, replayed after the unfollow
    assert b not in await cass.following(a)
    assert a not in [f async for p in cass.follower_pages(b, 100) for f in p]
    await cass.apply_follows([(a, b, True, T + 20)])  # a newer follow wins
    assert b in await cass.following(a)


async def test_edges_written_one_table_at_a_time_end_like_both_at_once(cass):
    """A bulk load writes each direction in its own pass (bench/fanout.py); a pass writes only
    its table, and the two passes give what one call gives."""
    a, b, c = _uid(), _uid(), _uid()
    await cass.apply_edges("follow", [(a, b, True, T), (c, b, True, T)], tables=("followers_by_user",))
    assert sorted([f async for p in cass.follower_pages(b, 100) for f in p]) == sorted([a, c])
    assert await cass.following(a) == [] and await cass.following(c) == []
    await cass.apply_edges("follow", [(a, b, True, T), (c, b, True, T)], tables=("following_by_user",))
    assert await cass.following(a) == [b] and await cass.following(c) == [b]
    # A mixed batch (an insert and a later delete of another edge), both tables at once.
    await cass.apply_edges("follow", [(a, c, True, T), (c, b, False, T + 10)])
    assert sorted(await cass.following(a)) == sorted([b, c]) and await cass.following(c) == []
    assert [f async for p in cass.follower_pages(b, 100) for f in p] == [a]


async def test_followers_of_several_accounts_in_one_paged_query_match_one_by_one(cass):
    authors = [_uid() for _ in range(4)]
    followers = {authors[0]: [_uid() for _ in range(7)], authors[1]: [_uid()], authors[2]: [_uid() for _ in range(3)],
                 authors[3]: []}
    await cass.apply_follows([(f, a, True, T) for a, fs in followers.items() for f in fs])
    for page_size in (2, 5, 100):  # pages that cut through one account's rows and across accounts
        got = await cass.followers_of(authors, page_size)
        assert got == {a: [f async for p in cass.follower_pages(a, 100) for f in p] for a in authors}
        assert {a: sorted(fs) for a, fs in got.items()} == {a: sorted(fs) for a, fs in followers.items()}
    alone = await cass.followers_of([authors[0]], 2)  # a long list is read alone, in pages
    assert sorted(alone[authors[0]]) == sorted(followers[authors[0]])
    assert await cass.followers_of([], 10) == {}


async def test_author_histories_read_together_are_each_authors_newest_rows(cass, monkeypatch):
    """Moderation reloads the histories of a batch's authors in grouped, paged queries
    (CassandraStore.moderation_history_rows); each author gets its own newest rows, at most
    `limit`, newest first, whatever the group and page cut through."""
    sf = Snowflake(5)
    counts = [7, 1, 0, 4, 12]
    authors = [_uid() for _ in counts]
    judged = []
    for author, n in zip(authors, counts):
        for i in range(n):
            at = T + 1000 * i
            t = Tweet(tweet_id=sf.next_id(at), author_id=author, text=f"h{i}", reply_to=None, quote_of=None,
                      created_at=at)
            action = Action.HIDE if i % 3 == 0 else Action.ALLOW
            judged.append((t, VerdictRecord(t.tweet_id, author, action, MODEL, at), f"fp{i}"))
    await cass.save_judged(judged)
    expected = {a: sorted(({"tweet_id": t.tweet_id, "at": t.created_at, "fingerprint": fp, "action": v.action.code}
                           for t, v, fp in judged if t.author_id == a), key=lambda r: -r["tweet_id"])[:5]
                for a in authors}
    for group, page in ((100, 5000), (2, 3), (1, 1)):
        monkeypatch.setattr(cassandra_store, "HISTORY_GROUP", group)
        monkeypatch.setattr(cassandra_store, "HISTORY_PAGE_ROWS", page)
        assert await cass.moderation_history_rows(authors, 5) == expected
    assert await cass.moderation_history_rows([], 5) == {}


async def test_saving_a_tweet_twice_stores_it_once(cass):
    author = _uid()
    t = Tweet(tweet_id=Snowflake(3).next_id(T), author_id=author, text="once", reply_to=None,
              quote_of=None, created_at=T)
    await cass.save_tweets([t])
    await cass.save_tweets([t])
    assert await cass.recent_tweet_ids(author, 10) == [t.tweet_id]
    assert (await cass.get_tweets([t.tweet_id]))[t.tweet_id] == t


async def test_tweets_saved_many_partitions_to_a_request_land_every_row(cass):
    # save_tweets batches rows of up to PARTITIONS_PER_REQUEST partitions per request: each tweet's
    # row, its author's index (three tweets an author) and the reply index of its parent.
    sf = Snowflake(4)
    authors = [_uid() for _ in range(7)]
    parent = Tweet(tweet_id=sf.next_id(T), author_id=authors[0], text="parent", reply_to=None, quote_of=None,
                   created_at=T)
    tweets = [Tweet(tweet_id=sf.next_id(T + 1 + i), author_id=authors[i % 7], text=f"t{i}",
                    reply_to=parent.tweet_id if i % 2 else None, quote_of=None, created_at=T + 1 + i)
              for i in range(21)]
    await cass.save_tweets([parent, *tweets])
    stored = await cass.get_tweets([t.tweet_id for t in tweets])
    assert [stored.get(t.tweet_id) for t in tweets] == tweets
    for a in authors:
        assert await cass.recent_tweet_ids(a, 10) == sorted(
            (t.tweet_id for t in [parent, *tweets] if t.author_id == a), reverse=True)
    assert await cass.replies(parent.tweet_id, None, 50) == [t.tweet_id for t in tweets if t.reply_to]


async def test_push_only_lands_in_built_timelines_and_replays_are_harmless(stack, redis_client):
    cache = TimelineCache(redis_client, cap=800)
    sf = Snowflake(9)
    built, unbuilt = _uid(), _uid()
    await cache.fill(built, [])
    tweets = [sf.next_id(STARLING_EPOCH_MS + 10**9 + i) for i in range(8)]
    assert await cache.push([(built, t) for t in tweets] + [(unbuilt, tweets[0])]) == 8, "8 entries landed, all in built"
    assert await redis_client.exists(timeline_key(unbuilt)) == 0, "no partial timeline created"
    pages = await cache.page(built, 5), await cache.page(built, 100)
    await cache.push([(built, t) for t in tweets])  # replay
    assert (await cache.page(built, 5), await cache.page(built, 100)) == pages, "a replay changes no page"
    assert pages[1] == sorted(tweets, reverse=True)
    assert await cache.page(unbuilt, 10) is None


async def test_cursor_pages_from_redis(stack, redis_client):
    cache = TimelineCache(redis_client, cap=800)
    sf = Snowflake(4)
    reader = _uid()
    # Several tweets per millisecond: ids, not milliseconds, order the pages.
    tweets = sorted((sf.next_id(STARLING_EPOCH_MS + 10**9 + i // 3) for i in range(30)), reverse=True)
    await cache.fill(reader, tweets)
    walked, cursor = [], None
    while True:
        got = await cache.page(reader, 7, max_id=cursor)
        if not got:
            break
        walked += got
        cursor = got[-1] - 1
    assert walked == tweets
    assert await cache.page(reader, 100, since_id=tweets[5]) == tweets[:5]


async def test_batched_push_touches_only_built_timelines(stack, redis_client, monkeypatch):
    import adapters.redis_store as rs

    cache = TimelineCache(redis_client, cap=800)
    readers = [_uid() for _ in range(7)]
    for r in readers[:4]:
        await cache.fill(r, [])
    sf = Snowflake(11)
    entries = [sf.next_id(STARLING_EPOCH_MS + 10**9 + i) for i in range(5)]
    # Several calls in one pipeline: cut by lists, and by ids (a list's ids across two calls).
    monkeypatch.setattr(rs, "KEYS_PER_CALL", 3)
    monkeypatch.setattr(rs, "IDS_PER_CALL", 4)
    monkeypatch.setattr(rs, "IDS_PER_LIST", 2)
    keys = [timeline_key(r) for r in readers]
    assert await cache.push_lists(keys, [1] * 7, [entries[0]] * 7) == 4
    assert await cache.push_lists(keys, [4] * 7, entries[1:] * 7) == 4 * 4
    assert await cache.push_lists(keys, [1] * 7, [entries[-1]] * 7) == 4, "a replay lands again"
    for r in readers[:4]:
        assert await cache.page(r, 10) == sorted(entries, reverse=True)
    for r in readers[4:]:
        assert await redis_client.exists(timeline_key(r)) == 0


async def test_push_survives_redis_forgetting_its_scripts(stack, redis_client):
    """Fan-out writes go out as pre-packed EVALSHA calls; after SCRIPT FLUSH (as after a Redis
    restart) the script is loaded again and the calls repeated, and the connection stays usable."""
    cache = TimelineCache(redis_client, cap=800)
    reader = _uid()
    await cache.fill(reader, [])
    sf = Snowflake(12)
    first, second = (sf.next_id(STARLING_EPOCH_MS + 10**9 + i) for i in range(2))
    assert await cache.push([(reader, first)]) == 1
    await redis_client.script_flush()
    assert await cache.push([(reader, second)]) == 1
    assert await cache.page(reader, 10) == [second, first]
    assert await redis_client.ping()


async def test_a_model_verdict_row_keeps_its_non_zero_scores_and_reads_back_whole(cass):
    """save_judged stores a model verdict's scores without their zeros (stored_scores); verdicts()
    returns every score, the zeros put back, and a moderator's override keeps no scores."""
    sf = Snowflake(6)
    author = _uid()
    scores = {"offensive_text": 0.25, "blocked_term": 0.0, "sensitive_term": 1.0, "blocked_domain": 0.0,
              "duplicate_text": 1.0, "burst": 2.0, "mention_stuffing": 0.0, "hashtag_stuffing": 0.0,
              "new_account": 0.0, "repeat_offender": 0.0}
    judged = []
    for i in range(2):
        t = Tweet(tweet_id=sf.next_id(T + i), author_id=author, text=f"s{i}", reply_to=None, quote_of=None,
                  created_at=T + i)
        judged.append((t, VerdictRecord(t.tweet_id, author, Action.LABEL, MODEL, T + i, ("sensitive_term",),
                                        scores), None))
    await cass.save_judged(judged)
    first, second = (t.tweet_id for t, _, _ in judged)
    stmt = await cql.prepare(cass.session, "SELECT scores FROM verdicts WHERE tweet_id = ?")
    stored = await cql.execute(cass.session, stmt, (first,))
    assert stored == [{"scores": stored_scores(scores)}]
    assert set(stored[0]["scores"]) == {"offensive_text", "sensitive_term", "duplicate_text", "burst", "new_account"}
    await cass.save_override(VerdictRecord(second, author, Action.ALLOW, MODERATOR, T + 10, moderator_id=_uid()))
    got = await cass.verdicts([first, second])
    assert got[first]["scores"] == scores
    assert (got[second]["source"], got[second]["scores"]) == (MODERATOR, {})
