"""The one base exception and the expected failures that are data, not crashes."""

from __future__ import annotations


class StarlingError(Exception):
    """Base of every error this project raises on purpose."""


class SettingsError(StarlingError):
    """A setting from the environment is missing or malformed; names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable} {problem}")
        self.variable = variable


class TopologyError(StarlingError):
    """topology.yaml is inconsistent with itself or with schemas/."""


class InvalidEvent(StarlingError):
    """An event that can never be processed; it goes to the dead-letter topic with `reason`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
