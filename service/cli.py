"""Start the server: ``modelshelf serve`` and ``python -m modelshelf.service``."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uvicorn

# Installed by `pip install "modelshelf[server]"`; the SDK alone has none of them.
SERVER_EXTRA = 'pip install "modelshelf[server]"'


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="interface to bind (default 127.0.0.1, or MODELSHELF_HOST)")
    parser.add_argument("--port", type=int, help="port (default 8000, or MODELSHELF_PORT)")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (MODELSHELF_CONFIG)")
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes, one per core (default 1, or MODELSHELF_WORKERS)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="text, or json: one JSON object per log line (default text, or MODELSHELF_LOG_FORMAT)",
    )


def serve(args: argparse.Namespace) -> None:
    """Run uvicorn with the app built from the settings."""
    try:
        import uvicorn
        from uvicorn.config import STARTUP_FAILURE

        from modelshelf.service.arenas import limit_malloc_arenas
        from modelshelf.service.server import server_config
        from modelshelf.service.settings import load_settings
    except ModuleNotFoundError as error:
        raise SystemExit(
            f"modelshelf: serving needs the server extra, which is not installed "
            f"({error.name} is missing): {SERVER_EXTRA}"
        ) from None

    limit_malloc_arenas()  # before any store thread allocates; workers inherit it
    try:
        overrides = {
            name: getattr(args, name)
            for name in ("workers", "log_format")
            if getattr(args, name, None)
        }
        settings = load_settings(args.config, **overrides)
        config = server_config(settings, host=args.host, port=args.port, log_level=args.log_level)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"modelshelf: {_settings_problem(error)}") from None
    stores = ", ".join(settings.store_urls())
    mode = settings.model_copy(update={"host": config.host}).auth_mode()  # the address bound
    access = "tokens required" if mode == "tokens" else "no tokens needed"
    workers = f", {config.workers} workers" if config.workers > 1 else ""
    started = f"stores {stores} on http://{config.host}:{config.port}, {access}{workers}"
    if settings.log_format == "json":  # uvicorn.Config has configured the JSON handlers
        logging.getLogger("modelshelf").info(started)
    else:
        print(f"modelshelf: {started}")
    server = uvicorn.Server(config)
    if config.workers > 1:
        _run_workers(config)
        return
    server.run()
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)


def _run_workers(config: uvicorn.Config) -> None:
    from modelshelf.service.multiprocess_metrics import (
        MetricsAwareMultiprocess,
        worker_metrics_directory,
    )

    with worker_metrics_directory():
        MetricsAwareMultiprocess(config, sockets=[config.bind_socket()]).run()


def _settings_problem(error: Exception) -> str:
    """What is wrong with the settings, without pydantic's echo of every input value."""
    problems = getattr(error, "errors", None)
    if not callable(problems):
        return str(error)
    lines = []
    for problem in problems():
        where = ".".join(str(part) for part in problem.get("loc", ()))
        message = str(problem["msg"]).removeprefix("Value error, ")
        lines.append(f"MODELSHELF_{where.upper()}: {message}" if where else message)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m modelshelf.service", description="Run the modelshelf server."
    )
    add_serve_arguments(parser)
    serve(parser.parse_args(argv))
