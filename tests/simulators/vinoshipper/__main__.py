"""Run the Vinoshipper simulator standalone: `python -m tests.simulators.vinoshipper --port 0 --config v.json`."""

import sys

from tests.simulators.common import load_json_file, run_standalone
from tests.simulators.vinoshipper.app import VinoshipperConfig, create_app


def load_config(path: str | None) -> VinoshipperConfig:
    """Read the JSON config file, or use the defaults (no producers) when none is given."""
    return VinoshipperConfig.from_dict(load_json_file(path)) if path else VinoshipperConfig()


if __name__ == "__main__":
    sys.exit(run_standalone("vinoshipper", create_app, load_config))
