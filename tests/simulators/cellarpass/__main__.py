"""Run the CellarPass simulator standalone: `python -m tests.simulators.cellarpass --port 0 --config c.json`.

The same as `python -m tests.simulators cellarpass ...`.
"""

import sys

from tests.simulators.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["cellarpass", *sys.argv[1:]]))
