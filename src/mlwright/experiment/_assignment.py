"""Assigning units to arms: sticky hashing by weights, canary ramp-up and shadow mode.

A unit key (a user id, a session id, ...) is hashed with the experiment's name as salt to a
number ``u`` uniform on [0, 1); the arms split [0, 1) by their weights, in the order they
were declared. The same key therefore always lands on the same arm of the same experiment,
different experiments split users independently, and no state has to be kept.

For a canary the challenger's share grows in steps. The challenger owns the *top* of the
interval, ``[1 - w, 1)``, so raising ``w`` only moves units from the champion to the
challenger: nobody flips back and forth as the ramp advances.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlwright.experiment._errors import ExperimentError

_SCALE = float(2**64)


def parse_arms(text: str) -> dict[str, float]:
    """Parse ``"champion=0.5,challenger=0.5"`` into normalised weights.

    Examples
    --------
    >>> parse_arms("champion=3,challenger=1")
    {'champion': 0.75, 'challenger': 0.25}
    """
    arms: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, weight = part.partition("=")
        name = name.strip()
        try:
            value = float(weight) if sep else float("nan")
        except ValueError:
            value = float("nan")
        if not name or not math.isfinite(value) or value < 0:
            raise ExperimentError(
                f"cannot read the arm {part!r} in --arms {text!r}; write NAME=WEIGHT pairs "
                "separated by commas with non-negative weights, e.g. champion=0.5,challenger=0.5."
            )
        if name in arms:
            raise ExperimentError(f"the arm {name!r} appears twice in --arms {text!r}.")
        arms[name] = value
    return normalise_weights(arms)


def normalise_weights(arms: Mapping[str, float]) -> dict[str, float]:
    """Weights scaled to sum to one; at least two arms and a positive total are required."""
    total = float(sum(arms.values()))
    if len(arms) < 2 or total <= 0:
        raise ExperimentError(
            f"an experiment needs at least two arms with a positive total weight, got "
            f"{dict(arms)}; e.g. champion=0.5,challenger=0.5."
        )
    return {name: float(weight) / total for name, weight in arms.items()}


def unit_hash(key: str, salt: str) -> float:
    """The unit's position in [0, 1): SHA-256 of ``salt:key``, first 8 bytes."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def _pick(u: float | np.ndarray, weights: Mapping[str, float]) -> Any:
    names = list(weights)
    edges = np.cumsum([weights[n] for n in names])
    edges[-1] = 1.0  # guard against rounding leaving a sliver past the last edge
    index = np.searchsorted(edges, u, side="right")
    index = np.minimum(index, len(names) - 1)
    if np.ndim(index) == 0:
        return names[int(index)]
    return np.asarray(names, dtype=object)[index]


def assign(key: str, weights: Mapping[str, float], *, salt: str) -> str:
    """The arm of one unit key (sticky: the same key, weights and salt give the same arm)."""
    return str(_pick(unit_hash(str(key), salt), weights))


def assign_many(keys: Iterable[Any], weights: Mapping[str, float], *, salt: str) -> np.ndarray:
    """Arms for many unit keys at once (an object array of arm names)."""
    u = np.fromiter((unit_hash(str(k), salt) for k in keys), dtype=float)
    return _pick(u, weights) if u.size else np.asarray([], dtype=object)


@dataclass(frozen=True)
class Ramp:
    """A canary schedule: the challenger's share rises through ``steps`` every ``every`` s.

    Attributes
    ----------
    arm
        The ramped arm (the challenger); the other arm (the champion) takes the rest.
    steps
        Successive shares of the ramped arm, e.g. ``(0.05, 0.25, 0.5)``.
    every
        Seconds each step lasts; the last step stays.
    """

    arm: str
    steps: Sequence[float] = field(default_factory=lambda: (0.05, 0.25, 0.5))
    every: float = 3600.0

    def share(self, elapsed: float) -> float:
        """The ramped arm's share ``elapsed`` seconds after the start."""
        index = 0 if elapsed <= 0 else min(int(elapsed // self.every), len(self.steps) - 1)
        return float(self.steps[index])


def parse_ramp(text: str, arm: str, every: float) -> Ramp:
    """Parse ``"0.05,0.25,0.5"`` into a :class:`Ramp` of ``arm``."""
    try:
        steps = tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError as err:
        raise ExperimentError(
            f"cannot read --ramp {text!r}; give increasing shares separated by commas, e.g. "
            "0.05,0.25,0.5."
        ) from err
    if not steps or any(not 0 < s <= 1 for s in steps) or list(steps) != sorted(steps):
        raise ExperimentError(
            f"--ramp {text!r} must list increasing shares in (0, 1], e.g. 0.05,0.25,0.5."
        )
    if every <= 0:
        raise ExperimentError(f"--ramp-every must be positive seconds, got {every}.")
    return Ramp(arm=arm, steps=steps, every=every)


def weights_at(weights: Mapping[str, float], ramp: Ramp | None, elapsed: float) -> dict[str, float]:
    """Weights in force ``elapsed`` seconds into the experiment, the ramped arm placed last.

    Without a ramp the declared weights are returned. With one, the ramped arm gets the
    schedule's share and the other arms share the rest in their declared proportions; the
    ramped arm is ordered last so it occupies the top of [0, 1) and only grows.
    """
    if ramp is None:
        return dict(weights)
    if ramp.arm not in weights:
        raise ExperimentError(f"the ramped arm {ramp.arm!r} is not one of {sorted(weights)}.")
    share = ramp.share(elapsed)
    others = {n: w for n, w in weights.items() if n != ramp.arm}
    rest = float(sum(others.values())) or 1.0
    out = {n: (1.0 - share) * w / rest for n, w in others.items()}
    out[ramp.arm] = share
    return out


@dataclass(frozen=True)
class Routing:
    """Where one request goes.

    Attributes
    ----------
    arm
        The arm whose answer the caller receives (and that the outcome is credited to).
    shadow
        Arms that also score the request and are logged, without the caller seeing them.
    """

    arm: str
    shadow: tuple[str, ...] = ()


def route(
    key: str,
    weights: Mapping[str, float],
    *,
    salt: str,
    shadow: bool = False,
    control: str | None = None,
    ramp: Ramp | None = None,
    elapsed: float = 0.0,
) -> Routing:
    """Route one request of an experiment.

    In shadow mode the caller always gets ``control`` (the first arm by default) and every
    other arm scores the request in the background; otherwise the key's hash picks the arm
    from the weights in force (see :func:`weights_at`).
    """
    names = list(weights)
    if shadow:
        served = control or names[0]
        return Routing(arm=served, shadow=tuple(n for n in names if n != served))
    return Routing(arm=assign(key, weights_at(weights, ramp, elapsed), salt=salt))
