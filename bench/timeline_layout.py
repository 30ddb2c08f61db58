"""What a home timeline's layout costs Redis: appending to lists (RPUSHX, today's layout) against
adding to sorted sets (ZADD, the layout before), the same entries into the same number of
timelines of the same size, in one run.

    .venv/bin/python -m bench.timeline_layout [--timelines 3000 --size 500 --entries 300000]

Needs the local stack's Redis (a database no namespace uses, flushed before and after). It fills
--timelines timelines of --size entries in both layouts, then writes --entries new entries (each
to a random timeline, newest last, as fan-out does) pipelined in rounds of 1,000 commands, one
entry per command and then five per command (a reader's share of a batch), and reports Redis's
own time per entry (INFO commandstats), the wall rate from this one Python client, and the bytes
per entry (MEMORY USAGE). Redis's own time is what bounds fan-out once the worker's cost is
spread over more workers; the wall rate here is bounded by this client.
"""

from __future__ import annotations

import argparse
import random
import socket
import sys
import time
from typing import Any
from urllib.parse import urlparse

import hiredis

from bench.common import machine, progress, write_results
from pipeline.settings import Settings

SCRATCH_DB = 14
ROUND = 1000


class Raw:
    """A bare pipelined connection: commands packed by hiredis, replies parsed by hiredis."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port))
        self.reader = hiredis.Reader()

    def many(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        self.sock.sendall(b"".join(hiredis.pack_command(c) for c in commands))
        out: list[Any] = []
        while len(out) < len(commands):
            reply = self.reader.gets()
            if reply is False:
                self.reader.feed(self.sock.recv(1 << 20))
                continue
            out.append(reply)
        return out

    def one(self, *command: Any) -> Any:
        return self.many([command])[0]

    def commandstats(self) -> dict[str, tuple[int, int]]:
        out = {}
        for line in self.one("INFO", "commandstats").decode().splitlines():
            if line.startswith("cmdstat_"):
                name, rest = line.split(":", 1)
                fields = dict(kv.split("=") for kv in rest.split(","))
                out[name.removeprefix("cmdstat_")] = (int(fields["calls"]), int(fields["usec"]))
        return out


def measure(raw: Raw, name: str, command: str, per: int, targets: list[int], base: int,
            layout_key: str) -> dict[str, Any]:
    before = raw.commandstats()
    t0 = time.perf_counter()
    entry = base
    commands: list[tuple[Any, ...]] = []
    for target in targets[::per]:
        ids = list(range(entry, entry + per))
        entry += per
        if command == "ZADD":
            commands.append(("ZADD", f"{layout_key}:{target}", *[x for i in ids for x in (i, i)]))
        else:
            commands.append(("RPUSHX", f"{layout_key}:{target}", *ids))
        if len(commands) == ROUND:
            raw.many(commands)
            commands = []
    if commands:
        raw.many(commands)
    wall = time.perf_counter() - t0
    calls, usec = (a - b for a, b in zip(raw.commandstats()[command.lower()], before.get(command.lower(), (0, 0))))
    n = entry - base
    return {"layout": name, "entries_per_command": per, "entries": n, "redis_us_per_entry": round(usec / n, 3),
            "commands": calls, "client_wall_entries_per_s": round(n / wall)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--timelines", type=int, default=3000)
    p.add_argument("--size", type=int, default=500)
    p.add_argument("--entries", type=int, default=300_000)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    settings = Settings.from_env()
    raw = Raw(urlparse(settings.redis_url).hostname or "127.0.0.1", settings.redis_port)
    raw.one("SELECT", SCRATCH_DB)
    raw.one("FLUSHDB")
    try:
        progress(f"filling {args.timelines:,} timelines of {args.size} entries in both layouts")
        base = 1 << 56  # snowflake-sized ids
        for t in range(args.timelines):
            ids = list(range(base, base + args.size))
            raw.many([("ZADD", f"z:{t}", *[x for i in ids for x in (i, i)]), ("RPUSH", f"l:{t}", "-", *ids)])
        memory = raw.many([c for t in range(min(args.timelines, 200)) for c in
                           (("MEMORY", "USAGE", f"z:{t}"), ("MEMORY", "USAGE", f"l:{t}"))])
        rng = random.Random(args.seed)
        targets = [rng.randrange(args.timelines) for _ in range(args.entries)]
        rows = []
        start = base + args.size
        for per in (1, 5):
            for name, command, key in (("sorted set", "ZADD", "z"), ("list", "RPUSHX", "l")):
                progress(f"{name}: {args.entries:,} entries, {per} per command")
                rows.append(measure(raw, name, command, per, targets, start, key))
                start += args.entries
        results = {
            "machine": machine(), "timelines": args.timelines, "entries_per_timeline": args.size,
            "encodings": {"sorted set": raw.one("OBJECT", "ENCODING", "z:0").decode(),
                          "list": raw.one("OBJECT", "ENCODING", "l:0").decode()},
            "bytes_per_entry_before_the_writes": {
                "sorted set": round(sum(memory[0::2]) / (len(memory) // 2) / args.size, 1),
                "list": round(sum(memory[1::2]) / (len(memory) // 2) / args.size, 1)},
            "writes": rows,
        }
    finally:
        raw.one("FLUSHDB")
    for row in rows:
        print(f"{row['layout']:>10}, {row['entries_per_command']} per command: Redis {row['redis_us_per_entry']} us per "
              f"entry; this client {row['client_wall_entries_per_s']:,} entries/s")
    b = results["bytes_per_entry_before_the_writes"]
    print(f"bytes per entry ({args.size} per timeline): sorted set {b['sorted set']} ({results['encodings']['sorted set']}), "
          f"list {b['list']} ({results['encodings']['list']})")
    write_results("timeline_layout", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
