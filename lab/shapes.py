"""Load shapes of the lab's scenarios. Each LoadTestShape names its scenario and follows its plan
(lab.plans) built from the scenario's parameters when the test starts. Import the shapes into a
locustfile to offer them in the web UI's class picker and to `lab run` / `--scenario`."""

import logging
import time

from lab import scenarios
from lab.plans import PLANS, Tick
from lab.yamlconf import ConfigError
from locust import LoadTestShape

logger = logging.getLogger(__name__)


def set_stage(environment, stage: str) -> None:
    from lab import runs

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
            self.plan = PLANS[self.scenario](self.params)
            self.prepare(environment)
        except ConfigError as exc:
            logger.error("scenario %s not started: %s", self.scenario, exc)
            self.plan = None
            return
        logger.info("scenario %s: %s (%.0f s)", self.scenario, self.params, self.plan.duration)

    def prepare(self, environment) -> None:
        """Per-scenario setup once the parameters are known."""

    def tick(self):
        if self.plan is None:
            return None
        tick = self.plan.at(self.get_run_time())
        if tick is None:
            return None
        set_stage(self.runner.environment, tick.stage)
        return self.to_locust(tick)

    def to_locust(self, tick: Tick):
        return tick.users, tick.spawn_rate


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
    """How does the mix matter? Phases with different user classes at the same user count."""

    scenario = "mixed"

    def prepare(self, environment) -> None:
        available = environment.available_user_classes or {}
        for name, classes in self.params["phases"].items():
            missing = [c for c in classes if c not in available]
            if missing:
                raise ConfigError(
                    f"mixed: phase {name!r} names user classes {missing} the locustfile does not define "
                    f"(it has: {', '.join(available)})"
                )

    def to_locust(self, tick: Tick):
        available = self.runner.environment.available_user_classes
        return tick.users, tick.spawn_rate, [available[name] for name in tick.user_classes]


class Capacity(ScenarioShape):
    """How many users can we promise? Step the load up, judge each step's steady window against the
    SLOs, stop at the first breach or the knee; the capacity is the last step that met every SLO."""

    scenario = "capacity"
    search = None

    def prepare(self, environment) -> None:
        from lab import slo
        from lab.capacity import CapacitySearch

        self.search = CapacitySearch(slo.load(environment.parsed_options.slo_file), self.params["min_growth"])
        self._steady = None  # (step, users, snapshot, unix time) of the steady window being measured

    def tick(self):
        if self.plan is None:
            return None
        environment = self.runner.environment
        tick = self.plan.at(self.get_run_time())
        if self._steady is not None and (tick is None or tick.step != self._steady[0]):
            if self._judge(environment) != "continue":
                return None
        if tick is None:
            self.search.finish()
            self._publish(environment)
            return None
        if tick.stage == "steady" and self._steady is None:
            from lab.slo import Window

            self._steady = (tick.step, tick.users, Window.snapshot(environment.stats), time.time())
        set_stage(environment, tick.stage)
        return tick.users, tick.spawn_rate

    def _judge(self, environment) -> str:
        from lab.slo import Window

        _step, users, before, started_at = self._steady
        self._steady = None
        now = time.time()
        window = Window.between(before, Window.snapshot(environment.stats), now - started_at)
        decision = self.search.judge(users, window, started_at, now)
        step = self.search.steps[-1]
        logger.info(
            "capacity step %d users: %.1f requests/s, %s -> %s",
            users,
            step.requests_per_second,
            "SLOs met" if step.passed else "breached " + ", ".join(step.breached),
            decision,
        )
        self._publish(environment)
        return decision

    def _publish(self, environment) -> None:
        from lab import runs

        run = runs.current(environment)
        if run is not None:
            run.capacity = self.search.to_dict()


SHAPES = {cls.scenario: cls for cls in (Baseline, Stress, Spike, Soak, Capacity, Mixed)}
