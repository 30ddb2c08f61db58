"""faust's aiokafka transport with a short fetch wait: records are not held up behind an idle fetch.

aiokafka sends one fetch request at a time per broker, and leaves out of it the partitions whose
fetched records the application has not taken yet. When the worker's event loop is busy for a
few hundred milliseconds (a batch's CPU work), every busy partition can end up in that state at
once; the next request then names only idle partitions (the retry topic, the graph's topics when
nobody follows anyone) and the broker holds it for the whole fetch_max_wait, which faust fixes at
1,500 ms. Until it comes back no busy partition is fetched again: records waited 1.3 s at the
median before the worker saw them (bench/consume_latency.py; with 100 ms, 0.1 s).

A short wait bounds that stall; an idle consumer then asks the broker ten times a second
instead of once every 1.5 s, a cost the broker does not notice. The wait is a tunable in
topology.yaml (tunables.fetch_max_wait_ms).

The worker consumer also assigns partitions with faust's co-partitioning assignor, which faust
itself only uses for an app with tables: partition n of every topic of n's partition count goes to
one worker. aiokafka's round robin, faust's choice otherwise, deals topic-partitions out in name
order, so a topic with an odd partition count (retry: 3) between two others shifted the later
ones: with two workers, the worker judging an author's tweets (ingest.tweets) was not the one
fanning them out (tweets.moderated), and each kept its caches (follower lists, author
histories) for the other's authors.
"""

from __future__ import annotations

from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from yarl import URL

# faust's own value (faust/transport/drivers/aiokafka.py), the baseline bench/consume_latency.py measures.
FAUST_FETCH_MAX_WAIT_MS = 1500


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Read by AIOKafkaConsumer.start() when it builds its Fetcher and its group coordinator
        # (aiokafka 0.14).
        consumer._fetch_max_wait_ms = transport.fetch_max_wait_ms
        self._assignor = self.app.assignor
        consumer._partition_assignment_strategy = [self.app.assignor]
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    """faust's aiokafka transport whose worker consumer waits at most `fetch_max_wait_ms` per fetch."""

    Consumer = _Consumer

    def __init__(self, url: list[URL], app: faust.App, fetch_max_wait_ms: int, **kwargs: Any) -> None:
        if fetch_max_wait_ms <= 0:
            raise ValueError(f"fetch_max_wait_ms must be positive, not {fetch_max_wait_ms}")
        super().__init__(url, app, **kwargs)
        self.fetch_max_wait_ms = fetch_max_wait_ms


def use_short_fetch_wait(app: faust.App, fetch_max_wait_ms: int) -> None:
    """Makes `app` consume through Transport (before the app starts: faust builds its consumer then)."""
    app.transport = Transport(app.conf.broker_consumer, app, fetch_max_wait_ms)
