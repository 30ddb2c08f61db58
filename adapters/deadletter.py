"""Reading the dead-letter topic: counts by reason and source, with samples (`starling dlq`)."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from pipeline.settings import Settings


@dataclass
class Report:
    total: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    by_source: Counter[str] = field(default_factory=Counter)
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "by_reason": dict(self.by_reason.most_common()),
                "by_source_topic": dict(self.by_source.most_common()), "samples": self.samples}


def inspect(settings: Settings, samples_per_reason: int = 3, reason: str | None = None,
            timeout_s: float = 30) -> Report:
    """Read the whole topic as it is now (no consumer group is committed)."""
    topic = settings.topic("deadletter")
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "enable.auto.commit": False,
                         "group.id": f"starling-dlq-inspect-{secrets.token_hex(4)}"})
    report = Report()
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions}
        pending = {p for p, (lo, hi) in ends.items() if hi > lo}
        consumer.assign([TopicPartition(topic, p, ends[p][0]) for p in pending])
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            if msg.offset() >= ends[msg.partition()][1] - 1:
                pending.discard(msg.partition())
            headers = {k: (v or b"").decode(errors="replace") for k, v in (msg.headers() or [])}
            why = headers.get("reason", "(none)")
            if reason is not None and why != reason:
                continue
            report.total += 1
            report.by_reason[why] += 1
            report.by_source[headers.get("source_topic", "(unknown)")] += 1
            bucket = report.samples.setdefault(why, [])
            if len(bucket) < samples_per_reason:
                value = msg.value() or b""
                bucket.append({
                    "detail": headers.get("detail", ""),
                    "source": f"{headers.get('source_topic')}[{headers.get('source_partition')}]"
                              f"@{headers.get('source_offset')}",
                    "key": (msg.key() or b"").decode(errors="replace"),
                    "value": value[:300].decode(errors="replace") + ("..." if len(value) > 300 else ""),
                    "failed_at": headers.get("failed_at"),
                })
    finally:
        consumer.close()
    return report
