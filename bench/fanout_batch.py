"""The fan-out worker's own CPU per timeline entry for one batch, without the stack, each part
against its baseline measured in the same run: the rows of a batch and what lands
(pipeline/fanout.spread and appends on dense user indices, last reads given) against the same
done by sorting the rows' 64-bit ids (the release before UserIndex); the last-read lookup packed
from the index's encodings against hiredis; and the append commands packed piece by piece
(adapters/resp.py) against hiredis.

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
from pipeline.fanout import Mode, UserIndex, appends, spread

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


def sorted_rows(pushed: list[tuple[int, Mode, array[int]]], built: set[int],
                now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The baseline: the rows as 64-bit follower ids, sorted stably by follower (entries stay in
    order within one), the distinct followers looked up, the rows that land grouped already."""
    pushed = sorted(pushed, key=lambda p: p[0])
    lists = [np.asarray(f, dtype=np.int64) for _e, _m, f in pushed]
    sizes = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    followers = np.concatenate(lists)
    order = np.argsort(followers, kind="stable")
    followers = followers[order]
    first = np.diff(followers, prepend=np.int64(-1)) != 0
    entries = np.repeat(np.array([e for e, _m, _f in pushed], dtype=np.int64), sizes)[order]
    readers = followers[first]
    reader_of = np.cumsum(first) - 1
    seen = np.array([now if r in built else np.nan for r in readers.tolist()])
    lands = seen[reader_of] == seen[reader_of]
    reader_of, entries = reader_of[lands], entries[lands]
    starts = np.flatnonzero(np.diff(reader_of, prepend=-1))
    return readers[reader_of[starts]], np.diff(np.append(starts, len(reader_of))), entries


def shape(users: int, tweets: int, batches: int, repeat: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    ids = list(range(10**15, 10**15 + users))
    authors = ids[: users // 3]
    index = UserIndex()
    lists = {a: array("q", rng.sample(ids, 100)) for a in authors}
    dense = {a: index.indices(f) for a, f in lists.items()}  # as the worker caches them
    built = set(rng.sample(ids, users * 3 // 10))
    work = []
    for b in range(batches):
        chosen = [(10**17 + b * tweets + i, rng.choice(authors)) for i in range(tweets)]
        work.append(([(e, Mode.PUSH_ALL, lists[a]) for e, a in chosen], [(e, Mode.PUSH_ALL, dense[a]) for e, a in chosen]))
    now = time.time()
    parts = ("rows", "rows_sorted", "lookup", "lookup_hiredis", "resp", "hiredis")
    timings: dict[str, list[float]] = {k: [] for k in parts}
    landed = groups = 0
    for _ in range(repeat):
        landed = groups = 0
        took = dict.fromkeys(parts, 0.0)
        for by_id, by_index in work:
            t0 = time.process_time()
            rows = spread(by_index, len(index))
            seen = np.array([now if r in built else np.nan for r in index.ids[rows.readers].tolist()])
            out = appends(rows, seen, now, 3600)
            keys = [f"hl:{r}" for r in index.ids[out.readers].tolist()]
            t1 = time.process_time()
            readers, sizes, entries = sorted_rows(by_id, built, now)
            base_keys = [f"hl:{r}" for r in readers.tolist()]
            t2 = time.process_time()
            lookup = b"".join([b"*%d\r\n" % (3 + len(rows.readers)), *map(resp.bulk, ("ZMSCORE", "active", "-")),
                               *map(index.encoded.__getitem__, rows.readers.tolist())])
            t3 = time.process_time()
            lookup_hiredis = hiredis.pack_command(("ZMSCORE", "active", "-", *index.ids[rows.readers].tolist()))
            t4 = time.process_time()
            a = resp.evalsha_lists(SHA, keys, HEAD, out.sizes, out.entries, 1000, 20_000)
            t5 = time.process_time()
            b = hiredis_calls(keys, out.sizes, out.entries, 1000, 20_000)
            t6 = time.process_time()
            assert a == b and lookup == lookup_hiredis
            groups_new = dict(zip(keys, np.split(out.entries, np.cumsum(out.sizes)[:-1])))
            groups_old = dict(zip(base_keys, np.split(entries, np.cumsum(sizes)[:-1])))
            assert groups_new.keys() == groups_old.keys()
            assert all(np.array_equal(groups_new[k], groups_old[k]) for k in keys), "the same appends either way"
            for part, took_s in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)):
                took[part] += took_s
            landed += len(out.entries)
            groups += len(out.readers)
        for part in parts:
            timings[part].append(took[part])
    best = {k: min(v) * 1e9 / landed for k, v in timings.items()}
    return {"users": users, "tweets_per_batch": tweets, "batches": batches, "entries": landed,
            "entries_per_timeline": round(landed / groups, 2),
            "ns_per_entry": {"rows_and_lands": round(best["rows"]), "rows_sorted_baseline": round(best["rows_sorted"]),
                             "lookup_packed": round(best["lookup"]), "lookup_hiredis_baseline": round(best["lookup_hiredis"]),
                             "pack_resp": round(best["resp"]), "pack_hiredis_baseline": round(best["hiredis"])},
            "rows_speedup": round(best["rows_sorted"] / best["rows"], 2),
            "lookup_speedup": round(best["lookup_hiredis"] / best["lookup"], 2),
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
        print(f"{s['users']:,} users ({s['entries_per_timeline']} entries per timeline per batch), ns per landed entry: "
              f"rows and what lands {n['rows_and_lands']} (sorting ids {n['rows_sorted_baseline']}, "
              f"{s['rows_speedup']}x); last-read lookup packed {n['lookup_packed']} (hiredis "
              f"{n['lookup_hiredis_baseline']}, {s['lookup_speedup']}x); appends packed {n['pack_resp']} (hiredis "
              f"{n['pack_hiredis_baseline']}, {s['pack_speedup']}x)")
    write_results("fanout_batch", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
