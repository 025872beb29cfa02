"""The ``modelshelf`` command."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelshelf",
        description="A model store that speaks TensorFlow.js's save/load protocol.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the server",
        description="Run the modelshelf server. With no configuration it stores models in "
        "./data: 'file' (plain files), 'indexeddb' and 'localstorage' (SQLite).",
    )
    from service.cli import add_serve_arguments

    add_serve_arguments(serve)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from service.cli import serve

        serve(args)
