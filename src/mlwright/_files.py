"""Writing a file the user named so that a crash never leaves half of it.

The text goes to a hidden temporary file in the same folder, is flushed to disk, and is
renamed over the target in one step: whoever opens the path sees the old file or the new
one, never a truncated page (a ``kill -9`` mid-write leaves at most the hidden temporary).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from mlwright.errors import write_error

__all__ = ["write_text_atomically"]


def write_text_atomically(path: str | os.PathLike[str], text: str, what: str) -> Path:
    """Write ``text`` to ``path`` (its folders created) in one step; returns the path.

    ``what`` names the content in the message of a write the user can fix (a full or
    read-only disk, a file where a folder is needed): a :class:`~mlwright.errors.DataError`.
    """
    target = Path(path)
    temporary = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except OSError as err:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        error = write_error(err, what, target, kept=target.exists())
        if error is None:
            raise
        raise error from err
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise
    return target
