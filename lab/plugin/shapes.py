"""Load shapes of the lab's scenarios. Each LoadTestShape names its scenario and follows its plan
(lab.core.plans) built from the scenario's parameters when the test starts. The plugin offers them to
the web UI's class picker, `lab run` and `--scenario` (lab.plugin.scenarios); a locustfile need not
import them."""

import logging
import time
from dataclasses import dataclass

from locust import LoadTestShape
from locust.runners import WORKER_REPORT_INTERVAL, MasterRunner

from lab.core import scenarios, slo
from lab.core.capacity import CapacitySearch
from lab.core.plans import PLANS, Tick
from lab.core.slo import Window, count_in, requests_per_second
from lab.core.yamlconf import ConfigError
from lab.plugin import arrivals, runs
from lab.plugin.trim import TRIM_INTERVAL_SECONDS
from lab.plugin.verdicts import on_intended_clock, snapshot, window_between

logger = logging.getLogger(__name__)


def set_stage(environment, stage: str) -> None:
    run = runs.current(environment)
    if run is not None:
        run.stage = stage


class ScenarioShape(LoadTestShape):
    """Resolves the scenario's parameters when a test starts (the web UI form and the command line
    may have changed the overrides), then follows the plan."""

    abstract = True
    scenario = ""
    params: dict | None = None
    plan = None

    def reset_time(self):
        super().reset_time()
        environment = self.runner.environment
        try:
            self.params = scenarios.resolve(environment.parsed_options, self.scenario)
            self.plan = self.make_plan(environment)
        except ConfigError as exc:
            logger.error("scenario %s not started: %s", self.scenario, exc)
            if environment.parsed_options is not None and environment.parsed_options.headless:
                environment.process_exit_code = 1
            self.plan = None
            return
        logger.info("scenario %s: %s (%.0f s)", self.scenario, self.params, self.plan.duration)

    def make_plan(self, environment):
        """The timeline for the parameters just resolved (and any per-scenario setup)."""
        return PLANS[self.scenario](self.params)

    def tick(self):
        if self.plan is None:
            return None
        tick = self.plan.at(self.get_run_time())
        if tick is None:
            return None
        set_stage(self.runner.environment, tick.stage)
        return self.to_locust(tick)

    def to_locust(self, tick: Tick):
        closed = closed_classes(self.runner.environment)
        return (tick.users, tick.spawn_rate) if closed is None else (tick.users, tick.spawn_rate, closed)


def closed_classes(environment) -> list | None:
    """The user classes a closed scenario runs: the test's, less those that take arrivals (they would wait
    for arrivals a closed scenario never offers); None, Locust's own choice, when none takes arrivals."""
    classes = environment.user_classes
    closed = [c for c in classes if not arrivals.uses_arrivals(c)]
    return closed if closed and len(closed) < len(classes) else None


class Baseline(ScenarioShape):
    """Does it hold at normal load? Ramp to the normal user count and hold it."""

    scenario = "baseline"


class Stress(ScenarioShape):
    """Where does it break? Climb in steps past normal load to a peak and hold it."""

    scenario = "stress"


class Spike(ScenarioShape):
    """Does it recover from a surge? Normal load, a sudden surge, back to normal."""

    scenario = "spike"


class Soak(ScenarioShape):
    """Does it leak over hours? Ramp, then hold for hours."""

    scenario = "soak"


class Mixed(ScenarioShape):
    """What does each part of the mix cost? The workload built up class by class, phase by phase."""

    scenario = "mixed"

    def make_plan(self, environment):
        available = environment.available_user_classes or {}
        for name, classes in self.params["phases"].items():
            missing = [c for c in classes if c not in available]
            if missing:
                raise ConfigError(
                    f"mixed: phase {name!r} names user classes {missing} the locustfile does not define "
                    f"(it has: {', '.join(available)})"
                )
        return PLANS["mixed"](self.params, {name: cls.weight for name, cls in available.items()})

    def to_locust(self, tick: Tick):
        available = self.runner.environment.available_user_classes
        return tick.users, tick.spawn_rate, [available[name] for name in tick.user_classes]


class OpenModel(ScenarioShape):
    """A scenario of the open model: arrivals at the plan's target rate (lab.plugin.arrivals), served by a
    pool of the locustfile's user classes that derive from lab.shapes.ArrivalUser (the others are left
    out); late arrivals are dropped and counted."""

    abstract = True
    pool: list = []

    def make_plan(self, environment):
        available = environment.available_user_classes or {c.__name__: c for c in environment.user_classes}
        self.pool = [c for c in available.values() if arrivals.uses_arrivals(c)]
        if not self.pool:
            raise ConfigError(
                f"{self.scenario}: none of the user classes ({', '.join(available)}) takes arrivals; derive one "
                "from lab.shapes.ArrivalUser (class MyUser(ArrivalUser, HttpUser))"
            )
        return super().make_plan(environment)

    def to_locust(self, tick: Tick):
        arrivals.set_rate(self.runner.environment, tick.rate, self.params["max_delay"])
        return tick.users, tick.spawn_rate, self.pool


class Rate(OpenModel):
    """Can it take N requests per second? Arrivals at a target rate (ramped, then held)."""

    scenario = "rate"


class RateStress(OpenModel):
    """Where does it break, in requests per second? The arrival rate climbs in steps to a peak and holds."""

    scenario = "rate-stress"


class RateSpike(OpenModel):
    """Does it recover from a surge of requests? The normal rate, a surge, the normal rate again."""

    scenario = "rate-spike"


class RateSoak(OpenModel):
    """Does it leak over hours at a fixed rate? The rate ramped, then held for hours."""

    scenario = "rate-soak"


@dataclass
class _Measurement:
    """One capacity step's steady window as it is measured: Locust stats snapshots at its start (once
    the workers' reports of the ramp are in) and at its end."""

    step: int
    users: int
    steady_at: float  # unix seconds
    before: dict | None = None
    before_at: float = 0.0
    after: dict | None = None
    ended_at: float | None = None
    rate: float = 0.0  # a rate search: the step's offered arrivals/s


class Capacity(ScenarioShape):
    """How many users can we promise? Step the load up, judge each step's steady window against the
    SLOs, stop at the first breach or the knee; the capacity is the last step that met every SLO.

    On a master the workers' stats arrive every WORKER_REPORT_INTERVAL seconds, so the window's
    snapshots are taken that much into the steady part, and the step is judged that much after it
    ended, when its per-second request counts are complete."""

    scenario = "capacity"
    search = None

    def make_plan(self, environment):
        self.lag = WORKER_REPORT_INTERVAL + 0.5 if isinstance(environment.runner, MasterRunner) else 0.0
        self.lag += self.params.get("max_delay", 0.0)  # a rate step's last arrivals: started or dropped
        steady = self.params["step_duration"] - self.params["ramp"]
        if self.params["ramp"] < self.lag or steady < 2 * self.lag:
            raise ConfigError(
                f"{self.scenario}: ramp must be at least {self.lag:g} s and step_duration - ramp at least "
                f"{2 * self.lag:g} s (workers report their stats every {WORKER_REPORT_INTERVAL:g} s; "
                "a rate step's last arrivals start or drop within max_delay)"
            )
        # A step's requests/s come from the master's per-second counts, which lab.plugin.trim keeps for a window.
        history = getattr(environment.parsed_options, "lab_history_seconds", 0) or 0
        if history and self.params["step_duration"] + self.lag + TRIM_INTERVAL_SECONDS > history:
            raise ConfigError(
                f"{self.scenario}: step_duration must be under {history - self.lag - TRIM_INTERVAL_SECONDS:g} s, the "
                "per-second stats the master keeps: shorten it or raise LOCUST_LAB_HISTORY_SECONDS"
            )
        self.search = self.new_search(slo.objectives_of(environment.parsed_options))
        self._measuring: _Measurement | None = None
        self._measured = -1  # the last step whose steady window was measured
        self._last = None
        return super().make_plan(environment)

    def tick(self):
        if self.plan is None:
            return None
        environment = self.runner.environment
        now = time.time()
        tick = self.plan.at(self.get_run_time())
        m = self._measuring
        if m is not None:
            if m.before is None and now >= m.steady_at + self.lag:
                m.before, m.before_at = self.snapshot(environment), now
            if m.ended_at is None and (tick is None or tick.step != m.step):
                m.after, m.ended_at = self.snapshot(environment), now
                if m.before is None:  # a steady part shorter than the lag: an empty window
                    m.before, m.before_at = m.after, now
            starts_next = tick is not None and tick.stage == "steady" and tick.step != m.step
            if m.ended_at is not None and (now >= m.ended_at + self.lag or starts_next):
                self._measuring = None
                if self._judge(environment, m) != "continue":
                    return None
        if tick is None:
            if self._measuring is not None:
                return self._last  # hold the load until the last step's reports are in
            self.search.finish()
            self._publish(environment)
            return None
        if tick.stage == "steady" and self._measuring is None and tick.step > self._measured:
            self._measuring = _Measurement(tick.step, tick.users, now, rate=tick.rate)
            self._measured = tick.step
        set_stage(environment, tick.stage)
        self._last = self.to_locust(tick)
        return self._last

    def new_search(self, objectives) -> CapacitySearch:
        return CapacitySearch(objectives, self.params["min_growth"])

    def snapshot(self, environment):
        """What a step's window is measured from, at its start and at its end."""
        return snapshot(environment.stats)

    def window(self, environment, m: _Measurement) -> Window:
        window = window_between(m.before, m.after, m.ended_at - m.before_at)
        window.rate = requests_per_second(environment.stats.total.num_reqs_per_sec, m.steady_at, m.ended_at)
        return window

    def _judge(self, environment, m: _Measurement) -> str:
        decision = self.search.judge(m.users, self.window(environment, m), m.steady_at, m.ended_at)
        step = self.search.steps[-1]
        logger.info(
            "capacity step %d users: %.1f requests/s, %s -> %s",
            m.users,
            step.requests_per_second,
            "SLOs met" if step.passed else "breached " + ", ".join(step.breached),
            decision,
        )
        self._publish(environment)
        return decision

    def _publish(self, environment) -> None:
        run = runs.current(environment)
        if run is not None:
            run.capacity = self.search.to_dict()


class RateCapacity(OpenModel, Capacity):
    """How many requests per second can we promise? Step the offered rate up, judge each step's steady
    window, stop at the first step that falls short of its offered rate (dropped arrivals, or fewer
    started, beyond `tolerance`) or breaches the SLOs, judged on the intended-start latency (the clock
    that includes the wait for a free user); the capacity is the last step that carried its rate and
    met every SLO, in arrivals/s offered and requests/s achieved."""

    scenario = "rate-capacity"

    def new_search(self, objectives) -> CapacitySearch:
        return CapacitySearch(objectives, min_growth=0.0, tolerance=self.params["tolerance"])

    def snapshot(self, environment):
        totals = arrivals.totals_of(environment)
        return snapshot(environment.stats), snapshot(totals.intended)

    def window(self, environment, m: _Measurement) -> Window:
        (before, intended_before), (after, intended_after) = m.before, m.after
        window = window_between(before, after, m.ended_at - m.before_at)
        window.rate = requests_per_second(environment.stats.total.num_reqs_per_sec, m.steady_at, m.ended_at)
        intended = window_between(intended_before, intended_after, m.ended_at - m.before_at)
        on_intended_clock(window, intended.response_times)
        totals = arrivals.totals_of(environment)
        window.arrivals = count_in(totals.due_per_sec, m.steady_at, m.ended_at)
        window.dropped = count_in(totals.dropped_per_sec, m.steady_at, m.ended_at)
        return window

    def _judge(self, environment, m: _Measurement) -> str:
        totals = arrivals.totals_of(environment)
        achieved = requests_per_second(totals.started_per_sec, m.steady_at, m.ended_at)
        decision = self.search.judge(
            m.users,
            self.window(environment, m),
            m.steady_at,
            m.ended_at,
            offered_rate=m.rate,
            achieved_rate=achieved,
        )
        step = self.search.steps[-1]
        logger.info(
            "rate capacity step %g arrivals/s offered: %.1f started/s, %d of %d dropped, %.1f requests/s, %s -> %s",
            m.rate,
            achieved or 0.0,
            step.arrivals["dropped"],
            step.arrivals["arrivals"],
            step.requests_per_second,
            step.short or ("SLOs met" if step.passed else "breached " + ", ".join(step.breached)),
            decision,
        )
        self._publish(environment)
        return decision


SHAPES = {
    cls.scenario: cls
    for cls in (
        Baseline,
        Stress,
        Spike,
        Soak,
        Capacity,
        Mixed,
        Rate,
        RateStress,
        RateSpike,
        RateSoak,
        RateCapacity,
    )
}
# Locust's loader takes every non-abstract LoadTestShape in a locustfile's namespace and runs the first
# one found: marked abstract, the lab's shapes imported into a locustfile never shadow its own shape.
for _shape in SHAPES.values():
    _shape.abstract = True
