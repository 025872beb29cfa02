"""Logging for ``modelshelf serve``: uvicorn's configuration, with tokens redacted.

A token reaches the access log in the request line when a loader sends ``?token=`` (share
links, TF.js copying the query onto weight URLs). Every handler gets the filter, so no line
of any logger shows one. Bearer headers are never logged at all.

With ``log_format="json"`` every record is one JSON object per line, and the access lines
come from ``JsonAccessLog`` (uvicorn's own access log is off, so each request is logged once).
"""

from __future__ import annotations

import copy
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from modelshelf.service.observing import Exchange

REDACTED = "REDACTED"
ACCESS_LOGGER = "modelshelf.access"
ACCESS_FIELDS = "access_fields"  # the LogRecord attribute JsonLines merges into the line
_TOKEN_PARAMETER = re.compile(r"(?<=[?&;]token=)[^&\s\"]*")
_ISSUED_TOKEN = re.compile(r"msk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


def redact(text: str) -> str:
    """``text`` with every ``token=`` value and every issued token replaced."""
    return _ISSUED_TOKEN.sub(REDACTED, _TOKEN_PARAMETER.sub(REDACTED, text))


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and any access fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, ACCESS_FIELDS, {}),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        # Redacted again as a whole: a traceback or an extra field may quote a URL.
        return redact(json.dumps(line, ensure_ascii=False))


class JsonAccessLog:
    """The ``ExchangeObserver`` that writes one access line per finished exchange."""

    def __init__(self) -> None:
        self.logger = logging.getLogger(ACCESS_LOGGER)

    def started(self, exchange: Exchange) -> None:
        pass

    def finished(self, exchange: Exchange) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        target = redact(f"{exchange.path}?{exchange.query}" if exchange.query else exchange.path)
        fields = {
            "request_id": exchange.request_id,
            "method": exchange.method,
            "path": target,
            "route": exchange.route.template,
            "store": exchange.store,
            "status": exchange.status,
            "bytes_sent": exchange.bytes_sent,
            "bytes_received": exchange.bytes_received,
            "duration_seconds": round(exchange.duration_seconds, 6),
            "client": exchange.client,
        }
        message = "%s %s %d"
        self.logger.info(
            message, exchange.method, target, exchange.status, extra={ACCESS_FIELDS: fields}
        )


def log_config(log_format: str = "text", log_level: str = "info") -> dict[str, Any]:
    """uvicorn's logging configuration, every handler filtered through RedactTokens.

    ``text`` is uvicorn's default; ``json`` formats every handler's lines with JsonLines and
    sends modelshelf's own records (its access lines too) through the same handlers.
    """
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_tokens": {"()": RedactTokens}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact_tokens"]
    if log_format == "json":
        config["formatters"] = {"json": {"()": JsonLines}}
        for handler in config["handlers"].values():
            handler["formatter"] = "json"
        level = log_level.upper()
        loggers = config["loggers"]
        loggers["modelshelf"] = {"handlers": ["default"], "level": level, "propagate": False}
        loggers[ACCESS_LOGGER] = {"handlers": ["access"], "level": level, "propagate": False}
    return config
