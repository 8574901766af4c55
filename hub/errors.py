"""One error hierarchy for the whole hub.

``UserError`` is the caller's fault (bad input, bad configuration): it carries a message meant
for a person and is never retried. ``TemporaryError`` may succeed later and is retried;
``PermanentError`` will not, and is recorded instead.
"""

from __future__ import annotations


class HubError(Exception):
    """Base of every error the hub raises on purpose."""


class UserError(HubError):
    """The input or the configuration is wrong; the message says what and where."""


class ConfigError(UserError):
    """A setting is missing or invalid."""


class ImportFileError(UserError):
    """A case import file is malformed; nothing was imported."""


class NotFoundError(UserError):
    """The named object does not exist (or the caller may not see it)."""


class IllegalTransitionError(UserError):
    """A case cannot move from its state by that event."""


class TemporaryError(HubError):
    """A failure that may go away: retry with backoff."""


class PermanentError(HubError):
    """A failure that will not go away by retrying."""


class DatabaseUnavailableError(TemporaryError):
    """The database cannot be reached."""


class AtRestKeyError(PermanentError):
    """A value cannot be decrypted: its key is unknown or the data was tampered with."""
