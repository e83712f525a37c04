"""One error tree for the whole pipeline.

    NewsradarError
    ├── ConfigError          bad or missing configuration; names file, key and what was expected
    ├── TransientError       worth retrying later (timeouts, 408/429/5xx); carries retry_after seconds
    └── PermanentError       retrying will not help (other 4xx, invalid_auth, channel_not_found, bad input)
        ├── ContentError     a fetched body could not be used (too big, hostile XML, undecodable)
        └── StateError       our own state database cannot be written (disk full, read-only): the stage
                             stops without committing, so nothing is lost once the disk is fixed

Failure is always signalled by raising one of these, never by returning a bool.
"""

from __future__ import annotations


class NewsradarError(Exception):
    """Base of every error newsradar raises on purpose."""


class ConfigError(NewsradarError):
    """The configuration is invalid; the message names the file, the key and what was expected."""


class TransientError(NewsradarError):
    """A failure that may go away: retry after ``retry_after`` seconds (None: use backoff)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(NewsradarError):
    """A failure that retrying will not fix; surfaced loudly and counted."""


class ContentError(PermanentError):
    """A response body that cannot be used: over the size cap, hostile XML, not a feed."""


class StateError(PermanentError):
    """The state store cannot be written. Never dead-letter on this: stop, keep the input uncommitted."""
