"""`python -m codegen sql [--check]`: write (or verify) db/migrations/00_init.sql."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from codegen import sql

TARGET = Path(__file__).resolve().parent.parent / "db" / "migrations" / "00_init.sql"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codegen")
    commands = parser.add_subparsers(dest="command", required=True)
    sql_command = commands.add_parser("sql", help="render the schema into db/migrations/00_init.sql")
    sql_command.add_argument("--check", action="store_true", help="exit 1 when the committed file is stale")
    args = parser.parse_args(argv)
    text = sql.render()
    if args.check:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is stale: run `python -m codegen sql`", file=sys.stderr)
            return 1
        return 0
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
