"""Alert rules and their delivery: the log, a JSON lines file, an HTTP webhook.

Rules live in a small YAML or JSON file::

    rules:
      - type: drift_share        # share of drifted features reaches the threshold
        threshold: 0.3
      - type: metric_drop        # a live window is below the validation interval
        max_drop: 0.05           # optional: or more than this below the validation score
      - type: traffic            # predictions in the last window vs the median window
        low: 0.2
        high: 5.0
      - type: error_rate         # share of failed requests (from the server's counters)
        threshold: 0.05
      - type: prediction_drift   # the model's outputs drifted
    channels:
      log: true
      jsonl: alerts.jsonl
      webhook: http://127.0.0.1:9000/hook
      webhook_timeout: 5
    drift:                       # any DriftSettings field
      drift_share: 0.3

Without a file every rule applies with its defaults and alerts go to the log only.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlwright.errors import ConfigError
from mlwright.monitor._drift import DriftSettings

logger = logging.getLogger("mlwright.alerts")

RULE_TYPES = ("drift_share", "metric_drop", "traffic", "error_rate", "prediction_drift")
_RULE_FIELDS = {
    "drift_share": {"threshold": 0.5},
    "metric_drop": {"max_drop": None},
    "traffic": {"low": 0.2, "high": 5.0, "min_windows": 3},
    "error_rate": {"threshold": 0.05},
    "prediction_drift": {},
}


@dataclass
class Rule:
    """One alert rule: its type, name and parameters."""

    type: str
    name: str
    params: dict[str, Any]


@dataclass
class AlertConfig:
    """Rules, delivery channels and drift settings."""

    rules: list[Rule]
    log: bool = True
    jsonl: str | None = None
    webhook: str | None = None
    webhook_timeout: float = 5.0
    webhook_headers: dict[str, str] = field(default_factory=dict)
    drift: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def default(cls) -> AlertConfig:
        return cls(rules=[Rule(kind, kind, dict(_RULE_FIELDS[kind])) for kind in RULE_TYPES])

    @classmethod
    def from_dict(cls, document: dict[str, Any], *, where: str = "the alert config") -> AlertConfig:
        if not isinstance(document, dict):
            raise ConfigError(f"{where} must be a mapping with 'rules' and 'channels'.")
        unknown = sorted(set(document) - {"rules", "channels", "drift"})
        if unknown:
            raise ConfigError(
                f"{where} has an unknown section {unknown[0]!r}; the sections are rules, "
                "channels and drift."
            )
        rules = []
        for index, item in enumerate(document.get("rules") or []):
            if not isinstance(item, dict) or item.get("type") not in RULE_TYPES:
                got = item.get("type") if isinstance(item, dict) else item
                raise ConfigError(
                    f"Rule {index + 1} of {where} has type {got!r}; choose one of "
                    f"{', '.join(RULE_TYPES)}."
                )
            kind = item["type"]
            params = dict(_RULE_FIELDS[kind])
            extra = {k: v for k, v in item.items() if k not in ("type", "name")}
            bad = sorted(set(extra) - set(params))
            if bad:
                raise ConfigError(
                    f"Rule {index + 1} ({kind}) of {where} has an unknown field {bad[0]!r}; its "
                    f"fields are: {', '.join(params) or 'none'}."
                )
            for key, value in extra.items():
                if value is not None and not isinstance(value, (int, float)):
                    raise ConfigError(
                        f"Rule {index + 1} ({kind}) of {where}: {key} must be a number, got "
                        f"{value!r}."
                    )
            params.update(extra)
            rules.append(Rule(kind, str(item.get("name") or kind), params))
        channels = document.get("channels") or {}
        known = {"log", "jsonl", "webhook", "webhook_timeout", "webhook_headers"}
        bad = sorted(set(channels) - known)
        if bad:
            raise ConfigError(
                f"{where} has an unknown channel {bad[0]!r}; channels are: "
                f"{', '.join(sorted(known))}."
            )
        webhook = channels.get("webhook")
        if webhook is not None and not str(webhook).startswith(("http://", "https://")):
            raise ConfigError(
                f"The webhook in {where} must be an http:// or https:// URL; got {webhook!r}."
            )

        DriftSettings.from_dict(document.get("drift"))  # validate early, with its message
        return cls(
            rules=rules,
            log=bool(channels.get("log", True)),
            jsonl=channels.get("jsonl"),
            webhook=webhook,
            webhook_timeout=float(channels.get("webhook_timeout", 5.0)),
            webhook_headers=dict(channels.get("webhook_headers") or {}),
            drift=dict(document.get("drift") or {}),
        )


def load_alert_config(path: str | Path | None) -> AlertConfig:
    """Read alert rules from a YAML or JSON file (defaults when ``path`` is None)."""
    if path is None:
        return AlertConfig.default()
    source = Path(path)
    if not source.is_file():
        raise ConfigError(f"No alert config at '{source}'. Pass an existing YAML or JSON file.")
    text = source.read_text(encoding="utf-8")
    try:
        if source.suffix.lower() == ".json":
            document = json.loads(text)
        else:
            document = yaml.safe_load(text)
    except Exception as err:
        raise ConfigError(f"The alert config '{source}' cannot be parsed ({err}).") from err
    return AlertConfig.from_dict(document or {}, where=f"the alert config '{source}'")


@dataclass
class Alert:
    """One fired alert."""

    rule: str
    type: str
    model: str
    message: str
    evidence: dict[str, Any]
    time: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_rules(
    config: AlertConfig,
    *,
    model: str,
    drift: Any = None,
    performance: Any = None,
    traffic: list[int] | None = None,
    requests: dict[str, float] | None = None,
) -> list[Alert]:
    """The alerts that the observations fire.

    Parameters
    ----------
    config
        The rules.
    model
        The model's name (in every alert).
    drift
        A :class:`mlwright.monitor.DriftReport`.
    performance
        A :class:`mlwright.monitor.LivePerformance`.
    traffic
        Predictions per window, oldest first (the last is the current window).
    requests
        ``{"total": n, "errors": n}`` request counts (e.g. from the server's counters).
    """
    alerts: list[Alert] = []
    now = time.time()

    def fire(rule: Rule, message: str, evidence: dict[str, Any]) -> None:
        alerts.append(Alert(rule.name, rule.type, model, message, evidence, now))

    for rule in config.rules:
        p = rule.params
        if rule.type == "drift_share" and drift is not None:
            if drift.drifted_features and drift.share >= float(p["threshold"]):
                fire(
                    rule,
                    f"{model}: {len(drift.drifted_features)} of {len(drift.features)} features "
                    f"drifted ({drift.share:.0%} >= {float(p['threshold']):.0%}): "
                    f"{', '.join(drift.drifted_features[:6])}.",
                    {"share": drift.share, "drifted_features": drift.drifted_features},
                )
        elif rule.type == "prediction_drift" and drift is not None:
            if drift.prediction is not None and drift.prediction.drifted:
                fire(
                    rule,
                    f"{model}: the prediction distribution drifted "
                    f"({'; '.join(drift.prediction.reasons)}).",
                    {"prediction": drift.prediction.to_dict(with_plot=False)},
                )
        elif rule.type == "metric_drop" and performance is not None and performance.windows:
            last = performance.windows[-1]
            validation = performance.validation.get("value")
            dropped = False
            if p.get("max_drop") is not None and validation is not None and last.value is not None:
                change = last.value - validation
                dropped = (
                    change < -float(p["max_drop"])
                    if performance.greater_is_better
                    else change > float(p["max_drop"])
                )
            if last.below_validation or dropped:
                fire(
                    rule,
                    f"{model}: live {performance.metric} {last.value:.4g} "
                    f"(95% CI [{last.lower:.4g}, {last.upper:.4g}], {last.n} labelled rows) is "
                    f"below the validation score {_shown(validation)}.",
                    {"window": last.to_dict(), "validation": performance.validation},
                )
        elif rule.type == "traffic" and traffic:
            history = traffic[:-1]
            if len(history) >= int(p["min_windows"]):
                typical = statistics.median(history)
                current = traffic[-1]
                ratio = current / typical if typical else float("inf")
                if typical and (ratio < float(p["low"]) or ratio > float(p["high"])):
                    fire(
                        rule,
                        f"{model}: {current} predictions in the last window against a median of "
                        f"{typical:g} ({ratio:.2f}x, expected {p['low']}x-{p['high']}x).",
                        {"current": current, "median": typical, "ratio": ratio},
                    )
        elif rule.type == "error_rate" and requests:
            total = float(requests.get("total", 0))
            errors = float(requests.get("errors", 0))
            if total > 0 and errors / total >= float(p["threshold"]):
                fire(
                    rule,
                    f"{model}: {errors / total:.1%} of {total:g} requests failed "
                    f"(threshold {float(p['threshold']):.1%}).",
                    {"total": total, "errors": errors},
                )
    return alerts


def _shown(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def deliver(alerts: list[Alert], config: AlertConfig) -> list[dict[str, Any]]:
    """Send alerts to the configured channels; returns one delivery record per channel.

    A channel that fails (webhook unreachable, file not writable) is reported in the returned
    records and the log, never raised: monitoring must not stop because an alert could not be
    sent.
    """
    if not alerts:
        return []
    deliveries: list[dict[str, Any]] = []
    if config.log:
        for alert in alerts:
            logger.warning("ALERT [%s] %s", alert.rule, alert.message)
        deliveries.append({"channel": "log", "ok": True})
    if config.jsonl:
        try:
            path = Path(config.jsonl)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as handle:
                for alert in alerts:
                    handle.write(json.dumps(alert.to_dict(), default=str) + "\n")
            deliveries.append({"channel": "jsonl", "ok": True, "path": str(path)})
        except OSError as err:
            logger.error("Cannot write alerts to %s: %s", config.jsonl, err)
            deliveries.append({"channel": "jsonl", "ok": False, "error": str(err)})
    if config.webhook:
        body = json.dumps({"alerts": [alert.to_dict() for alert in alerts]}, default=str).encode(
            "utf-8"
        )
        request = urllib.request.Request(
            config.webhook,
            data=body,
            headers={"Content-Type": "application/json", **config.webhook_headers},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=config.webhook_timeout) as response:
                status = response.status
            deliveries.append({"channel": "webhook", "ok": 200 <= status < 300, "status": status})
        except (urllib.error.URLError, OSError, ValueError) as err:
            logger.error("Cannot deliver alerts to %s: %s", config.webhook, err)
            deliveries.append({"channel": "webhook", "ok": False, "error": str(err)})
    return deliveries
