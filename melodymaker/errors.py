"""The exceptions a user can act on. app.py maps each to an HTTP status in one place."""
from __future__ import annotations


class MelodyMakerError(Exception):
    """Base class: its message is meant for the user."""
    status = 500

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidRequest(MelodyMakerError):
    """A request field is missing, malformed or out of range (HTTP 400)."""
    status = 400


class NotFound(MelodyMakerError):
    """No such track, library clip or genre (HTTP 404)."""
    status = 404


class ModeUnavailable(MelodyMakerError):
    """The requested mode cannot run here, e.g. its checkpoint is missing (HTTP 503)."""
    status = 503


class Busy(MelodyMakerError):
    """Too many generations are queued; try again later (HTTP 429)."""
    status = 429
    retry_after = 5


class Conflict(MelodyMakerError):
    """The track exists but is not in a state for this (still running, or a loop) (HTTP 409)."""
    status = 409


class NoStems(MelodyMakerError):
    """The track has no stems: its mode makes one mixed signal, not parts (HTTP 409)."""
    status = 409


class GenerationFailed(MelodyMakerError):
    """An engine failed on a valid request (HTTP 500, but with a message)."""
    status = 500


class AudioDecodeError(MelodyMakerError):
    """A file is not audio we can read (HTTP 400 for uploads; a skip reason in the library)."""
    status = 400


class QueueUnavailable(MelodyMakerError):
    """The job queue (Redis) cannot be reached; try again shortly (HTTP 503 with Retry-After)."""
    status = 503
    retry_after = 5
