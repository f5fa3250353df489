"""Structured JSON logs on stdout: one object a line, one line a request."""

import json
import logging
import sys
import time

# LogRecord attributes that are not user-supplied `extra` fields (uvicorn adds an ANSI-coloured copy
# of some messages as `color_message`: useless in JSON).
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update((k, v) for k, v in vars(record).items() if k not in _STANDARD_ATTRS)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str) -> None:
    """Send every logger, uvicorn's included, through one JSON handler on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # RequestLogMiddleware logs each request with its route template; uvicorn's line would repeat it.
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False


class RequestLogMiddleware:
    """Logs one line a request: method, route template, path, status and duration.

    Probes and scrapes log at DEBUG so they do not drown the traffic under test.
    """

    QUIET_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})

    def __init__(self, app) -> None:
        self.app = app
        self.log = logging.getLogger("demoapi.request")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # if the app raises before answering, the server answers 500

        async def send_with_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            level = logging.DEBUG if scope["path"] in self.QUIET_PATHS else logging.INFO
            if self.log.isEnabledFor(level):
                route = scope.get("route")
                self.log.log(
                    level,
                    "request",
                    extra={
                        "method": scope["method"],
                        "route": getattr(route, "path", None),
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round((time.perf_counter() - start) * 1000, 3),
                    },
                )
