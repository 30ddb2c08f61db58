"""Decoding an event record (pipeline/events.py): parse, envelope and data schemas, semantics.

Every agent decodes every record it reads, so this is a floor under each agent's cost per event.
Measured in one process, in the same run: the reference validator alone (jsonschema, the
pre-change path, `Contracts(screen=False)`) against the fast screen (jsonschema-rs) that
answers for valid records. Invalid records take the reference path either way (to explain
themselves), so they are not timed here.

    .venv/bin/python -m bench.contracts [--records 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from bench.common import calibration_us, progress, write_results
from pipeline.errors import InvalidEvent
from pipeline.events import Contracts, Event, encode

MAX = 65536
SAMPLES: dict[str, dict[str, Any]] = {
    "hashtag.observed": {"tag": "worldcup", "tweet_id": "1790000000000000001", "region": "FR", "present": True},
    "tweet.created": {"tweet_id": "1790000000000000002", "reply_to": "1790000000000000001",
                      "text": "Quelle finale ! #WorldCup @alice https://example.com/match"},
    "like.created": {"tweet_id": "1790000000000000001"},
    "follow.created": {"followee_id": "42"},
}


def rate(contracts: Contracts, records: list[bytes], allowed: frozenset[str]) -> float:
    """Records decoded per second, uncached (`_decode`: the cache only helps a second reader)."""
    t = time.perf_counter()
    for raw in records:
        contracts._decode(raw, allowed, MAX)
    return len(records) / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=20_000)
    args = p.parse_args(argv)
    fast, slow = Contracts(), Contracts(screen=False)
    results: dict[str, Any] = {"calibration_us": calibration_us(), "records": args.records, "types": {}}
    for event_type, data in SAMPLES.items():
        records = [encode(Event(1790000000000100000 + i, event_type, 1, 1_790_000_000_000 + i, 7, data))
                   for i in range(args.records)]
        allowed = frozenset([event_type])
        for c in (fast, slow):
            try:
                c._decode(records[0], allowed, MAX)
            except InvalidEvent as exc:  # the samples must be valid, or this measures the error path
                raise SystemExit(f"{event_type}: sample is invalid: {exc}") from None
        progress(f"{event_type}: decoding {args.records:,} records each way")
        ref, new = rate(slow, records, allowed), rate(fast, records, allowed)
        results["types"][event_type] = {"reference_per_s": round(ref), "fast_per_s": round(new),
                                        "reference_us": round(1e6 / ref, 1), "fast_us": round(1e6 / new, 1),
                                        "speedup": round(new / ref, 1)}
    print(f"\n{'event type':<18} {'jsonschema':>14} {'jsonschema-rs':>14} {'speed-up':>9}")
    for event_type, r in results["types"].items():
        print(f"{event_type:<18} {r['reference_us']:>11} us {r['fast_us']:>11} us {r['speedup']:>8}x")
    write_results("contracts", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
