"""The hybrid fan-out policy (DESIGN.md decision 5), pure.

    followers:  0 ........ push_all_below ........ push_active_below ........ ∞
    mode:       PUSH_ALL                PUSH_ACTIVE                 PULL
                every follower's        only followers who read     nobody: merged into
                built timeline          within the activity window  readers' pages at read time

Fan-out only ever appends to timelines that are built (adapters/redis_store.py), and a timeline
expires when its reader has not read it for the activity window, so both push modes deliver to
the same readers; the middle band only skips the pointless pushes to inactive followers (one
sorted-set lookup per page of followers instead of one write per follower). A celebrity's tweet
costs O(1) writes: its author's own timeline, nothing else.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass


class Mode(enum.Enum):
    PUSH_ALL = "push_all"
    PUSH_ACTIVE = "push_active"
    PULL = "pull"


@dataclass(frozen=True)
class Policy:
    push_all_below: int
    push_active_below: int
    activity_window_s: int

    def mode(self, followers: int) -> Mode:
        if followers < self.push_all_below:
            return Mode.PUSH_ALL
        if followers < self.push_active_below:
            return Mode.PUSH_ACTIVE
        return Mode.PULL

    def is_pulled(self, followers: int) -> bool:
        return self.mode(followers) is Mode.PULL


def active_readers(followers: Sequence[int], last_read_s: Sequence[float | None], now_s: float,
                   window_s: int) -> list[int]:
    """The followers whose last home-timeline read is within the window."""
    return [f for f, seen in zip(followers, last_read_s) if seen is not None and now_s - seen <= window_s]
