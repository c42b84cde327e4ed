"""Run any registered simulator: `python -m tests.simulators <connector id> [--host H] [--port P] [--config C]`.

The simulator is found in tests/simulators/registry.py by its connector's id; `--list` prints the
ids. Prints `listening on http://<host>:<port>` once bound and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import sys

from tests.simulators.common import run_standalone
from tests.simulators.registry import UnknownSimulator, default_simulators

USAGE = "usage: python -m tests.simulators {--list | CONNECTOR [--host HOST] [--port PORT] [--config FILE]}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    simulators = default_simulators()
    if not args or args[0] in ("-h", "--help", "--list"):
        print(USAGE if not args or args[0] != "--list" else "\n".join(simulators.ids()))
        return 0 if args else 2
    try:
        entry = simulators.get(args[0])
    except UnknownSimulator as exc:
        print(f"{USAGE}\n{exc.args[0]}", file=sys.stderr)
        return 2
    return run_standalone(entry.connector, entry.create_app, entry.load_config, args[1:])


if __name__ == "__main__":
    sys.exit(main())
