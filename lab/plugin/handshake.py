"""Master and workers agree on the Locust version, or the worker is sent away.

Locust itself only logs a warning when a worker of another version connects (and nothing at all for
another patch release), yet mixed versions can merge stats wrongly or fail mid-run. So each worker
says its version once its handlers are registered (the master never asks first: a question arriving
before the worker's init would make Locust log "Unknown message type"); the master judges a worker when
it connects and again at every later "client_ready" (Locust sends one after each stop). A worker
reporting another version, or none within VERSION_TIMEOUT seconds of connecting (it does not run the
lab plugin), is told why and asked to quit. The
worker logs the reason and exits with REFUSED_EXIT_CODE; one accepted touches LAB_WORKER_READY_FILE
when set, which the worker's healthcheck reads (compose/workers.yml).
"""

import logging
import os
from pathlib import Path

import gevent
from locust import __version__
from locust.runners import MasterRunner, WorkerRunner

logger = logging.getLogger(__name__)

REFUSED_EXIT_CODE = 3
VERSION_TIMEOUT = 10.0
READY_FILE_ENV = "LAB_WORKER_READY_FILE"
# Custom message types of Locust's master/worker protocol.
VERSION, ACCEPTED, REFUSED = "lab_version", "lab_accepted", "lab_refused"


def refusal(client_id: str, worker_version: str | None, master_version: str) -> str | None:
    """Why the master refuses this worker, or None when the versions match."""
    if worker_version == master_version:
        return None
    if worker_version is None:
        return (
            f"worker {client_id} did not report its Locust version within {VERSION_TIMEOUT:g}s "
            f"(it does not run the lab plugin); the master runs Locust {master_version}: "
            "start workers from the lab's image (lab workers up)"
        )
    return (
        f"worker {client_id} runs Locust {worker_version} but the master runs Locust {master_version}: "
        "start every worker from the master's image (the same LOCUST_IMAGE)"
    )


class MasterCheck:
    def __init__(self, runner) -> None:
        self.runner = runner
        self.version = __version__
        self.reported: dict[str, str] = {}
        runner.register_message(VERSION, self.on_version)

    def on_connect(self, client_id: str, **_kw) -> None:
        # A client id is one worker process: the version it reported holds for its later "client_ready"s.
        if client_id in self.reported:
            self.decide(client_id, self.reported[client_id])
        else:
            gevent.spawn_later(VERSION_TIMEOUT, self.check_reported, client_id)

    def on_version(self, msg, **_kw) -> None:
        self.reported[msg.node_id] = msg.data
        self.decide(msg.node_id, msg.data)

    def check_reported(self, client_id: str) -> None:
        if client_id in self.runner.clients and client_id not in self.reported:
            self.decide(client_id, None)

    def decide(self, client_id: str, version: str | None) -> None:
        reason = refusal(client_id, version, self.version)
        if reason is None:
            self.runner.send_message(ACCEPTED, client_id=client_id)
            return
        logger.error("lab: refused %s", reason)
        self.runner.send_message(REFUSED, reason, client_id=client_id)
        # Locust's own quit: the worker stops and, quitting, tells the master, which drops it.
        self.runner.send_message("quit", client_id=client_id)


def on_init(environment, runner=None, **_kw) -> None:
    if isinstance(runner, MasterRunner):
        check = MasterCheck(runner)
        environment.events.worker_connect.add_listener(check.on_connect)
    elif isinstance(runner, WorkerRunner):
        runner.register_message(ACCEPTED, lambda **_: _mark_ready())
        runner.register_message(REFUSED, lambda msg, **_: _refused(environment, msg.data))
        runner.send_message(VERSION, __version__)


def _mark_ready() -> None:
    path = os.environ.get(READY_FILE_ENV)
    if path:
        Path(path).touch()


def _refused(environment, reason: str) -> None:
    logger.error("lab: the master refused this worker: %s", reason)
    path = os.environ.get(READY_FILE_ENV)
    if path:
        Path(path).unlink(missing_ok=True)
    environment.process_exit_code = REFUSED_EXIT_CODE


def register(events) -> None:
    events.init.add_listener(on_init)
