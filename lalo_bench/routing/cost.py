"""The one definition of what an item costs, used by calibration, curves and the policy.

Cost of an item on a model = the device-seconds it occupied the sweep's tier: its measured
end-to-end time (``e2e_ms`` of the per-item record, queueing + prefill + decode) ÷ 1000. A sweep runs
one request at a time, so this is the time the whole device was busy with that request. It needs no
price assumption, and between models on one tier it is in proportion to what the hardware costs to run:
multiply by a tier's amortised $/s (``price_usd`` and ``power_w`` in the catalog) to get money.

An item with no timing (it failed before generating, e.g. a chat template without tool support) is
charged the median cost of that model's other items: a request routed there would still hold a slot.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COST_UNIT = "device-s"
"""How costs print: device-seconds per item on the sweep's tier."""


def item_costs(e2e_ms: pd.Series) -> pd.Series:
    """Device-seconds per item from measured e2e times; gaps filled with the median of the others (NaN if none)."""
    seconds = pd.to_numeric(e2e_ms, errors="coerce") / 1000.0
    median = seconds.median()
    return seconds.fillna(median if np.isfinite(median) else np.nan)


def item_latency_ms(e2e_ms: pd.Series) -> pd.Series:
    """Per-item latency for the p95 axis: the same e2e time in ms, gaps filled the same way."""
    return item_costs(e2e_ms) * 1000.0
