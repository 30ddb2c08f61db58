"""Snowflake ids: 64-bit, time-ordered, assigned at the edge (DESIGN.md decision 7).

    63  62                       22 21         12 11          0
    +--+---------------------------+-------------+------------+
    |0 | ms since STARLING_EPOCH   |  worker id  |  sequence  |
    +--+---------------------------+-------------+------------+
          41 bits (~69 years)         10 bits       12 bits

The generator never goes backwards: if the wall clock steps back (NTP, VM migration) it keeps
issuing ids in its last millisecond, and when that millisecond's 4,096 sequence numbers run out
it borrows the next millisecond instead of waiting. Time is passed in, so tests control it.
"""

from __future__ import annotations

import time

# 2024-01-01T00:00:00Z: a recent epoch keeps ids short and their timestamps under 2^53 ms.
STARLING_EPOCH_MS = 1_704_067_200_000
WORKER_BITS = 10
SEQUENCE_BITS = 12
MAX_WORKER = (1 << WORKER_BITS) - 1
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1
TIMESTAMP_SHIFT = WORKER_BITS + SEQUENCE_BITS


def timestamp_ms(snowflake: int) -> int:
    """Epoch milliseconds at which `snowflake` was issued (exact in a Redis double score)."""
    return (snowflake >> TIMESTAMP_SHIFT) + STARLING_EPOCH_MS


def lowest_id_at(epoch_ms: int) -> int:
    """The smallest id issued at or after `epoch_ms`: a since_id/max_id bound for a time."""
    return max(0, epoch_ms - STARLING_EPOCH_MS) << TIMESTAMP_SHIFT


class Snowflake:
    """Issues unique ids for one worker id; not thread-safe (one per event loop)."""

    __slots__ = ("_worker_bits", "_last_ms", "_sequence")

    def __init__(self, worker_id: int) -> None:
        if not 0 <= worker_id <= MAX_WORKER:
            raise ValueError(f"worker id {worker_id} outside 0..{MAX_WORKER}")
        self._worker_bits = worker_id << SEQUENCE_BITS
        self._last_ms = -1
        self._sequence = 0

    def next_id(self, now_ms: int | None = None) -> int:
        ms = (time.time_ns() // 1_000_000 if now_ms is None else now_ms) - STARLING_EPOCH_MS
        if ms > self._last_ms:
            self._last_ms = ms
            self._sequence = 0
        else:  # same millisecond, or the clock stepped back: stay on the logical clock
            self._sequence += 1
            if self._sequence > MAX_SEQUENCE:
                self._last_ms += 1
                self._sequence = 0
        return (self._last_ms << TIMESTAMP_SHIFT) | self._worker_bits | self._sequence
