"""python -m client: upload, download, list and delete files on a drsbox.

python -m client upload results.csv               # prints drs://host/id
python -m client download drs://host/id -o results.csv
python -m client ls
python -m client rm drs://host/id
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from tqdm import tqdm

from client import api, fetch
from client.api import Config, DrsboxError


@contextmanager
def progress_bar(args: argparse.Namespace, total: int | None, name: str) -> Iterator[api.Progress]:
    """A bar on stderr, so that stdout carries only URLs and bytes; none when stderr is not a terminal, or with -q."""
    quiet = args.quiet or not sys.stderr.isatty()
    options = {"unit": "B", "unit_scale": True, "unit_divisor": 1024, "file": sys.stderr, "disable": quiet}
    with tqdm(total=total, desc=name, **options) as bar:
        yield bar.update


def upload(config: Config, args: argparse.Namespace) -> None:
    for path in args.files:
        with progress_bar(args, os.path.getsize(path), os.path.basename(path)) as progress:
            record = api.upload(config, path, progress)
        print(json.dumps(record) if args.json else record["url"], flush=True)


def download(config: Config, args: argparse.Namespace) -> None:
    source = fetch.source_of(config, args.uri)
    if args.output == "-":
        receive(args, config, source, sys.stdout.buffer)
        return
    name = fetch.safe_name(source.name) or "download"
    path = os.path.join(args.output, name) if args.output and os.path.isdir(args.output) else args.output or name
    # Written beside the destination and renamed once complete and verified: a failed download leaves nothing.
    part = f"{path}.part"
    try:
        with open(part, "wb") as out:
            receive(args, config, source, out)
        os.replace(part, path)
    finally:
        if os.path.exists(part):
            os.unlink(part)
    print(path)


def receive(args: argparse.Namespace, config: Config, source: fetch.Source, out: IO[bytes]) -> None:
    with fetch.open_bytes(config, source) as response:
        declared = response.headers.get("content-length", "")
        total = source.size if source.size is not None else int(declared) if declared.isdigit() else None
        with progress_bar(args, total, fetch.safe_name(source.name) or "download") as progress:
            fetch.copy(response, out, source, progress)  # raises when the bytes do not match the sha-256


def ls(config: Config, args: argparse.Namespace) -> None:
    for item in api.list_uploads(config, args.page_size):
        fields = [item["url"], str(item["size"]), item["created"], item["filename"]]
        print(json.dumps(item) if args.json else "\t".join(fields))


def rm(config: Config, args: argparse.Namespace) -> None:
    for ref in args.refs:
        api.delete_upload(config, ref)


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="the drsbox (default: $PUBLIC_URL, else http://localhost:3000)")
    common.add_argument(
        "--token", help="a bearer token (default: $DRSBOX_TOKEN; else the service secret $SECRET or $NEXTAUTH_SECRET)"
    )
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    main = argparse.ArgumentParser(prog="python -m client", description="Files on a drsbox.")
    commands = main.add_subparsers(required=True, metavar="COMMAND")

    command = commands.add_parser("upload", parents=[common], help="upload files; prints their drs:// URLs")
    command.add_argument("files", nargs="+", metavar="FILE")
    command.add_argument("--json", action="store_true", help="print each file's record as JSON")
    command.set_defaults(run=upload)

    command = commands.add_parser("download", parents=[common], help="download a drs:// (or http) URL")
    command.add_argument("uri", metavar="DRS_URI")
    command.add_argument("-o", "--output", metavar="PATH", help="file or directory to write, - for stdout")
    command.set_defaults(run=download)

    command = commands.add_parser("ls", parents=[common], help="list my uploads, newest first")
    command.add_argument("--page-size", type=int, default=100, help="uploads per request (default 100)")
    command.add_argument("--json", action="store_true", help="one JSON record per line")
    command.set_defaults(run=ls)

    command = commands.add_parser("rm", parents=[common], help="delete uploads")
    command.add_argument("refs", nargs="+", metavar="ID_OR_DRS_URI")
    command.set_defaults(run=rm)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(Config.from_env(args.url, args.token), args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`ls | head`): nothing more to say, and nothing to flush at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (DrsboxError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # a bug or an answer of unexpected shape: still one line, never a traceback
        print(f"error: unexpected {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
