"""Run the Mintsoft simulator standalone: `python -m tests.simulators.mintsoft --port 0 --config m.json`.

The same as `python -m tests.simulators mintsoft ...`.
"""

import sys

from tests.simulators.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["mintsoft", *sys.argv[1:]]))
