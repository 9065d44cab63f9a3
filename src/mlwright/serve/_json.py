"""JSON for the request path: orjson (several times faster on 1,000-row bodies), json as backup.

``loads`` falls back to the standard library when orjson refuses a body, so that bodies with
``NaN`` (which orjson rejects as invalid JSON) reach validation and get a field-level answer.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; kept working without it
    orjson = None  # type: ignore[assignment]

__all__ = ["dumps", "loads"]


def loads(body: bytes) -> Any:
    """Parse JSON; raises ``ValueError`` when it is not JSON."""
    if orjson is not None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    return json.loads(body)


def dumps(content: Any) -> bytes:
    """Serialise plain JSON values (NaN becomes null)."""
    if orjson is not None:
        return orjson.dumps(content)
    return json.dumps(content, separators=(",", ":"), allow_nan=False).encode()
