"""Registers every command group on the application (imported by ``mlwright.cli``).

Each line imports one module of commands; keep them free of heavy imports.
"""

from __future__ import annotations

from mlwright.cli import (
    _data_commands,  # noqa: E402,F401  profile, check, run
    _evaluate_commands,  # noqa: E402,F401  evaluate, compare, explain, report
    _experiment_commands,  # noqa: E402,F401  experiment plan|start|status|analyze|stop|outcomes
    _export_commands,  # noqa: E402,F401  export
    _model_commands,  # noqa: E402,F401  train, predict
    _monitor_commands,  # noqa: E402,F401  monitor, feedback, retrain
    _registry_commands,  # noqa: E402,F401  models, reproduce
    _serve_commands,  # noqa: E402,F401  serve
)
