"""Optuna TPE tuning of the best gradient-boosting families with the time a phase leaves."""

from __future__ import annotations

import math
from collections.abc import Callable

import optuna

from mlwright.automl._crossval import CrossValidation
from mlwright.automl._portfolio import Candidate
from mlwright.automl.families import family

__all__ = ["TUNABLE", "Tuner"]

#: Gradient-boosting families Optuna tunes (the others are kept at their portfolio settings).
TUNABLE = ("lightgbm", "xgboost", "catboost")


class Tuner:
    """TPE studies of the two best boosting families; trials run until time or trials end.

    The leading family gets two trials for each one of the runner-up. A tuner can be run in
    several phases (before and after the stack): its studies continue where they stopped.
    """

    def __init__(self, state: CrossValidation, families, seed: int, n_rows: int) -> None:
        self.state = state
        self.seed = seed
        self.n_rows = n_rows
        self.families = [f for f in TUNABLE if f in families]
        self.studies: dict[str, object] | None = None
        self.order: list[str] = []
        self.turn = 0
        self.failures = 0

    def _start(self) -> bool:
        if self.studies is not None:
            return bool(self.studies)

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        best_by_family: dict[str, float] = {}
        for result in self.state.results:
            name = result.candidate.family
            if name in self.families and result.layer == 1:
                loss = self.state.metric.loss(result.score)
                best_by_family[name] = min(best_by_family.get(name, math.inf), loss)
        self.order = sorted(best_by_family, key=best_by_family.get)[:2]
        self.studies = {
            name: optuna.create_study(
                direction="minimize",
                sampler=optuna.samplers.TPESampler(
                    seed=self.seed + i, n_startup_trials=6, multivariate=True
                ),
            )
            for i, name in enumerate(self.order)
        }
        return bool(self.studies)

    def run(
        self,
        trials: int,
        max_trials: int | None,
        unique_name: Callable[[str], str],
        *,
        fill: bool = False,
    ) -> int:
        """Run trials until the state's phase deadline; returns the trial count so far.

        With ``fill`` (the last phase) trials start until the last second (see
        :meth:`CrossValidation.plan`).
        """
        if not self.families or not self.state.results or not self._start():
            return trials
        assert self.studies is not None
        while (max_trials is None or trials < max_trials) and self.failures < 5:
            name = self.order[0] if len(self.order) == 1 or self.turn % 3 != 2 else self.order[1]
            study = self.studies[name]
            trial = study.ask()  # type: ignore[attr-defined]
            params = family(name).suggest(trial, self.state.task, self.n_rows)
            candidate = Candidate(unique_name(f"{name}_tuned"), name, params, source="optuna")
            cap = self.state.plan(candidate, fill=fill)
            if cap is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)  # type: ignore[attr-defined]
                break
            self.turn += 1
            trials += 1
            result = self.state.evaluate(candidate, cap)
            if result is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)  # type: ignore[attr-defined]
                self.failures += 1
            else:
                study.tell(trial, self.state.metric.loss(result.score))  # type: ignore[attr-defined]
        return trials
