"""The final models: each ensemble member refitted on all rows, or served by its fold models."""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from mlwright.automl._crossval import CUT_SHORT, CrossValidation, Evaluated
from mlwright.automl._predictor import Member
from mlwright.automl._scheduler import REFIT_MARGIN, refit_seconds
from mlwright.automl.families import family

__all__ = ["refit"]


def refit(
    state: CrossValidation,
    members: list[tuple[Evaluated, float]],
    deadline: float,
    n_jobs: int,
    cost_budget: tuple[float, float],
    *,
    inputs: list[Evaluated] | None = None,
    prefer_bags: bool = False,
) -> tuple[list[Member], list[Member]]:
    """Serve each member: refitted on all rows in parallel, or as the mean of fold models.

    The longest refits start first, so that the one most at risk gets the most time. A member
    without time for its refit serves as the average of as many of its fold models as the
    prediction budget affords (all of them when it can; a single fold model, trained on fewer
    rows, is the last resort). With ``prefer_bags`` (small data) a member whose fold models
    (every fold of every repeat) all fit the prediction budget serves as their average without
    a refit: on small tables the average of several models is the steadier predictor.

    ``inputs`` are the stack inputs of second-layer members: they are served too (weight 0
    unless they are members), and when one of them cannot be, the second-layer members are
    dropped. Returns the weighted members (weights summing to 1) and the served inputs.
    """
    inputs = list(inputs or [])
    if not any(result.layer == 2 for result, _ in members):
        inputs = []
    weights = {id(result): weight for result, weight in members}
    jobs = [(result, weight) for result, weight in members]
    jobs += [(result, 0.0) for result in inputs if id(result) not in weights]
    y = state.y
    budget = np.asarray(cost_budget, dtype=float)
    spent = np.sum([result.cost for result, _ in jobs], axis=0)
    lock = threading.Lock()
    threads = max(1, n_jobs // min(len(jobs), max(1, n_jobs)))

    def expected(result: Evaluated, threads: int) -> float:
        return refit_seconds(result.fold_seconds, len(state.folds), state.threads_per_fit, threads)

    def fold_bag(result: Evaluated, whole: bool = False) -> list[Any] | None:
        """As many fold models as the budget affords (with ``whole``, all of them or ``None``)."""
        nonlocal spent
        with lock:
            room = np.min((budget - spent) / np.maximum(result.cost, 1e-9))
            count = int(min(len(result.fold_models), 1 + max(0, math.floor(room))))
            if whole and count < len(result.fold_models):
                return None
            spent = spent + result.cost * (count - 1)
        return result.fold_models[:count]

    def refit_one(result: Evaluated, weight: float, threads: int, force: bool = False):
        module = family(result.candidate.family)
        iterations = max(1, int(round(np.mean(result.iterations) * 1.1)))
        seconds, remaining = expected(result, threads), deadline - time.monotonic()
        too_late = seconds * REFIT_MARGIN > remaining
        refitted = False
        bag = None
        if result.fold_models is not None and (too_late or prefer_bags) and not force:
            # All fold models if the budget affords them; else a boosting refit is still
            # tried when it may well finish (cut short, it gives way to the fold models), since
            # fewer fold models than k are a weaker model.
            bag = fold_bag(result, whole=True)
            if bag is None and too_late and (seconds > 2 * remaining or not module.ITERATIVE):
                bag = fold_bag(result)
        if bag is not None:
            models = bag
        elif (
            not force
            and too_late
            and not module.ITERATIVE
            and result.candidate.family not in CUT_SHORT
        ):
            return None
        else:
            model, done = module.fit(
                state.designs[result.layer],
                y,
                task=state.task,
                n_classes=state.n_classes,
                categorical=state.categorical,
                params=result.candidate.params,
                seed=state.seed,
                n_threads=threads,
                deadline=max(deadline - 0.2, time.monotonic() + 1.0) if force else deadline - 0.2,
                n_iterations=iterations,
            )
            models, refitted = [model], True
            if done < iterations and result.fold_models is not None:
                # The deadline cut the refit short: fully trained fold models serve instead.
                models, refitted = fold_bag(result), False
        member = Member(
            result.candidate.name,
            result.candidate.family,
            models,
            weight,
            dict(result.candidate.params),
            refitted,
            layer=result.layer,
        )
        state.emit({"kind": "refit", "name": member.name, "served_as": member.served_as})
        return member

    order = sorted(range(len(jobs)), key=lambda i: -expected(jobs[i][0], threads))
    workers = max(1, min(len(jobs), n_jobs))
    with ThreadPoolExecutor(workers) as pool:
        futures = {i: pool.submit(refit_one, *jobs[i], threads) for i in order}
        served = [futures[i].result() for i in range(len(jobs))]
    by_result = {id(result): member for (result, _), member in zip(jobs, served, strict=True)}
    served_inputs = [by_result[id(result)] for result in inputs]
    if any(member is None for member in served_inputs):
        # A second-layer member needs every input; without one, the first layer serves alone.
        served_inputs = []
    fitted = [
        by_result[id(result)]
        for result, _ in members
        if by_result[id(result)] is not None and (result.layer == 1 or served_inputs)
    ]
    if not fitted:
        # Nothing could be served in time: the best first-layer model is refitted regardless,
        # since a model a little late beats no model.
        first = [result for result, _ in members if result.layer == 1] or inputs
        fitted = [refit_one(first[0], 1.0, max(1, n_jobs), force=True)]
        served_inputs = []
    total = sum(m.weight for m in fitted)
    if total <= 0:
        for member in fitted:
            member.weight = 1.0
        total = float(len(fitted))
    for member in fitted:
        member.weight /= total
    return fitted, served_inputs
