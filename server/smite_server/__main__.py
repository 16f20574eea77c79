"""``python -m smite_server <command>``: the daemon commands without the main ``smite`` CLI."""

import argparse
import sys

from smite.errors import SmiteError
from smite_server.cli import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smite_server", description=__doc__)
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SmiteError as exc:
        print(f"smite: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
