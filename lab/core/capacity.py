"""Capacity search: judge each load step's steady window against the SLOs and decide whether to go
on. The search stops at the first step that breaches an objective, or at the knee, where extra users
stop buying throughput; the capacity is the last step that met every objective.

A rate search (the open model, `rate-capacity`) steps up the offered rate in arrivals per second
instead of users: a step also fails when it falls short of its offered rate, by dropping arrivals or
by starting fewer than offered (each beyond `tolerance`); it has no knee."""

from dataclasses import dataclass, field

from lab.core.slo import Objective, Verdict, Window, evaluate

CONTINUE, BREACH, KNEE, MAX_USERS = "continue", "breach", "knee", "max_users"
# Why a rate search ends (BREACH too): arrivals dropped, fewer started than offered, the maximum rate ran clean.
DROPPED, SHORTFALL, MAX_RATE = "dropped", "shortfall", "max_rate"
AT_MAXIMUM = (MAX_USERS, MAX_RATE)  # the search ran every step: nothing ended it


def short_of(offered: float, achieved: float, arrivals: int, dropped: int, tolerance: float) -> str | None:
    """Why a rate step fell short of its offered rate (arrivals/s): DROPPED when more than `tolerance`
    of its arrivals were dropped, SHORTFALL when the arrivals it started came to less than
    (1 - tolerance) of the offered rate; None when it carried the offered rate."""
    if arrivals and dropped > tolerance * arrivals:
        return DROPPED
    if achieved < (1 - tolerance) * offered:
        return SHORTFALL
    return None


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
    arrivals: dict | None = None  # a rate step: offered_rate, achieved_rate (arrivals/s), arrivals, dropped
    short: str | None = None  # a rate step: DROPPED or SHORTFALL when it did not carry its offered rate

    @property
    def passed(self) -> bool:
        return self.short is None and all(v.passed is not False for v in self.verdicts)

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
            **({**self.arrivals, "short": self.short} if self.arrivals is not None else {}),
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
    tolerance: float | None = None  # a rate search: how far short of the offered rate a step may fall

    def judge(
        self,
        users: int,
        window: Window,
        started_at: float,
        ended_at: float,
        offered_rate: float | None = None,
        achieved_rate: float | None = None,
    ) -> str:
        """Record one step's steady window; CONTINUE, or why the search stops here. A rate search's step
        gives its offered rate and the rate of arrivals it started (arrivals/s); `window` holds its
        arrivals and drops, and the intended-start latency its SLOs are judged on."""
        step_objectives = [o for o in self.objectives if o.metric != "throughput"]
        rps = window.describe()["requests_per_second"]
        step = Step(users, rps, evaluate(step_objectives, window), started_at, ended_at)
        if offered_rate is not None:
            step.arrivals = {
                "offered_rate": offered_rate,
                "achieved_rate": achieved_rate,
                "arrivals": window.arrivals,
                "dropped": window.dropped,
            }
            step.short = short_of(
                offered_rate, achieved_rate or 0.0, window.arrivals, window.dropped, self.tolerance or 0.0
            )
        previous = self.steps[-1] if self.steps else None
        self.steps.append(step)
        self.windows.append(window)
        if not step.passed:
            self.reason = step.short or BREACH
        elif (
            offered_rate is None
            and previous is not None
            and is_knee(
                previous.users,
                previous.requests_per_second,
                step.users,
                step.requests_per_second,
                self.min_growth,
            )
        ):
            self.reason = KNEE
        return self.reason or CONTINUE

    def finish(self) -> None:
        """Every planned step ran without a breach or a knee (a rate search: without falling short)."""
        self.reason = self.reason or (MAX_USERS if self.tolerance is None else MAX_RATE)

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
        """capacity.json and Run.capacity: users and requests/s are None when no step met the SLOs; a
        rate search adds `rate`, the offered arrivals/s of that step (None likewise)."""
        index = self.capacity_index
        best = None if index is None else self.steps[index]
        result = {
            "users": best.users if best else None,
            "requests_per_second": best.requests_per_second if best else None,
            "reason": self.reason,
            "min_growth": self.min_growth,
            "steps": [s.to_dict() for s in self.steps],
        }
        if self.tolerance is not None:
            result["rate"] = best.arrivals["offered_rate"] if best else None
            result["tolerance"] = self.tolerance
        return result
