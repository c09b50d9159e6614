"""`python -m codegen sql [--check]`: write (or verify) db/migrations/00_init.sql and db/full_schema.sql."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from codegen import sql

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codegen")
    commands = parser.add_subparsers(dest="command", required=True)
    sql_command = commands.add_parser("sql", help="render the schema into " + ", ".join(sql.OUTPUTS))
    sql_command.add_argument("--check", action="store_true", help="exit 1 when the committed file is stale")
    args = parser.parse_args(argv)
    stale = []
    for name, render in sql.OUTPUTS.items():
        target, text = ROOT / name, render()
        if args.check:
            if not target.exists() or target.read_text() != text:
                stale.append(name)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    if stale:
        print(f"stale: {', '.join(stale)}; run `python -m codegen sql`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
