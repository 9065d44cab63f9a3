"""Bearer-token authentication (``--token`` / ``MLWRIGHT_TOKEN``)."""

from __future__ import annotations

import hmac

__all__ = ["PUBLIC_PATHS", "token_matches"]

#: Paths answered without a token: liveness and readiness probes must work for orchestrators.
PUBLIC_PATHS = frozenset({"/v2/health/live", "/v2/health/ready", "/health"})


def token_matches(expected: str, authorization: str | None) -> bool:
    """Whether an ``Authorization`` header carries the expected bearer token.

    Compared in constant time, so response timing does not reveal how much of a guess was
    right.
    """
    if not expected:
        return True
    if not authorization:
        return False
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode(), expected.encode())
