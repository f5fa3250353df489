"""The lab's load shapes, where users' locustfiles import them from (`from lab.shapes import Baseline`)."""

from lab.plugin.shapes import SHAPES, Baseline, Capacity, Mixed, Soak, Spike, Stress  # noqa: F401
