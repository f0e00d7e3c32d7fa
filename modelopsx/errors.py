"""Typed errors for problems a user can fix. The CLI prints them without a traceback and exits non-zero."""

from __future__ import annotations


class UserError(Exception):
    """Something in the user's input or environment is wrong; `message` says what, `hint` how to fix it."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class DatasetError(UserError):
    """A dataset is missing, malformed or fails validation."""


class StorageError(UserError):
    """An object store refused or failed a request in a way the user can act on."""


class KeyExistsError(StorageError):
    """A put targeted a key that already exists; stored objects are immutable."""


class NotFoundError(StorageError):
    """A key, store, record or version does not exist."""


class ReadOnlyStoreError(StorageError):
    """The store refuses every write (Basin without a private key): retrying other objects cannot help."""


class IntegrityError(StorageError):
    """Bytes read back do not match their content address (CID or hash)."""


class ModelError(UserError):
    """A model, weights file or training configuration is unusable."""


class PipelineError(UserError):
    """A pipeline parameter, compile or submit step is wrong."""


class ReleaseError(UserError):
    """The release path refuses: the evidence does not authorise this deploy or rollback; nothing written
    and the champion stays (raised by registry.release and by the serving check before a promotion)."""
