"""Reading the dead-letter topic: counts by reason and source, with samples (`starling dlq`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from adapters.kafka import read_to_end
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
    report = Report()
    for msg in read_to_end(settings.kafka_bootstrap, settings.topic("deadletter"), timeout_s, strict=False):
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
    return report
