"""Run the Vinoshipper simulator standalone: `python -m tests.simulators.vinoshipper --port 0 --config v.json`.

The same as `python -m tests.simulators vinoshipper ...`.
"""

import sys

from tests.simulators.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["vinoshipper", *sys.argv[1:]]))
