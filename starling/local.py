"""The whole system on this machine: infra services, app processes, and the `run` sequence."""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import replace

from pipeline.settings import Settings
from stack import launcher, probes, services
from stack.config import StackConfig
from stack.services import Service


def infra(settings: Settings, environ: Mapping[str, str] = os.environ) -> list[Service]:
    return services.all_services(StackConfig.from_settings(settings, environ))


def apps(settings: Settings, environ: Mapping[str, str] = os.environ) -> list[Service]:
    """The worker and the API as background processes of the local stack."""
    cfg = StackConfig.from_settings(settings, environ)
    env = {**environ, "STARLING_JWT_SECRET": with_dev_secret(settings).jwt_secret or ""}
    python = sys.executable

    def argv(command: str) -> Callable[[], list[str]]:
        return lambda: [python, "-m", "starling", command]

    return [
        Service(name="worker", cfg=cfg, ready_timeout_s=120, stop_grace_s=30, ports=(),
                marker="-m starling worker", prepare=argv("worker"), env=env,
                probe=lambda: probes.consumer_group(settings.kafka_bootstrap, settings.app_id)),
        Service(name="api", cfg=cfg, ready_timeout_s=60, stop_grace_s=15, ports=(settings.api_port,),
                marker="-m starling api", prepare=argv("api"), env=env,
                probe=lambda: probes.http(f"http://{settings.api_host}:{settings.api_port}/healthz")),
    ]


def with_dev_secret(settings: Settings) -> Settings:
    """DEVELOPMENT ONLY: without STARLING_JWT_SECRET, use a random secret kept in the state dir."""
    if settings.jwt_secret:
        return settings
    path = settings.state_dir / "dev-jwt-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return replace(settings, jwt_secret=path.read_text().strip())


def run_everything(settings: Settings) -> int:
    """The README's run command: stack, topics and schema, worker and API, demo, what to try."""
    from adapters import provision
    from starling import demo

    t0 = time.monotonic()
    launcher.up(infra(settings))
    provision.create_topics(settings)
    provision.apply_cql_schema(settings)
    launcher.up(apps(settings))
    print(f"everything up in {time.monotonic() - t0:.1f}s; running the demo workload", file=sys.stderr)
    return demo.run(with_dev_secret(settings))
