"""`starling` command: the local stack, schema/topics, workers, API, demo workload and dev tokens."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from pipeline.errors import StarlingError
from pipeline.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        return int(args.func(args, settings) or 0)
    except StarlingError as exc:
        print(f"starling: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="starling", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    stack = sub.add_parser("stack", help="the local Kafka, Cassandra and Redis (no Docker needed)")
    ssub = stack.add_subparsers(dest="action", required=True)
    for name, help_ in (("up", "start what is not running and wait until all answer"),
                        ("down", "stop the stack and the app processes"),
                        ("status", "report each service's true state")):
        sp = ssub.add_parser(name, help=help_)
        sp.set_defaults(func=_stack)
    logs = ssub.add_parser("logs", help="show a service's log")
    logs.add_argument("service", choices=["kafka", "cassandra", "redis", "worker", "api", "maven"])
    logs.add_argument("-n", "--lines", type=int, default=50)
    logs.add_argument("-f", "--follow", action="store_true")
    logs.set_defaults(func=_logs)

    init = sub.add_parser("init", help="create the topics of topology.yaml and apply schemas/cql (idempotent)")
    init.set_defaults(func=_init)

    worker = sub.add_parser("worker", help="run the faust worker in the foreground")
    worker.add_argument("-l", "--loglevel", default="info")
    worker.set_defaults(func=_worker)

    api = sub.add_parser("api", help="run the HTTP API in the foreground")
    api.set_defaults(func=_api)

    run = sub.add_parser("run", help="stack up, init, worker and API in the background, then the demo")
    run.set_defaults(func=_run)

    demo = sub.add_parser("demo", help="produce a small demo workload and wait until it is visible")
    demo.set_defaults(func=_demo)

    dlq = sub.add_parser("dlq", help="inspect the dead-letter topic: counts by reason, samples")
    dlq.add_argument("--reason", help="only this reason code")
    dlq.add_argument("--samples", type=int, default=3, help="samples per reason")
    dlq.add_argument("--json", action="store_true", help="machine-readable output")
    dlq.set_defaults(func=_dlq)

    token = sub.add_parser("token", help="DEVELOPMENT ONLY: mint a bearer token for a user id")
    token.add_argument("user_id")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until the token expires")
    token.add_argument("--role", action="append", default=[], help="a role claim, e.g. moderator (repeatable)")
    token.set_defaults(func=_token)
    return p


def _stack(args: argparse.Namespace, settings: Settings) -> int:
    from stack import launcher
    from starling import local

    if args.action == "up":
        t0 = time.monotonic()
        launcher.up(local.infra(settings))
        print(f"stack up in {time.monotonic() - t0:.1f}s", file=sys.stderr)
        return 0
    if args.action == "down":
        launcher.down(local.infra(settings) + local.apps(settings))
        return 0
    rows = launcher.status(local.infra(settings) + local.apps(settings))
    for row in rows:
        rss = f"{row.rss_mib:7.0f} MiB" if row.rss_mib is not None else " " * 11
        pid = str(row.pid) if row.pid else "-"
        print(f"{row.name:10} {row.state:9} pid {pid:>8} {rss}  {row.detail}")
    infra_names = {s.name for s in local.infra(settings)}
    return 0 if all(r.state == "up" for r in rows if r.name in infra_names) else 3


def _logs(args: argparse.Namespace, settings: Settings) -> int:
    from stack import process
    from stack.config import StackConfig

    path = StackConfig.from_settings(settings, os.environ).log(args.service)
    if not path.exists():
        print(f"no log yet at {path}", file=sys.stderr)
        return 1
    print(process.tail(path, args.lines))
    if args.follow:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            while True:
                chunk = f.read()
                if chunk:
                    sys.stdout.write(chunk.decode(errors="replace"))
                    sys.stdout.flush()
                else:
                    time.sleep(0.5)
    return 0


def _init(args: argparse.Namespace, settings: Settings) -> int:
    from adapters import provision

    provision.create_topics(settings)
    provision.apply_cql_schema(settings)
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from agents.main import run_worker

    run_worker(settings, loglevel=args.loglevel)
    return 0


def _api(args: argparse.Namespace, settings: Settings) -> int:
    from api.main import run_api

    run_api(settings)
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from starling import local

    return local.run_everything(settings)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from starling import demo

    return demo.run(local_settings(settings))


def _dlq(args: argparse.Namespace, settings: Settings) -> int:
    import orjson

    from adapters.deadletter import inspect

    report = inspect(settings, samples_per_reason=args.samples, reason=args.reason)
    if args.json:
        print(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode())
        return 0
    print(f"{report.total} dead-lettered record(s) in {settings.topic('deadletter')}")
    for reason, n in report.by_reason.most_common():
        print(f"  {n:7d}  {reason}")
    for topic, n in report.by_source.most_common():
        print(f"  {n:7d}  from {topic}")
    for reason, samples in report.samples.items():
        print(f"\n{reason}:")
        for sample in samples:
            print(f"  {sample['source']} key={sample['key']!r}: {sample['detail']}")
            print(f"    {sample['value']}")
    return 0


def _token(args: argparse.Namespace, settings: Settings) -> int:
    from api.auth import mint_token

    print(mint_token(local_settings(settings), int(args.user_id), ttl_s=args.ttl, roles=tuple(args.role)))
    return 0


def local_settings(settings: Settings) -> Settings:
    """Settings with the development secret filled in when the environment has none."""
    from starling import local

    return local.with_dev_secret(settings)


if __name__ == "__main__":
    sys.exit(main())
