"""Production monitoring: drift, live performance, alerts and retraining.

Every model carries a compact reference of its training data (``reference.json`` in its
artifact, written at training time). From the prediction log the server writes, this stage
measures data and prediction drift against that reference (:func:`drift`), joins late labels
(:func:`record_feedback`, :func:`join_feedback`), computes live metrics per window with
confidence intervals (:func:`live_performance`), fires alerts (:func:`evaluate_rules`,
:func:`deliver`), and retrains a challenger that is promoted only when a paired test says it
is better (:func:`retrain`).
"""

from __future__ import annotations

from mlwright.model._train_api import register_training_files
from mlwright.monitor._alerts import (
    Alert,
    AlertConfig,
    deliver,
    evaluate_rules,
    load_alert_config,
)
from mlwright.monitor._drift import DriftReport, DriftSettings, FeatureDrift, drift, frame_reference
from mlwright.monitor._feedback import (
    FeedbackResult,
    LogData,
    join_feedback,
    read_log,
    record_feedback,
)
from mlwright.monitor._monitor import MonitorResult, monitor_model
from mlwright.monitor._performance import LivePerformance, Window, live_performance
from mlwright.monitor._reference import (
    build_reference,
    load_reference,
    model_reference,
    reference_files,
)
from mlwright.monitor._retrain import RetrainResult, retrain

__all__ = [
    "Alert",
    "AlertConfig",
    "DriftReport",
    "DriftSettings",
    "FeatureDrift",
    "FeedbackResult",
    "LivePerformance",
    "LogData",
    "MonitorResult",
    "RetrainResult",
    "Window",
    "build_reference",
    "deliver",
    "drift",
    "evaluate_rules",
    "frame_reference",
    "join_feedback",
    "live_performance",
    "load_alert_config",
    "load_reference",
    "model_reference",
    "monitor_model",
    "read_log",
    "record_feedback",
    "reference_files",
    "retrain",
]

# Every model trained from now on carries its drift reference.
register_training_files(reference_files)
