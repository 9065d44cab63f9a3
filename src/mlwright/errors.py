"""The one exception hierarchy of mlwright and the exit codes of its command line.

Every error a user can cause is a :class:`MlwrightError`. Its message is one paragraph that
names what was received (file, column, value, field) and the fix. The command line prints it
without a traceback and exits with :data:`EXIT_USER_ERROR`; anything else is a bug in
mlwright and exits with :data:`EXIT_INTERNAL_ERROR`.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
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
    "write_error",
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


#: Errors of writing to a path the user chose that are theirs to fix: space, permissions, a
#: read-only disk, a file where a folder is needed or a folder where a file is.
_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_PERMISSION = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
_NOT_A_FOLDER = frozenset({errno.ENOTDIR, errno.EEXIST})


def write_error(
    err: OSError, what: str, path: str | os.PathLike[str], *, kept: bool = False
) -> DataError | None:
    """The user's message for failing to write ``what`` to ``path`` they chose.

    Parameters
    ----------
    err
        The error the write raised.
    what
        What was written, as the message names it ("predictions", "the model").
    path
        The path the user gave.
    kept
        Whatever was at ``path`` before is still there, unchanged (said in the message).

    Returns
    -------
    DataError or None
        A DataError naming the path, the reason and the fix; None when ``err`` is not one the
        user can fix (the caller re-raises it: a bug).
    """
    where = f"Cannot write {what} to '{os.fspath(path)}'"
    if kept:
        where += " (what was there is left as it was)"
    culprit = f"'{err.filename}'" if err.filename is not None else None
    if err.errno in _NOT_A_FOLDER:
        start = Path(os.fsdecode(err.filename if err.filename is not None else path))
        on_the_way = next(
            (p for p in (start, *start.parents) if p.exists() and not p.is_dir()), None
        )
        blocker = "a folder on the way" if on_the_way is None else f"'{on_the_way}'"
        return DataError(
            f"{where}: {blocker} is a file, where a folder is needed. Choose another output "
            "path, or move that file."
        )
    if err.errno == errno.EISDIR:
        return DataError(
            f"{where}: {culprit or 'it'} is a folder. Name a file, or choose another path."
        )
    if err.errno in _SPACE:
        fix = "Free space on its disk, or choose another output path."
    elif err.errno in _PERMISSION:
        fix = "Make the folder writable, or choose another output path."
    else:
        return None
    reason = err.strerror if culprit is None else f"{err.strerror} ({culprit})"
    return DataError(f"{where}: {reason}. {fix}")
