"""Run the Commerce7 simulator standalone: `python -m tests.simulators.commerce7 --port 0 --config c.json`.

The same as `python -m tests.simulators commerce7 ...`.
"""

import sys

from tests.simulators.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["commerce7", *sys.argv[1:]]))
