"""Run the ShipStation simulator standalone: `python -m tests.simulators.shipstation --port 0 --config s.json`.

The same as `python -m tests.simulators shipstation ...`.
"""

import sys

from tests.simulators.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["shipstation", *sys.argv[1:]]))
