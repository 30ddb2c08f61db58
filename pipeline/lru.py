"""A least-recently-used cache bounded by the total size of its values, not their number: what
the fan-out worker's follower lists and the API's decoded viewers need, whose values range from a
few ids to millions."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SizedLRU(Generic[K, V]):
    """Values by key, each with a size; the least recently used go first once the sizes add up to
    more than `budget`. A value larger than the whole budget is not kept."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.size = 0
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: K) -> bool:  # without counting as a use
        return key in self._entries

    def peek(self, key: K) -> V | None:
        """The value, without counting as a use."""
        hit = self._entries.get(key)
        return hit[0] if hit is not None else None

    def get(self, key: K) -> V | None:
        hit = self._entries.get(key)
        if hit is None:
            return None
        self._entries.move_to_end(key)
        return hit[0]

    def put(self, key: K, value: V, size: int) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= old[1]
        if size > self.budget:
            return
        self._entries[key] = (value, size)
        self.size += size
        while self.size > self.budget:
            _key, (_value, dropped) = self._entries.popitem(last=False)
            self.size -= dropped
