"""docker-compose.yml stays in step with the code: same variables, same commands, same stack."""

import re

import yaml

from pipeline.settings import Settings, project_root
from starling.cli import _parser

ROOT = project_root()
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_stack_and_the_app():
    assert {"kafka", "cassandra", "redis", "init", "worker", "api"} <= set(COMPOSE["services"])
    assert COMPOSE["services"]["kafka"]["image"].startswith("apache/kafka:3.9")
    assert COMPOSE["services"]["cassandra"]["image"].startswith("cassandra:5.0")


def test_compose_uses_only_variables_the_settings_read():
    known = set(re.findall(r"STARLING_[A-Z0-9_]+", (ROOT / "pipeline" / "settings.py").read_text()))
    for name in ("init", "worker", "api"):
        env = COMPOSE["services"][name]["environment"]
        assert set(env) <= known, set(env) - known
        # Values that don't depend on the host environment must parse as real settings.
        static = {k: v for k, v in env.items() if "${" not in str(v)}
        Settings.from_env({**static, "STARLING_TOPOLOGY": str(ROOT / "topology.yaml")})


def test_compose_commands_are_starling_subcommands():
    parser = _parser()
    for name in ("init", "worker", "api"):
        args = parser.parse_args(COMPOSE["services"][name]["command"])
        assert args.command == name
