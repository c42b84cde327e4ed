"""Run the CommerceInterface simulator standalone: `python -m tests.simulators.groupon --port 0 --config c.json`.

The same as `python -m tests.simulators groupon ...`.
"""

import sys

from tests.simulators.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["groupon", *sys.argv[1:]]))
