"""`starling demo`: a small workload through the real path, then what to try.

Five users follow each other and post; the demo produces the events with confluent-kafka, waits
(bounded) until the follows are stored and alice's home timeline shows every tweet through the
API, and prints a curl for it. Users have fixed ids, so re-running re-registers the same users
(idempotent) and adds a fresh round of tweets.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from adapters.cassandra_store import CassandraStore
from adapters.kafka import produce_sync
from api.auth import mint_token
from pipeline.events import Event
from pipeline.settings import Settings
from pipeline.snowflake import Snowflake
from pipeline.topology import load_topology

# Worker id reserved for the demo, and a fixed instant, so the demo users' ids never change.
DEMO_WORKER = 1023
DEMO_USERS_MS = 1_717_200_000_000  # 2024-06-01
HANDLES = ["alice", "bob", "carol", "dave", "erin"]
FOLLOWS = {"alice": ["bob", "carol", "dave"], "bob": ["alice", "carol"], "carol": ["alice"],
           "dave": ["alice", "bob", "erin"], "erin": ["dave"]}
# Moderation labels this one sensitive (delivered with the label); an account younger than a day
# would have it held for review instead (docs/MODERATION.md).
SENSITIVE = "Yesterday's deploy was total crap, today's is fine."
TWEETS = {
    "alice": ["Hello from the demo! #starling"],
    "bob": ["Morning! Coffee first, then #kafka partitions.", "Who else is at #pycon this year?"],
    "carol": ["Cassandra 5 on JDK 17, no Docker in sight. #cassandra"],
    "dave": ["Shipping the hybrid fan-out today @alice", "Celebrities get pulled, not pushed.",
             SENSITIVE],
    "erin": ["erin is not followed by alice: this one must not show up in her timeline"],
}
WAIT_S = 90


def demo_user_ids() -> dict[str, int]:
    sf = Snowflake(DEMO_WORKER)
    return {h: sf.next_id(DEMO_USERS_MS) for h in HANDLES}


def run(settings: Settings) -> int:
    topology = load_topology(settings.topology_path)
    ids = demo_user_ids()
    sf = Snowflake(DEMO_WORKER - 1)  # its own worker id: the API's processes use 0 and up
    now = int(time.time() * 1000)

    def event(etype: str, actor: str, data: dict[str, Any], at: int = now) -> Event:
        return Event(event_id=sf.next_id(), type=etype, version=1, occurred_at=at,
                     actor=ids[actor], data=data)

    # Registered at the users' fixed instant: established accounts (moderation's new-account signal
    # stays quiet), the same on every run.
    setup = [event("user.registered", h, {"handle": h, "display_name": h.title(), "bio": f"I am {h}."},
                   at=DEMO_USERS_MS) for h in HANDLES]
    setup += [event("follow.created", h, {"followee_id": str(ids[f])}) for h, fs in FOLLOWS.items() for f in fs]
    produce_sync(settings, topology, setup)
    print(f"demo: produced {len(setup)} user and follow events", file=sys.stderr)
    asyncio.run(_wait_for_follows(settings, ids))

    # Each run's tweets are new text (the time of day): a second run's copies would be held as
    # repeated text by moderation's spam signals, as they should be.
    stamp = time.strftime("%H:%M:%S")
    tweets = [event("tweet.created", h, {"tweet_id": str(sf.next_id()), "text": f"{text} [{stamp}]"})
              for h, texts in TWEETS.items() for text in texts]
    produce_sync(settings, topology, tweets)
    print(f"demo: produced {len(tweets)} tweets", file=sys.stderr)

    hello = next(t for t in tweets if t.actor == ids["alice"])
    likes = [event("like.created", h, {"tweet_id": hello.data["tweet_id"]}) for h in ("bob", "carol", "dave")]
    produce_sync(settings, topology, likes)
    print("demo: bob, carol and dave like alice's tweet", file=sys.stderr)

    token = mint_token(settings, ids["alice"], ttl_s=24 * 3600)
    base = f"http://{settings.api_host}:{settings.api_port}"
    url = f"{base}/v1/timelines/home"
    judged = next(t for t in tweets if t.data["text"].startswith(SENSITIVE))
    expected = {t.data["tweet_id"] for t in tweets
                if t.actor in {ids[f] for f in FOLLOWS["alice"]} and t is not judged}
    seen = _wait_for_timeline(url, token, expected)
    print(f"demo: alice's home timeline shows all {len(expected)} tweets from the accounts she follows "
          f"({len(seen)} entries in total)", file=sys.stderr)
    verdict = _wait_for(f"{base}/v1/moderation/tweets/{judged.data['tweet_id']}/verdict",
                        mint_token(settings, ids["dave"]), lambda body: "data" in body)["data"]
    print(f"demo: moderation judged dave's \"{SENSITIVE}\": {verdict['action']} "
          f"({', '.join(verdict['reasons'])})", file=sys.stderr)
    likers = _wait_for(f"{base}/v1/notifications", token,
                       lambda body: next((g["actor_count"] for g in body["data"] if g["kind"] == "like"), 0) >= 3)
    print(f"demo: alice's notifications: {', '.join(sorted({g['kind'] for g in likers['data']}))} "
          f"(the like group: 3 accounts)", file=sys.stderr)
    print(f"""
Starling is running.
  API:             http://{settings.api_host}:{settings.api_port}
  alice's id:      {ids['alice']}
  Try:             curl -s -H "Authorization: Bearer {token}" {url}
  Notifications:   curl -s -H "Authorization: Bearer {token}" {base}/v1/notifications
  Verdicts:        kcat -C -b {settings.kafka_bootstrap} -t {settings.topic("verdicts")} -o beginning -e
  Trends:          curl -s -H "Authorization: Bearer {token}" "{base}/v1/trends?window=5m"
                   (empty while warming up: a window's length plus 10 minutes after the worker starts)
  Another user:    TOKEN=$(.venv/bin/starling token {ids['bob']})   # DEVELOPMENT tokens only
  Stack status:    .venv/bin/starling stack status
  Stop everything: .venv/bin/starling stack down
""")
    return 0


async def _wait_for_follows(settings: Settings, ids: dict[str, int]) -> None:
    store = await CassandraStore.open(settings)
    try:
        deadline = time.monotonic() + WAIT_S
        while True:
            missing = [h for h, fs in FOLLOWS.items()
                       if set(await store.following(ids[h])) < {ids[f] for f in fs}]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"demo: follows of {missing} not stored after {WAIT_S}s; "
                                 "see `starling stack logs worker`")
            await asyncio.sleep(0.2)
    finally:
        await store.close()


def _wait_for(url: str, token: str, done: Any) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        body: dict[str, Any] = {}
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:
            if exc.code != 404:  # 404: not there yet (a verdict being written)
                raise
        if done(body):
            return body
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: {url} not as expected after {WAIT_S}s; see `starling stack logs worker`")
        time.sleep(1.0)  # polling stays well inside the per-user read limits


def _wait_for_timeline(url: str, token: str, expected: set[str]) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + WAIT_S
    while True:
        req = urllib.request.Request(f"{url}?limit=100", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = json.load(resp)
        seen = {t["id_str"]: t for t in body["data"]}
        if expected <= seen.keys():
            return seen
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: {len(expected - seen.keys())} tweets missing from the home timeline "
                             f"after {WAIT_S}s; see `starling stack logs worker`")
        time.sleep(1.0)  # polling stays well inside the per-user read limits
