"""The ``modelshelf`` command: run the server, move models in and out of it, hand out tokens.

Exit codes: 0 done, 1 failed (the message says why), 2 usage error, 3 not found,
4 server unreachable, 5 not allowed (no valid token, a scope the token lacks, or too many
failed attempts).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, get_args

from modelshelf._terminal import ProgressCallback, print_table, progress_bar, size_text
from modelshelf.schemas.artifacts import QuantizationDtype
from modelshelf.schemas.maintenance import DEFAULT_GC_AGE_SECONDS
from modelshelf.schemas.tokens import TEN_YEARS_SECONDS

EXIT_FAILED, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_UNREACHABLE, EXIT_NOT_ALLOWED = 1, 2, 3, 4, 5
EPILOG = """model URLs are written as TF.js writes them: STORE://NAME, e.g. indexeddb://my-model,
file://team/resnet, s3://prod/classifier. The server is --server or MODELSHELF_URL
(default http://127.0.0.1:8000); the token, when it asks for one, --token or MODELSHELF_TOKEN.

exit codes: 0 done, 1 failed, 2 usage error, 3 not found, 4 server unreachable,
5 not allowed (no valid token, a scope the token lacks, or too many failed attempts)"""
DURATION_FORMS = "90 (seconds), 30s, 15m, 1h, 7d or 2w"
_DURATION = re.compile(r"([0-9]+)([smhdw]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
SIZE_FORMS = "4194304 (bytes), 512KiB or 4MiB"
_SIZE = re.compile(r"([0-9]+) ?(KiB|MiB)?", re.IGNORECASE)
_UNIT_BYTES = {"": 1, "kib": 1 << 10, "mib": 1 << 20}
# the schema's quantization dtypes, in the order people pick them
QUANTIZE_CHOICES = sorted(get_args(QuantizationDtype), key=lambda d: (d[0] == "u", len(d)))
SCOPE_HELP = (
    "ACTION:STORE[/NAME]: ACTION is read, write, delete or admin; STORE a store or *; NAME a "
    "model name, or a prefix ending in *. Repeat for more scopes"
)
_EXAMPLES = {
    "pull": """examples:
  modelshelf pull indexeddb://my-model ./my-model
  modelshelf pull indexeddb://my-model ./small --quantize float16
  modelshelf pull indexeddb://my-model ./small --version prod --quantize uint8 --shard-bytes 1MiB

With --quantize or --shard-bytes the folder holds a view of the version, made by the server
on the first request and kept with the version: float32 weights quantized as tfjs-converter
does (TF.js dequantizes them on load), in weight files of --shard-bytes each (the server
takes 1MiB to 64MiB; 4MiB by default). --shard-bytes alone reshards without quantizing.""",
    "share": """examples:
  modelshelf share indexeddb://my-model
  modelshelf share indexeddb://my-model --expires 7d --version 20261201T000000000000Z-1a2b3c4d

The URL loads with no other credentials: in tf.loadLayersModel(url), curl, or
modelshelf.Client().load(url). It reads this model only, until it expires or the token that
made it is revoked. It needs a server run with MODELSHELF_AUTH=tokens and a token that may
read the model.""",
    "gc": """examples:
  modelshelf gc --dry-run
  modelshelf gc --older-than 1d --store indexeddb
  modelshelf gc --json

Removes what saves killed midway left behind: weight files of versions that never
committed, SQLite staging blobs, incomplete S3 multipart uploads and temp files. Only what
a save began more than --older-than ago goes, so saves in progress keep their bytes: make
it longer than your longest save. Committed versions are never touched. Needs a token with
admin:* when the server runs with tokens.""",
    "token create": """examples:
  modelshelf token create ci --scope 'write:indexeddb/team/*' --scope 'read:*' --expires 90d
  TOKEN=$(modelshelf token create reader --scope read:file)

The token is printed once, alone on stdout; it is never shown again. Creating, listing and
revoking tokens need a token with admin:* (such as the server's MODELSHELF_ADMIN_TOKEN).""",
    "token ls": """examples:
  modelshelf token ls
  modelshelf token ls --json

Lists every token and share link, oldest first; never their secrets.""",
    "token revoke": """examples:
  modelshelf token revoke 0123456789abcdef

Every server over the same auth store refuses the token within seconds, and the share
links it made end with it.""",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelshelf",
        description="A model store that speaks TensorFlow.js's save/load protocol.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _serve_parser(commands)
    for name, help_text, arguments in _CLIENT_COMMANDS:
        sub = _command_parser(commands, name, help_text)
        for argument, argument_help in arguments:
            if (name, argument) in _OPTIONAL_POSITIONALS:
                default = _OPTIONAL_POSITIONALS[(name, argument)]
                sub.add_argument(argument, help=argument_help, nargs="?", default=default)
            else:
                sub.add_argument(argument, help=argument_help)
        _client_options(sub, name)
    _token_parser(commands)
    return parser


def _command_parser(commands: Any, name: str, help_text: str, key: str = "") -> Any:
    """A subcommand whose --help shows its description, examples and the common epilog."""
    examples = _EXAMPLES.get(key or name)
    return commands.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=f"{examples}\n\n{EPILOG}" if examples else EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


_CLIENT_COMMANDS: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "push",
        "save a TF.js model folder (model.json + weight files) as a new version",
        [
            ("folder", "folder holding model.json"),
            ("url", "where to save, e.g. indexeddb://my-model"),
        ],
    ),
    (
        "pull",
        "write a model (or a quantized, resharded view) into a folder; tfjs-node file:// loads it",
        [("url", "model URL"), ("folder", "destination folder (created if missing)")],
    ),
    (
        "export",
        "write NAME.json and NAME.weights.bin, as tf.io.browserDownloads does",
        [("url", "model URL"), ("folder", "destination folder (created if missing)")],
    ),
    (
        "ls",
        "list models of a store, optionally under a name prefix",
        [("url", "STORE or STORE://PREFIX (default: every store)")],
    ),
    ("info", "show a model's current version and sizes", [("url", "model URL")]),
    ("versions", "list a model's versions, oldest first", [("url", "model URL")]),
    ("rm", "remove a model, or one version with --version", [("url", "model URL")]),
    (
        "cp",
        "copy a model's current version to another URL, in any store",
        [("source", "model URL"), ("destination", "model URL")],
    ),
    (
        "mv",
        "move a model with all its versions; the source goes once the copy is verified",
        [("source", "model URL"), ("destination", "model URL")],
    ),
    (
        "share",
        "print a URL that loads a model with no other credentials, until it expires",
        [("url", "model URL")],
    ),
    (
        "tag",
        "point an alias (e.g. prod) at a version; loads take it as --version / ?version=",
        [
            ("url", "model URL"),
            ("alias", "alias name: a lowercase letter, then a-z 0-9 . _ -"),
            ("version", "version id or alias (default: the current version)"),
        ],
    ),
    ("untag", "remove an alias (its version stays)", [("url", "model URL"), ("alias", "alias")]),
    (
        "prune",
        "remove all but the newest --keep versions; versions an alias points to stay",
        [("url", "model URL")],
    ),
    ("gc", "remove what killed saves left behind, and say how many bytes that freed", []),
]
# (command, argument) -> its default when left out
_OPTIONAL_POSITIONALS: dict[tuple[str, str], str | None] = {
    ("ls", "url"): "",
    ("tag", "version"): None,
}


def _serve_parser(commands: Any) -> None:
    from modelshelf.service.cli import add_serve_arguments

    serve = commands.add_parser(
        "serve",
        help="run the server",
        description="Run the modelshelf server. With no configuration it keeps models in "
        "./data: 'file' (plain files), 'indexeddb' and 'localstorage' (SQLite).",
    )
    add_serve_arguments(serve)


def _token_parser(commands: Any) -> None:
    token = commands.add_parser(
        "token",
        help="create, list and revoke tokens (needs a token with admin:*)",
        description="Tokens of a server run with MODELSHELF_AUTH=tokens. Every action needs\n"
        "a token with admin:*, such as the server's MODELSHELF_ADMIN_TOKEN.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = _command_parser(
        actions, "create", "create a token and print it (the only time it is shown)", "token create"
    )
    create.add_argument("name", help="a label for people, e.g. ci")
    create.add_argument(
        "--scope", action="append", required=True, dest="scopes", metavar="SCOPE", help=SCOPE_HELP
    )
    create.add_argument(
        "--expires",
        type=parse_duration,
        metavar="DURATION",
        help=f"how long the token works: {DURATION_FORMS} (default: until revoked)",
    )
    _client_options(create, "token create")
    listing = _command_parser(
        actions, "ls", "list tokens and share links: id, name, scopes, created, expires", "token ls"
    )
    _client_options(listing, "token ls")
    revoke = _command_parser(actions, "revoke", "revoke a token by its id", "token revoke")
    revoke.add_argument("id", help="the token's id, as 'modelshelf token ls' shows it")
    _client_options(revoke, "token revoke")


def parse_duration(text: str) -> int:
    """Seconds in a duration as --expires takes it: ``90`` (seconds), ``30s``, ``15m``, ``1h``,
    ``7d`` or ``2w``.

    Raises:
        argparse.ArgumentTypeError: naming the accepted forms (argparse exits with 2).
    """
    match = _DURATION.fullmatch(text)
    seconds = int(match[1]) * _UNIT_SECONDS[match[2]] if match else 0
    if seconds <= 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration; write a whole number above 0 with an optional unit "
            f"s, m, h, d or w: {DURATION_FORMS}"
        )
    if seconds > TEN_YEARS_SECONDS:
        raise argparse.ArgumentTypeError(f"{text!r} is longer than the 10 years a server allows")
    return seconds


def parse_size(text: str) -> int:
    """Bytes in a size as --shard-bytes takes it: ``4194304``, ``512KiB`` or ``4MiB``.

    Only the form is checked: the server judges the value (and says which it takes).

    Raises:
        argparse.ArgumentTypeError: naming the accepted forms (argparse exits with 2).
    """
    match = _SIZE.fullmatch(text.strip())
    if not match or int(match[1]) <= 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size; write a whole number of bytes above 0, with an optional "
            f"unit KiB or MiB (1 KiB = 1024 bytes): {SIZE_FORMS}"
        )
    return int(match[1]) * _UNIT_BYTES[(match[2] or "").lower()]


def parse_age(text: str) -> int:
    """Seconds in an age as --older-than takes it: 0, or a duration as ``parse_duration``."""
    match = _DURATION.fullmatch(text)
    return 0 if match and int(match[1]) == 0 else parse_duration(text)


def _client_options(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--server", metavar="URL", help="the server (default: MODELSHELF_URL)")
    parser.add_argument("--token", help="bearer token sent as Authorization (MODELSHELF_TOKEN)")
    parser.add_argument("--json", action="store_true", help="print JSON, for scripts")
    if command in ("pull", "export", "rm"):
        parser.add_argument("--version", help="a version id (default: the current version)")
    if command == "share":
        parser.add_argument(
            "--expires",
            type=parse_duration,
            default=3600,
            metavar="DURATION",
            help=f"how long the link works: {DURATION_FORMS} (default: 1h)",
        )
        parser.add_argument(
            "--version", help="share only this version (default: whichever is current on load)"
        )
    if command == "gc":
        parser.add_argument(
            "--dry-run", action="store_true", help="list what would go; remove nothing"
        )
        parser.add_argument(
            "--older-than",
            type=parse_age,
            default=DEFAULT_GC_AGE_SECONDS,
            metavar="DURATION",
            help=f"only what a save began longer ago: 0 or {DURATION_FORMS} (default: 1h)",
        )
        parser.add_argument("--store", help="only this store (default: every store)")
    if command == "pull":
        parser.add_argument(
            "--quantize",
            choices=QUANTIZE_CHOICES,
            help="write a view with float32 weights quantized to this dtype, as tfjs-converter "
            "quantizes them",
        )
        parser.add_argument(
            "--shard-bytes",
            type=parse_size,
            metavar="SIZE",
            help=f"write a view cut into weight files of this size: {SIZE_FORMS}; the server "
            "takes 1MiB to 64MiB (default: 4MiB with --quantize; alone, it only reshards)",
        )
    if command == "export":
        parser.add_argument("--prefix", help="file prefix (default: the name's last segment)")
    if command == "tag":
        parser.add_argument(
            "--if-match", metavar="VERSION", help="move the alias only if it points here now"
        )
        parser.add_argument(
            "--create", action="store_true", help="create only: fail if the alias exists"
        )
    if command == "prune":
        parser.add_argument("--keep", type=int, required=True, help="versions to keep (>= 1)")
        parser.add_argument("--dry-run", action="store_true", help="only say what would go")
    if command in ("push", "pull", "export"):
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from modelshelf.service.cli import serve

        serve(args)
        return
    sys.exit(_run_client_command(args))


def _run_client_command(args: argparse.Namespace) -> int:
    from modelshelf import (
        Client,
        ForbiddenError,
        InvalidModelError,
        InvalidRequestError,
        ModelshelfError,
        NotFoundError,
        TooManyRequestsError,
        UnauthorizedError,
        UnavailableError,
    )

    try:
        # The client reads MODELSHELF_TOKEN itself when --token is not given.
        with Client(args.server, token=args.token, timeout=600.0) as client:
            _COMMANDS[_command_name(args)](client, args)
    except NotFoundError as error:
        return _fail(error.message, EXIT_NOT_FOUND)
    except UnavailableError as error:
        return _fail(error.message, EXIT_UNREACHABLE)
    except UnauthorizedError as error:
        return _fail(
            f"{error.message} (the CLI sends --token or MODELSHELF_TOKEN)", EXIT_NOT_ALLOWED
        )
    except (ForbiddenError, TooManyRequestsError) as error:
        return _fail(error.message, EXIT_NOT_ALLOWED)
    except InvalidModelError as error:
        return _fail(error.message, EXIT_FAILED)
    except InvalidRequestError as error:
        return _fail(error.message, EXIT_USAGE)
    except ModelshelfError as error:
        return _fail(error.message, EXIT_FAILED)
    except OSError as error:
        return _fail(f"{error}", EXIT_FAILED)
    return 0


def _command_name(args: argparse.Namespace) -> str:
    return f"token {args.token_command}" if args.command == "token" else str(args.command)


def _fail(message: str, code: int) -> int:
    print(f"modelshelf: {message}", file=sys.stderr)
    return code


def _push(client: Any, args: argparse.Namespace) -> None:
    with _progress(args, "push") as progress:
        result = client.push(args.folder, args.url, progress=progress)
    _print(args, result.model_dump(), f"saved {result.modelUrl} version {result.versionId}")


def _pull(client: Any, args: argparse.Namespace) -> None:
    with _progress(args, "pull") as progress:
        path = client.pull(
            args.url,
            args.folder,
            version=args.version,
            quantize=args.quantize,
            shard_bytes=args.shard_bytes,
            progress=progress,
        )
    _print(args, {"modelJson": str(path)}, f"wrote {path}")


def _export(client: Any, args: argparse.Namespace) -> None:
    with _progress(args, "export") as progress:
        paths = client.export(
            args.url, args.folder, version=args.version, prefix=args.prefix, progress=progress
        )
    _print(args, {"files": [str(p) for p in paths]}, "wrote " + ", ".join(map(str, paths)))


def _ls(client: Any, args: argparse.Namespace) -> None:
    targets = [args.url] if args.url else [store.name for store in client.list_stores()]
    models = {}
    for target in targets:
        models.update({url: info.model_dump() for url, info in client.list_models(target).items()})
    rows = [
        [url, info["dateSaved"], size_text(info["weightDataBytes"])] for url, info in models.items()
    ]
    _print_rows(args, models, ["model", "saved", "weights"], rows, empty="no models")


def _info(client: Any, args: argparse.Namespace) -> None:
    info = client.get_model_info(args.url)
    sizes = info.modelArtifactsInfo
    text = "\n".join(
        [
            info.url,
            f"current version  {info.currentVersion}",
            f"saved            {sizes.dateSaved}",
            f"versions         {len(info.versions)}",
            f"aliases          {_aliases_text(info.aliases)}",
            f"topology         {size_text(sizes.modelTopologyBytes)}",
            f"weights          {size_text(sizes.weightDataBytes)}",
        ]
    )
    _print(args, info.model_dump(), text)


def _versions(client: Any, args: argparse.Namespace) -> None:
    info = client.get_model_info(args.url)
    by_version: dict[str, list[str]] = {}
    for alias, version_id in info.aliases.items():
        by_version.setdefault(version_id, []).append(alias)
    rows = [
        [
            v.id,
            v.dateSaved,
            size_text(v.modelArtifactsInfo.weightDataBytes),
            ",".join(by_version.get(v.id, [])),
        ]
        for v in info.versions
    ]
    data = [{**v.model_dump(), "aliases": by_version.get(v.id, [])} for v in info.versions]
    _print_rows(args, data, ["version", "saved", "weights", "aliases"], rows)


def _aliases_text(aliases: dict[str, str]) -> str:
    return ", ".join(f"{alias} -> {version}" for alias, version in aliases.items()) or "none"


def _tag(client: Any, args: argparse.Namespace) -> None:
    version = args.version or client.get_model_info(args.url).currentVersion
    info = client.set_alias(
        args.url, args.alias, version, if_match=args.if_match, if_none_match=args.create
    )
    _print(args, info.model_dump(), f"{args.alias} -> {info.aliases[args.alias]} ({info.url})")


def _untag(client: Any, args: argparse.Namespace) -> None:
    info = client.remove_alias(args.url, args.alias)
    _print(args, info.model_dump(), f"removed alias {args.alias} of {info.url}")


def _prune(client: Any, args: argparse.Namespace) -> None:
    result = client.prune(args.url, args.keep, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    lines = [f"{verb} {len(result.removed)} version(s), kept {len(result.kept)}"]
    lines += [f"  {version_id}" for version_id in result.removed]
    _print(args, result.model_dump(), "\n".join(lines))


def _rm(client: Any, args: argparse.Namespace) -> None:
    info = client.remove_model(args.url, args.version)
    what = f"version {args.version} of {info.url}" if args.version else info.url
    _print(args, info.model_dump(), f"removed {what}")


def _cp(client: Any, args: argparse.Namespace) -> None:
    info = client.copy_model(args.source, args.destination)
    _print(args, info.model_dump(), f"copied {args.source} to {info.url} ({info.currentVersion})")


def _mv(client: Any, args: argparse.Namespace) -> None:
    info = client.move_model(args.source, args.destination)
    _print(args, info.model_dump(), f"moved {args.source} to {info.url}")


def _share(client: Any, args: argparse.Namespace) -> None:
    link = client.share(args.url, args.expires, args.version)
    if args.json:
        _print(args, link.model_dump(mode="json"), "")
        return
    print(link.url)  # alone on stdout, for $(modelshelf share ...)
    print(
        f"anyone with this URL may load {args.url} until {_when(link.expiresAt)}", file=sys.stderr
    )


def _gc(client: Any, args: argparse.Namespace) -> None:
    report = client.gc(dry_run=args.dry_run, older_than=args.older_than, store=args.store)
    failed = [store for store in report.stores if store.error]
    if args.json:
        _print(args, report.model_dump(mode="json"), "")
    else:
        rows = [
            [store.store, item.kind, item.name, size_text(item.size)]
            for store in report.stores
            for item in store.removed
        ]
        _print_rows(args, [], ["store", "kind", "name", "size"], rows, empty="nothing to remove")
        print(_gc_summary(report, len(rows)), file=sys.stderr)
    for store in failed:
        print(f"modelshelf: gc of store {store.store!r} stopped: {store.error}", file=sys.stderr)
    if failed:
        sys.exit(EXIT_FAILED)


def _gc_summary(report: Any, count: int) -> str:
    freed = size_text(report.freedBytes)
    if report.dryRun:
        return f"dry run: {count} items would go, freeing {freed}; nothing was removed"
    return f"removed {count} items, freed {freed}"


def _token_create(client: Any, args: argparse.Namespace) -> None:
    created = client.create_token(args.name, args.scopes, args.expires)
    if args.json:
        _print(args, created.model_dump(mode="json"), "")
        return
    print(created.token)  # alone on stdout, for TOKEN=$(modelshelf token create ...)
    print(
        f"created token {created.name!r} (id {created.id}) with {', '.join(created.scopes)}, "
        f"expires {_when(created.expiresAt)}; it will not be shown again, so store it now",
        file=sys.stderr,
    )


def _token_ls(client: Any, args: argparse.Namespace) -> None:
    tokens = client.list_tokens()
    rows = [
        [t.id, t.name, ",".join(t.scopes), _when(t.createdAt), _when(t.expiresAt)] for t in tokens
    ]
    headers = ["id", "name", "scopes", "created", "expires"]
    data = [t.model_dump(mode="json") for t in tokens]
    _print_rows(args, data, headers, rows, empty="no tokens")


def _token_revoke(client: Any, args: argparse.Namespace) -> None:
    info = client.revoke_token(args.id)
    _print(args, info.model_dump(mode="json"), f"revoked token {info.name!r} (id {info.id})")


def _when(moment: datetime | None) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}" if moment else "never"


_COMMANDS: dict[str, Callable[[Any, argparse.Namespace], None]] = {
    "push": _push,
    "pull": _pull,
    "export": _export,
    "ls": _ls,
    "info": _info,
    "versions": _versions,
    "rm": _rm,
    "cp": _cp,
    "mv": _mv,
    "share": _share,
    "tag": _tag,
    "untag": _untag,
    "prune": _prune,
    "gc": _gc,
    "token create": _token_create,
    "token ls": _token_ls,
    "token revoke": _token_revoke,
}


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else text)


def _print_rows(
    args: argparse.Namespace,
    data: Any,
    headers: list[str],
    rows: list[list[str]],
    empty: str = "",
) -> None:
    """JSON, a table on a terminal, or tab-separated rows for ``cut`` and ``awk``."""
    if args.json:
        _print(args, data, "")
        return
    print_table(headers, rows, "\n".join("\t".join(row) for row in rows) if rows else empty)


@contextmanager
def _progress(args: argparse.Namespace, verb: str) -> Iterator[ProgressCallback | None]:
    """A progress bar on stderr when it is a terminal, unless --no-progress."""
    if getattr(args, "no_progress", False) or not sys.stderr.isatty():
        yield None
        return
    with progress_bar(verb) as progress:
        yield progress


if __name__ == "__main__":
    main()
