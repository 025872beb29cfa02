"""Logging for ``modelshelf serve``: uvicorn's configuration, with tokens redacted.

A token reaches the access log in the request line when a loader sends ``?token=`` (share
links, TF.js copying the query onto weight URLs). Every handler gets the filter, so no line
of any logger shows one.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

REDACTED = "REDACTED"
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


def log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration, every handler filtered through RedactTokens."""
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_tokens": {"()": RedactTokens}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact_tokens"]
    return config
