"""The lab's load shapes for locustfiles that import them (`from lab.shapes import Baseline`): for a
subclass, or from locustfiles written before the plugin offered the shapes itself (lab.plugin.scenarios).
Imported, they do not shadow a locustfile's own shape (they are abstract to Locust's loader)."""

from lab.plugin.arrivals import ArrivalUser, arrivals  # noqa: F401
from lab.plugin.shapes import (  # noqa: F401
    SHAPES,
    Baseline,
    Capacity,
    Mixed,
    Rate,
    RateCapacity,
    RateSoak,
    RateSpike,
    RateStress,
    Soak,
    Spike,
    Stress,
)
