"""Open-model load: arrivals at a target rate, served by a pool of users.

A closed model (N users, each waiting for its response before it sends again) slows down with the
system under test, and the response times Locust records leave out the time a request would have
waited to be sent (coordinated omission). Here the `rate` scenario's shape (lab.plugin.shapes.Rate)
sets a target rate in arrivals (task executions) per second; the master splits it evenly over the
workers (a custom message to each), and on each worker (or the local runner) a scheduler greenlet
queues one arrival every 1/rate seconds, stamped with the time it was due. A user of the pool (a class
derived from ArrivalUser, or with `wait_time = arrivals()`) takes the oldest arrival when it is free and
runs one task; an arrival that finds no free user within `max_delay` seconds is dropped and counted.

Each request made while serving an arrival is also logged on a second clock, from its intended start:
its response time plus the arrival's lateness (the time it waited for a free user). Those go to a
Locust RequestStats of their own, sent to the master with the workers' reports (report_to_master /
worker_report, as Locust's own stats are) and merged there; Locust's own stats are left as they are.
"""

from __future__ import annotations

import logging
import time
import weakref

import gevent
from gevent.queue import Queue
from locust import User
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import RequestStats, StatsEntry

logger = logging.getLogger(__name__)

MESSAGE = "lab_arrival_rate"
REPORT_KEY = "lab_arrivals"
LATENESS = ("lateness", "ARRIVAL")  # the name and method of the lateness entry
TICK_SECONDS = 0.05  # the scheduler wakes at least this often, to follow rate changes and expire arrivals


class Totals:
    """Arrival counts and the intended-start distributions of one process since the last reset (a
    worker: since its last report)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.arrivals = 0
        self.dropped = 0
        self.intended = RequestStats(use_response_times_cache=False)
        self.late = RequestStats(use_response_times_cache=False)
        self.lateness = self.late.get(*LATENESS)
        # Per second, as Locust keeps requests (num_reqs_per_sec), for a step's rates (the rate search):
        # arrivals due and dropped by the second they were due, arrivals started by the second they started.
        self.due_per_sec: dict[int, int] = {}
        self.dropped_per_sec: dict[int, int] = {}
        self.started_per_sec: dict[int, int] = {}

    def per_second(self) -> tuple[dict[int, int], ...]:
        return self.due_per_sec, self.dropped_per_sec, self.started_per_sec

    def count_due(self, due: float) -> None:
        self.arrivals += 1
        self.due_per_sec[int(due)] = self.due_per_sec.get(int(due), 0) + 1

    def count_dropped(self, due: float) -> None:
        self.dropped += 1
        self.dropped_per_sec[int(due)] = self.dropped_per_sec.get(int(due), 0) + 1

    def count_started(self, now: float, late: float) -> None:
        self.started_per_sec[int(now)] = self.started_per_sec.get(int(now), 0) + 1
        self.lateness.log(late * 1000, 0)

    def report(self) -> dict:
        """What a worker sends the master; the counts start again from zero (as Locust's stats do)."""
        data = {
            "arrivals": self.arrivals,
            "dropped": self.dropped,
            "intended": [e.get_stripped_report() for e in self.intended.entries.values() if e.num_requests],
            "lateness": self.lateness.get_stripped_report(),
            "per_second": self.per_second(),
        }
        self.arrivals = self.dropped = 0
        self.due_per_sec, self.dropped_per_sec, self.started_per_sec = {}, {}, {}
        return data

    def merge(self, data: dict) -> None:
        """Add a worker's report (the master)."""
        self.arrivals += data["arrivals"]
        self.dropped += data["dropped"]
        for mine, theirs in zip(self.per_second(), data["per_second"], strict=True):
            for second, count in theirs.items():
                mine[second] = mine.get(second, 0) + count
        for serialized in data["intended"]:
            entry = StatsEntry.unserialize(serialized, self.intended)
            self.intended.get(entry.name, entry.method).extend(entry)
        self.lateness.extend(StatsEntry.unserialize(data["lateness"], self.late))


QUANTILES = {"p50_seconds": 0.5, "p95_seconds": 0.95, "p99_seconds": 0.99}  # as locust_stats.csv's columns


def percentiles(entry: StatsEntry) -> dict:
    """p50/p95/p99 of an entry in seconds by Locust's own percentile (as its CSV); None without samples."""
    return {
        key: entry.get_response_time_percentile(q) / 1000 if entry.num_requests else None
        for key, q in QUANTILES.items()
    }


def figures(totals: Totals) -> dict:
    """arrivals.json: a run's arrival counts and its second clock's percentiles, per request ("METHOD
    name", as lab.core.results keys Locust's own) and overall, with Locust's percentile function."""
    intended = {
        f"{e.method or ''} {e.name}".strip(): {"requests": e.num_requests, **percentiles(e)}
        for e in totals.intended.entries.values()
        if e.num_requests
    }
    return {
        "arrivals": totals.arrivals,
        "dropped": totals.dropped,
        "started": totals.lateness.num_requests,
        "lateness": percentiles(totals.lateness),
        "intended": {
            **dict(sorted(intended.items())),
            "overall": {"requests": totals.intended.total.num_requests, **percentiles(totals.intended.total)},
        },
    }


class Schedule:
    """The arrivals of one process (a worker or the local runner) and the users that serve them."""

    def __init__(self, totals: Totals) -> None:
        self.totals = totals
        self.queue: Queue = Queue()  # the due times (unix seconds) of arrivals waiting for a user
        self.rate = 0.0  # this process's share, arrivals per second
        self.max_delay = 1.0
        self.offered = 0.0  # the whole test's target rate (the master's), for the exporter
        self.greenlet = None
        self.sent: tuple | None = None  # the master's last message: (rate, max_delay, workers)
        self.serving: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # user greenlet -> lateness, s

    def set_rate(self, rate: float, max_delay: float) -> None:
        self.rate, self.max_delay = rate, max_delay
        if rate > 0 and self.greenlet is None:
            self.greenlet = gevent.spawn(self.run)

    def run(self) -> None:
        last = due = None  # the due times of the last arrival queued and of the next one
        rate = 0.0  # the rate `due` was reckoned at
        while True:
            now = time.time()
            if self.rate <= 0:
                last = due = None
            elif due is None or self.rate != rate:
                # A new rate (a ramp's next second) applies from the last arrival on, never before the change.
                due = now if last is None else max(last + 1 / self.rate, now)
            rate = self.rate
            # A late wake-up queues every arrival due by now, each with its own due time: nothing is
            # moved later, and the wait counts in the intended-start latency (or drops it).
            while due is not None and due <= now:
                self.totals.count_due(due)
                self.queue.put(due)
                last, due = due, due + 1 / rate
            self.expire(now)
            gevent.sleep(TICK_SECONDS if due is None else min(max(due - now, 0.0), TICK_SECONDS))

    def expire(self, now: float) -> None:
        """Drop the queued arrivals that have waited longer than max_delay for a free user."""
        while not self.queue.empty() and self.queue.peek_nowait() < now - self.max_delay:
            self.totals.count_dropped(self.queue.get_nowait())

    def take(self) -> None:
        """Block the calling user until an arrival is due for it (called from its wait time)."""
        while True:
            due = self.queue.get()
            now = time.time()
            late = now - due
            if late <= self.max_delay:
                break
            self.totals.count_dropped(due)
        self.serving[gevent.getcurrent()] = late
        self.totals.count_started(now, late)

    def stop(self) -> None:
        """The test ended: arrivals still waiting for a user (for less than max_delay) stay counted as due,
        neither served nor dropped."""
        if self.greenlet is not None:
            self.greenlet.kill(block=False)
            self.greenlet = None
        self.rate = 0.0
        self.queue = Queue()

    def on_request(self, request_type, name, response_time, **_kw) -> None:
        late = self.serving.get(gevent.getcurrent())
        if late is not None:
            self.totals.intended.log_request(request_type, name, response_time + late * 1000, 0)


_schedules: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # environment -> Schedule
_totals: weakref.WeakKeyDictionary = (
    weakref.WeakKeyDictionary()
)  # environment -> merged Totals (master/local)


def totals_of(environment) -> Totals | None:
    """The master's (or local runner's) arrival totals; None on a worker or before an open-model test."""
    return _totals.get(environment)


def offered_rate(environment) -> float:
    """The target arrivals per second of the test (the master's or local runner's)."""
    schedule = _schedules.get(environment)
    return schedule.offered if schedule is not None else 0.0


def _schedule(environment) -> Schedule:
    schedule = _schedules.get(environment)
    if schedule is None:
        local = not isinstance(environment.runner, WorkerRunner)
        totals = _totals.setdefault(environment, Totals()) if local else Totals()
        schedule = _schedules[environment] = Schedule(totals)
        environment.events.request.add_listener(schedule.on_request)
    return schedule


def set_rate(environment, rate: float, max_delay: float) -> None:
    """The test's target rate (arrivals/s), from the shape on the master or local runner."""
    runner = environment.runner
    schedule = _schedule(environment)
    if not isinstance(runner, MasterRunner):
        schedule.offered = rate
        schedule.set_rate(rate, max_delay)
        return
    workers = [c.id for c in runner.clients.values() if c.state != "missing"]
    sent = (rate, max_delay, tuple(workers))
    if schedule.sent == sent or not workers:
        return
    schedule.sent, schedule.offered = sent, rate
    for client_id in workers:
        runner.send_message(MESSAGE, {"rate": rate / len(workers), "max_delay": max_delay}, client_id)


def take(environment) -> None:
    _schedule(environment).take()


def arrivals():
    """A wait time that waits for the next arrival (the `rate` scenario): `wait_time = arrivals()`."""

    def wait_time(user) -> float:
        take(user.environment)
        return 0

    return wait_time


class ArrivalUser(User):
    """Mix into a user class to run it as the pool of the open model: `class Api(ArrivalUser, HttpUser)`.
    Each task execution waits for an arrival, the first one too; the tasks are unchanged."""

    abstract = True
    wait_time = arrivals()

    def run(self):
        take(self.environment)
        return super().run()


def uses_arrivals(user_class) -> bool:
    return issubclass(user_class, ArrivalUser)


# --- plugin wiring -------------------------------------------------------------------------------


def _on_init(environment, runner=None, **_kw) -> None:
    if runner is not None and not isinstance(runner, WorkerRunner):
        _totals.setdefault(environment, Totals())
    if isinstance(runner, WorkerRunner):

        def on_rate(msg, **_kw) -> None:
            _schedule(environment).set_rate(msg.data["rate"], msg.data["max_delay"])

        runner.register_message(MESSAGE, on_rate)


def _on_test_start(environment, **_kw) -> None:
    totals = _totals.get(environment)
    if totals is not None:
        totals.reset()


def _on_test_stop(environment, **_kw) -> None:
    schedule = _schedules.get(environment)
    if schedule is not None:
        schedule.stop()
        schedule.offered = 0.0
        schedule.sent = None


def _on_reset_stats() -> None:
    for totals in list(_totals.values()):
        totals.reset()


def _on_report_to_master(client_id, data, **_kw) -> None:
    for schedule in list(_schedules.values()):
        data[REPORT_KEY] = schedule.totals.report()


def _on_worker_report(client_id, data, **_kw) -> None:
    if REPORT_KEY in data:
        for totals in list(_totals.values()):
            totals.merge(data[REPORT_KEY])


def register(events) -> None:
    events.init.add_listener(_on_init)
    events.test_start.add_listener(_on_test_start)
    events.test_stop.add_listener(_on_test_stop)
    events.reset_stats.add_listener(_on_reset_stats)
    events.report_to_master.add_listener(_on_report_to_master)
    events.worker_report.add_listener(_on_worker_report)
