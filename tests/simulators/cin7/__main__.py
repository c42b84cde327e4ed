"""Run the Cin7 simulator standalone: `python -m tests.simulators.cin7 --port 0 --config c.json`.

The same as `python -m tests.simulators cin7 ...`.
"""

import sys

from tests.simulators.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["cin7", *sys.argv[1:]]))
