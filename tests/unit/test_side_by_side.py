"""agents.runtime.side_by_side: concurrent steps whose failure keeps its own type (retry's test)."""

from __future__ import annotations

import asyncio

import pytest

from agents.runtime import TRANSIENT, side_by_side


def test_steps_run_at_the_same_time():
    async def main() -> list[str]:
        first, second = asyncio.Event(), asyncio.Event()
        done: list[str] = []

        async def a() -> None:
            first.set()
            await second.wait()  # only the other step sets it: run one after the other, this never ends
            done.append("a")

        async def b() -> None:
            await first.wait()
            second.set()
            done.append("b")

        await asyncio.wait_for(side_by_side(a(), b()), timeout=5)
        return done

    assert sorted(asyncio.run(main())) == ["a", "b"]


def test_a_failure_is_raised_as_itself_and_cancels_the_other_step():
    outcome: dict[str, bool] = {}

    async def main() -> None:
        async def fails() -> None:
            await asyncio.sleep(0)
            raise ConnectionError("redis went away")

        async def slow() -> None:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                outcome["cancelled"] = True
                raise

        await side_by_side(slow(), fails())

    with pytest.raises(ConnectionError) as info:
        asyncio.run(main())
    assert isinstance(info.value, TRANSIENT)  # what runtime.retry catches
    assert outcome == {"cancelled": True}
