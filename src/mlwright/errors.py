"""The one exception hierarchy of mlwright and the exit codes of its command line.

Every error a user can cause is a :class:`MlwrightError`. Its message is one paragraph that
names what was received (file, column, value, field) and the fix. The command line prints it
without a traceback and exits with :data:`EXIT_USER_ERROR`; anything else is a bug in
mlwright and exits with :data:`EXIT_INTERNAL_ERROR`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "EXIT_CHECK_FAILED",
    "EXIT_INTERNAL_ERROR",
    "EXIT_OK",
    "EXIT_USER_ERROR",
    "ConfigError",
    "DataError",
    "MlwrightError",
    "ModelError",
    "RegistryError",
    "SchemaValidationError",
]

EXIT_OK = 0
EXIT_INTERNAL_ERROR = 1
EXIT_USER_ERROR = 2
#: ``mlwright check`` found an error-level finding (lets the check gate a pipeline).
EXIT_CHECK_FAILED = 3


class MlwrightError(Exception):
    """A mistake the user can fix: bad data, a wrong option, a missing file.

    Parameters
    ----------
    message
        One paragraph: what was wrong, where, and how to fix it.
    """

    exit_code: int = EXIT_USER_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class DataError(MlwrightError):
    """The data cannot be read or used: missing file, unparsable content, unknown column."""


class SchemaValidationError(DataError):
    """Data does not match a model's schema.

    Parameters
    ----------
    message
        The summary paragraph.
    problems
        Structured per-column problems (JSON-serialisable dicts), used by serving for
        field-level HTTP 422 responses.
    """

    def __init__(self, message: str, problems: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class ConfigError(MlwrightError):
    """An option or setting has an invalid value, or a needed extra is not installed."""


class ModelError(MlwrightError):
    """A model artifact cannot be loaded: missing, incomplete, tampered with, or incompatible."""


class RegistryError(MlwrightError):
    """The tracking store or model registry cannot be reached or does not hold what was asked."""
