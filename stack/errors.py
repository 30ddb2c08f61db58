"""The launcher's one error: a message a person can act on."""

from pipeline.errors import StarlingError


class StackError(StarlingError):
    """Something the local stack needs is missing or broken; the message says what."""
