"""Capacity search: judge each load step's steady window against the SLOs and decide whether to go
on. The search stops at the first step that breaches an objective, or at the knee, where extra users
stop buying throughput; the capacity is the last step that met every objective."""

from dataclasses import dataclass, field

from lab.core.slo import Objective, Verdict, Window, evaluate

CONTINUE, BREACH, KNEE, MAX_USERS = "continue", "breach", "knee", "max_users"


def is_knee(users: int, rps: float, next_users: int, next_rps: float, min_growth: float) -> bool:
    """The knee rule (the search's and the report's): the next step's added users bring less than
    `min_growth` of the requests/s they would at this step's rate per user."""
    added = next_users - users
    if added <= 0 or users <= 0 or rps <= 0:
        return False
    return next_rps - rps < min_growth * added * rps / users


@dataclass
class Step:
    users: int
    requests_per_second: float
    verdicts: list[Verdict]
    started_at: float  # unix seconds: the steady window, ramp excluded
    ended_at: float

    @property
    def passed(self) -> bool:
        return all(v.passed is not False for v in self.verdicts)

    @property
    def breached(self) -> list[str]:
        return [v.objective for v in self.verdicts if v.passed is False]

    def to_dict(self) -> dict:
        return {
            "users": self.users,
            "requests_per_second": self.requests_per_second,
            "passed": self.passed,
            "breached": self.breached,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "verdicts": [v.to_dict() for v in self.verdicts],
        }


@dataclass
class CapacitySearch:
    """Steps are judged on every objective but throughput minimums: those are about a whole run,
    and low steps are expected to be below them."""

    objectives: list[Objective]
    min_growth: float  # knee: the extra users of a step add less than this fraction of the
    # requests/s they would at the previous step's rate per user
    steps: list[Step] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    reason: str | None = None  # why the search ended: breach, knee, max_users (None: still going)

    def judge(self, users: int, window: Window, started_at: float, ended_at: float) -> str:
        """Record one step's steady window; CONTINUE, or why the search stops here."""
        step_objectives = [o for o in self.objectives if o.metric != "throughput"]
        rps = window.describe()["requests_per_second"]
        step = Step(users, rps, evaluate(step_objectives, window), started_at, ended_at)
        previous = self.steps[-1] if self.steps else None
        self.steps.append(step)
        self.windows.append(window)
        if not step.passed:
            self.reason = BREACH
        elif previous is not None and is_knee(
            previous.users,
            previous.requests_per_second,
            step.users,
            step.requests_per_second,
            self.min_growth,
        ):
            self.reason = KNEE
        return self.reason or CONTINUE

    def finish(self) -> None:
        """Every planned step ran without a breach or a knee."""
        self.reason = self.reason or MAX_USERS

    @property
    def capacity_index(self) -> int | None:
        best = None
        for index, step in enumerate(self.steps):
            if not step.passed:
                break
            best = index
        return best

    @property
    def capacity_window(self) -> Window | None:
        index = self.capacity_index
        return None if index is None else self.windows[index]

    def to_dict(self) -> dict:
        """capacity.json and Run.capacity: users and requests/s are None when no step met the SLOs."""
        index = self.capacity_index
        best = None if index is None else self.steps[index]
        return {
            "users": best.users if best else None,
            "requests_per_second": best.requests_per_second if best else None,
            "reason": self.reason,
            "min_growth": self.min_growth,
            "steps": [s.to_dict() for s in self.steps],
        }
