"""Run the Commerce7 simulator standalone: `python -m tests.simulators.commerce7 --port 0 --config c.json`."""

import sys

from tests.simulators.commerce7.app import Commerce7Config, create_app
from tests.simulators.common import load_json_file, run_standalone


def load_config(path: str | None) -> Commerce7Config:
    """Read the JSON config file, or use the defaults (no tenants) when none is given."""
    return Commerce7Config.from_dict(load_json_file(path)) if path else Commerce7Config()


if __name__ == "__main__":
    sys.exit(run_standalone("commerce7", create_app, load_config))
