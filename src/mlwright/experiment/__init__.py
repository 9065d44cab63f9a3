"""Online experiments: A/B tests, canary and shadow deployments with sound statistics.

Fixed-horizon tests with intervals of the difference (:func:`proportion_test`,
:func:`welch_test`, :func:`bootstrap_test`), the sample-size planner (:func:`plan`), the
sample-ratio-mismatch check (:func:`srm_check`), sequential tests that may be read at any
time (:func:`sequential_test`, the normal-mixture SPRT), and sticky assignment of units to
arms (:func:`assign`, :func:`route`) with canary ramp-up and shadow mode.
"""

from __future__ import annotations

from mlwright.experiment._analysis import Analysis, analyze
from mlwright.experiment._assignment import (
    Ramp,
    Routing,
    assign,
    assign_many,
    normalise_weights,
    parse_arms,
    parse_ramp,
    route,
    unit_hash,
    weights_at,
)
from mlwright.experiment._errors import ExperimentError
from mlwright.experiment._lifecycle import (
    default_log_uri,
    get_experiment,
    record_outcomes,
    start_experiment,
    stop_experiment,
)
from mlwright.experiment._sequential import (
    SequentialResult,
    always_valid_p_values,
    confidence_sequence,
    log_mixture_ratio,
    sequential_test,
)
from mlwright.experiment._stats import (
    Plan,
    SRMResult,
    TestResult,
    bootstrap_test,
    plan,
    power_at,
    proportion_test,
    srm_check,
    welch_test,
)
from mlwright.experiment._store import Arm, Experiment, ExperimentStore

__all__ = [
    "Analysis",
    "Arm",
    "Experiment",
    "ExperimentStore",
    "analyze",
    "default_log_uri",
    "get_experiment",
    "record_outcomes",
    "start_experiment",
    "stop_experiment",
    "ExperimentError",
    "Plan",
    "Ramp",
    "Routing",
    "SRMResult",
    "SequentialResult",
    "TestResult",
    "always_valid_p_values",
    "assign",
    "assign_many",
    "bootstrap_test",
    "confidence_sequence",
    "log_mixture_ratio",
    "normalise_weights",
    "parse_arms",
    "parse_ramp",
    "plan",
    "power_at",
    "proportion_test",
    "route",
    "sequential_test",
    "srm_check",
    "unit_hash",
    "weights_at",
    "welch_test",
]
