"""The error every experiment mistake raises."""

from __future__ import annotations

from mlwright.errors import MlwrightError


class ExperimentError(MlwrightError):
    """An experiment cannot be planned, started, routed or analysed as asked.

    The message names the experiment, option or value at fault and how to fix it.
    """
