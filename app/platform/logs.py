"""Structured logs: one JSON object per line, carrying the request id of the request that logged it.

`confrere serve` installs LOG_CONFIG. The access line is ours (RequestContextMiddleware), not uvicorn's:
it has the request id, and it leaves out the query string, where a filter value could be personal data.
What is never logged: bodies, tokens, passwords, sealed content (none of it reaches a log call), and the
parameters of failed SQL statements (the engine hides them: app.runtime.database).
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
ACCESS = logging.getLogger("confrere.access")
# Fields a log call may add with `extra=`; anything else passed that way is left out of the line.
FIELDS = ("method", "path", "route", "status", "duration_ms")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id:
            line["request_id"] = request_id
        line |= {name: getattr(record, name) for name in FIELDS if hasattr(record, name)}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    # Named, not referenced, so that the configuration is also a JSON file (uvicorn --log-config).
    "formatters": {"json": {"()": f"{JsonFormatter.__module__}.{JsonFormatter.__qualname__}"}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    },
    "root": {"handlers": ["stderr"], "level": "INFO"},
    "loggers": {
        "uvicorn": {"handlers": [], "propagate": True},
        "uvicorn.error": {"handlers": [], "propagate": True},
        # Replaced by confrere.access (request id, no query string).
        "uvicorn.access": {"handlers": [], "propagate": False, "level": "CRITICAL"},
    },
}


def log_access(method: str, path: str, route: str, status: int, duration: float) -> None:
    """One line per request, so its record is built directly: `Logger.info` would also look for its caller
    in the stack and check each `extra` field against the record's own, a third of the line's cost."""
    if not ACCESS.isEnabledFor(logging.INFO):
        return
    message = (method, route, status)
    record = logging.LogRecord(ACCESS.name, logging.INFO, __file__, 0, "%s %s %s", message, None)
    record.method, record.path, record.route, record.status = method, path, route, status
    record.duration_ms = round(duration * 1000, 1)
    ACCESS.handle(record)
