"""The timelines of the scenarios' load shapes, pure: `plan.at(seconds) -> Tick | None` (None: the
test is over). lab.plugin.shapes turns them into Locust LoadTestShapes; here they can be tested by feeding
them time, without Locust."""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Tick:
    users: int
    spawn_rate: float
    stage: str
    step: int = 0  # capacity: the step's index
    user_classes: tuple[str, ...] = ()  # mixed: the phase's user classes (empty: all)
    rate: float = 0.0  # rate: the target arrivals per second (open model); users is then the pool


def _ramp_rate(users: int, ramp: float) -> float:
    """The spawn rate that reaches `users` in `ramp` seconds (at once when there is no ramp)."""
    return users / ramp if ramp > 0 else float(users)


class Plan:
    """Stages one after the other: (seconds, users, spawn_rate, stage, user_classes), and for the open
    model a sixth item, the target arrivals/s."""

    def __init__(self, stages: list[tuple]):
        self.stages = stages
        self.duration = sum(s[0] for s in stages)

    def at(self, t: float) -> Tick | None:
        end = 0.0
        for seconds, users, spawn_rate, stage, classes, *arrivals in self.stages:
            end += seconds
            if t < end:
                return Tick(
                    users, spawn_rate, stage, user_classes=classes, rate=arrivals[0] if arrivals else 0.0
                )
        return None


def baseline_plan(p: dict) -> Plan:
    rate = _ramp_rate(p["users"], p["ramp"])
    return Plan([(p["ramp"], p["users"], rate, "ramp", ()), (p["duration"], p["users"], rate, "steady", ())])


soak_plan = baseline_plan  # the same shape: what differs is how long it holds (hours) and what is judged


def stress_plan(p: dict) -> Plan:
    steps = [
        (p["step_duration"], math.ceil(p["users"] * k / p["steps"]), p["spawn_rate"], "ramp", ())
        for k in range(1, p["steps"] + 1)
    ]
    return Plan([*steps, (p["duration"], p["users"], p["spawn_rate"], "peak", ())])


def spike_plan(p: dict) -> Plan:
    rate = p["spawn_rate"]
    return Plan(
        [
            (p["warmup"], p["users"], rate, "warmup", ()),
            (p["surge"], p["spike_users"], rate, "surge", ()),
            (p["recovery"], p["users"], rate, "recovery", ()),
        ]
    )


def mixed_plan(p: dict, weights: dict[str, float]) -> Plan:
    """The workload built up class by class: each phase lists the user classes running in it (the
    previous phase's and more); its user count is their share of `users` by class weight, and the
    users it adds are of the classes it adds (Locust spawns new users from the tick's classes)."""
    phases = list(p["phases"].items())
    total = sum(weights[c] for c in phases[-1][1])
    rate = _ramp_rate(p["users"], p["ramp"])
    stages, running = [], []
    for name, classes in phases:
        users = max(1, round(p["users"] * sum(weights[c] for c in classes) / total))
        added = tuple(c for c in classes if c not in running)
        if not stages:
            stages.append((p["ramp"], users, rate, "ramp", added))
        stages.append((p["duration"], users, rate, name, added))
        running = classes
    return Plan(stages)


class CapacityPlan:
    """Steps of `step_duration` seconds from start_users up by step_users to users (the maximum); the
    first `ramp` seconds of each step are its ramp, the rest its steady window."""

    def __init__(self, p: dict):
        self.p = p
        self.users = list(range(p["start_users"], p["users"], p["step_users"])) + [p["users"]]
        self.steps = len(self.users)
        self.duration = self.steps * p["step_duration"]

    def at(self, t: float) -> Tick | None:
        step = int(t // self.p["step_duration"])
        if step >= self.steps:
            return None
        stage = "ramp" if t - step * self.p["step_duration"] < self.p["ramp"] else "steady"
        return self.tick(step, stage)

    def tick(self, step: int, stage: str) -> Tick:
        return Tick(self.users[step], self.p["spawn_rate"], stage, step=step)


class RatePlan:
    """The open model: the target rate climbs linearly from 0 to `rate` arrivals/s over `ramp`, then holds
    for `duration`; the pool of `users` is started at once (idle users cost nothing but memory)."""

    def __init__(self, p: dict):
        self.p = p
        self.duration = p["ramp"] + p["duration"]

    def at(self, t: float) -> Tick | None:
        p = self.p
        if t >= self.duration:
            return None
        if t < p["ramp"]:
            return Tick(p["users"], float(p["users"]), "ramp", rate=p["rate"] * t / p["ramp"])
        return Tick(p["users"], float(p["users"]), "steady", rate=p["rate"])


def rate_stages(users: int, stages: list[tuple[float, float, str]]) -> Plan:
    """The open model in stages of (seconds, arrivals/s, stage): the rate changes at once from stage to
    stage; the pool of `users` is started at once and kept."""
    return Plan([(seconds, users, float(users), stage, (), rate) for seconds, rate, stage in stages])


def rate_stress_plan(p: dict) -> Plan:
    """stress in arrivals/s: equal steps up to the peak `rate`, then the peak held."""
    steps = [(p["step_duration"], p["rate"] * k / p["steps"], "ramp") for k in range(1, p["steps"] + 1)]
    return rate_stages(p["users"], [*steps, (p["duration"], p["rate"], "peak")])


def rate_spike_plan(p: dict) -> Plan:
    """spike in arrivals/s: the normal rate, a surge at `spike_rate`, the normal rate again."""
    return rate_stages(
        p["users"],
        [
            (p["warmup"], p["rate"], "warmup"),
            (p["surge"], p["spike_rate"], "surge"),
            (p["recovery"], p["rate"], "recovery"),
        ],
    )


class RateCapacityPlan(CapacityPlan):
    """The rate search: steps of `step_duration` seconds offering start_rate, then up by step_rate to
    `rate` (the maximum) arrivals/s, by the pool of `users`; the first `ramp` seconds of each step are
    left out of its judgement (the pool settling at the new rate), the rest is its steady window."""

    def __init__(self, p: dict):
        self.p = p
        count = math.floor((p["rate"] - p["start_rate"]) / p["step_rate"] + 1e-9) + 1
        rates = [p["start_rate"] + k * p["step_rate"] for k in range(count)]
        self.rates = [r for r in rates if r < p["rate"]] + [p["rate"]]
        self.steps = len(self.rates)
        self.duration = self.steps * p["step_duration"]

    def tick(self, step: int, stage: str) -> Tick:
        users = self.p["users"]
        return Tick(users, float(users), stage, step=step, rate=self.rates[step])


PLANS = {
    "baseline": baseline_plan,
    "stress": stress_plan,
    "spike": spike_plan,
    "soak": soak_plan,
    "capacity": CapacityPlan,
    "mixed": mixed_plan,
    "rate": RatePlan,
    "rate-stress": rate_stress_plan,
    "rate-spike": rate_spike_plan,
    "rate-soak": RatePlan,  # rate's shape, held for hours
    "rate-capacity": RateCapacityPlan,
}
