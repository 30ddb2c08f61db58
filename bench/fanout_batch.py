"""The fan-out worker's own CPU per timeline entry for one batch, without the stack: the rows of a
batch (pipeline/fanout.spread), what lands (appends, last reads given), and the append commands
packed piece by piece (adapters/resp.py) against hiredis packing the same commands (the
baseline, measured in the same run).

    .venv/bin/python -m bench.fanout_batch [--batches 20 --tweets 1000]

Two shapes, both mean 100 followers and 30% of readers with a built timeline: 10,000 users (a
batch's entries ~17 to a timeline, as on bench/fanout.py's default graph) and 100,000 users (~1.3
to a timeline, the issue's scale). Process CPU time, best of --repeat.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from array import array
from typing import Any

import hiredis
import numpy as np

from adapters import resp
from bench.common import calibration_us, progress, write_results
from pipeline.fanout import Mode, appends, spread

SHA = "0" * 40
HEAD = [800, 64]


def hiredis_calls(keys: list[str], sizes: np.ndarray, ids: np.ndarray, keys_per_call: int, ids_per_call: int) -> list[bytes]:
    """The baseline: the same commands, each packed by hiredis from Python arguments."""
    ends = np.cumsum(sizes)
    starts = ends - sizes
    out, first = [], 0
    while first < len(keys):
        fits = int(np.searchsorted(ends, starts[first] + ids_per_call, side="right"))
        last = max(first + 1, min(first + keys_per_call, fits))
        args = np.insert(ids[starts[first]:ends[last - 1]], starts[first:last] - starts[first], sizes[first:last])
        out.append(hiredis.pack_command(("EVALSHA", SHA, last - first, *keys[first:last], *HEAD, *args.tolist())))
        first = last
    return out


def shape(users: int, tweets: int, batches: int, repeat: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    ids = list(range(10**15, 10**15 + users))
    authors = ids[: users // 3]
    lists = {a: array("q", rng.sample(ids, 100)) for a in authors}
    built = set(rng.sample(ids, users * 3 // 10))
    work = []
    for b in range(batches):
        pushed = [(10**17 + b * tweets + i, Mode.PUSH_ALL, lists[rng.choice(authors)]) for i in range(tweets)]
        work.append(pushed)
    now = time.time()
    timings: dict[str, list[float]] = {"rows": [], "resp": [], "hiredis": []}
    landed = groups = 0
    for _ in range(repeat):
        landed = groups = 0
        t_rows = t_resp = t_hiredis = 0.0
        for pushed in work:
            t0 = time.process_time()
            rows = spread(pushed)
            seen = np.array([now if r in built else np.nan for r in rows.readers.tolist()])
            out = appends(rows, seen, now, 3600)
            keys = [f"hl:{r}" for r in out.readers.tolist()]
            t1 = time.process_time()
            a = resp.evalsha_lists(SHA, keys, HEAD, out.sizes, out.entries, 1000, 20_000)
            t2 = time.process_time()
            b = hiredis_calls(keys, out.sizes, out.entries, 1000, 20_000)
            t3 = time.process_time()
            assert a == b
            t_rows += t1 - t0
            t_resp += t2 - t1
            t_hiredis += t3 - t2
            landed += len(out.entries)
            groups += len(out.readers)
        timings["rows"].append(t_rows)
        timings["resp"].append(t_resp)
        timings["hiredis"].append(t_hiredis)
    best = {k: min(v) * 1e9 / landed for k, v in timings.items()}
    return {"users": users, "tweets_per_batch": tweets, "batches": batches, "entries": landed,
            "entries_per_timeline": round(landed / groups, 2),
            "ns_per_entry": {"rows_and_lands": round(best["rows"]), "pack_resp": round(best["resp"]),
                             "pack_hiredis_baseline": round(best["hiredis"])},
            "pack_speedup": round(best["hiredis"] / best["resp"], 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--tweets", type=int, default=1000, help="tweets per batch")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    results: dict[str, Any] = {"calibration_us": calibration_us(), "shapes": []}
    for users in (10_000, 100_000):
        progress(f"{users:,} users: {args.batches} batches of {args.tweets} tweets")
        results["shapes"].append(shape(users, args.tweets, args.batches, args.repeat, args.seed))
    for s in results["shapes"]:
        n = s["ns_per_entry"]
        print(f"{s['users']:,} users ({s['entries_per_timeline']} entries per timeline per batch): rows and what lands "
              f"{n['rows_and_lands']} ns per entry; packing {n['pack_resp']} ns (hiredis {n['pack_hiredis_baseline']} ns, "
              f"{s['pack_speedup']}x)")
    write_results("fanout_batch", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
