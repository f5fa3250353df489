"""The lab's load shapes, where users' locustfiles import them from (`from lab.shapes import Baseline`)."""

from lab.plugin.arrivals import ArrivalUser, arrivals  # noqa: F401
from lab.plugin.shapes import SHAPES, Baseline, Capacity, Mixed, Rate, Soak, Spike, Stress  # noqa: F401
