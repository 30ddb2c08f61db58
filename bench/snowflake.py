"""Snowflake ids per second in one process (goal: at least 1,000,000).

    .venv/bin/python -m bench.snowflake [--seconds 3]

Baseline in the same run: a bare Python loop calling a no-op method, the ceiling for any
per-id method call in this interpreter.
"""

from __future__ import annotations

import argparse
import sys
import time

from bench.common import progress, write_results
from pipeline.snowflake import Snowflake, timestamp_ms


class _Noop:
    def call(self) -> int:
        return 0


def rate(fn: object, seconds: float) -> float:
    call = fn  # bound method
    n, t0 = 0, time.perf_counter()
    while True:
        for _ in range(100_000):
            call()  # type: ignore[operator]
        n += 100_000
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return n / elapsed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args(argv)
    sf = Snowflake(1)
    progress(f"issuing ids for {args.seconds}s")
    ids_per_s = rate(sf.next_id, args.seconds)
    noop_per_s = rate(_Noop().call, args.seconds)
    # Sanity: the ids just issued are unique and time-ordered.
    sample = [sf.next_id() for _ in range(100_000)]
    assert sample == sorted(set(sample)) and timestamp_ms(sample[-1]) <= time.time() * 1000 + 1000
    results = {"ids_per_s": round(ids_per_s), "noop_method_calls_per_s": round(noop_per_s),
               "ratio_to_noop": round(ids_per_s / noop_per_s, 3), "goal_1m_per_s": ids_per_s >= 1_000_000}
    print(f"snowflake: {ids_per_s:,.0f} ids/s in one process (no-op method call: {noop_per_s:,.0f}/s, "
          f"ratio {results['ratio_to_noop']}); goal 1,000,000/s {'met' if results['goal_1m_per_s'] else 'NOT met'}")
    write_results("snowflake", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
