"""Run the VinSuite simulator standalone: `python -m tests.simulators.vinsuite --port 0 --config v.json`.

The same as `python -m tests.simulators vinsuite ...`.
"""

import sys

from tests.simulators.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["vinsuite", *sys.argv[1:]]))
