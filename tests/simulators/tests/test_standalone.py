"""Tests of running each simulator as a separate process, as compose and the demo do."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.simulators.tests.conftest import C7_TENANT, VS_PRODUCER

pytestmark = [pytest.mark.timeout(15)]

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("command", "config"),
    [
        (["tests.simulators", "commerce7"], {"tenants": [C7_TENANT]}),
        (["tests.simulators", "vinoshipper"], {"producers": [VS_PRODUCER]}),
        (["tests.simulators.commerce7"], {"tenants": [C7_TENANT]}),
        (["tests.simulators.vinoshipper"], {"producers": [VS_PRODUCER]}),
    ],
    ids=["commerce7", "vinoshipper", "commerce7-module", "vinoshipper-module"],
)
def test_module_prints_its_port_serves_and_stops_on_sigterm(tmp_path: Path, command: list[str], config: dict) -> None:
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    process = subprocess.Popen(
        [sys.executable, "-m", *command, "--host", "127.0.0.1", "--port", "0", "--config", str(config_file)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:"), process.stderr.read()
        base_url = line.removeprefix("listening on ")
        response = httpx.get(f"{base_url}/_sim/stats", trust_env=False)
        assert response.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


def test_module_rejects_a_config_with_an_unknown_field(tmp_path: Path) -> None:
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"tenants": [], "rate_limit": 5}))
    completed = subprocess.run(
        [sys.executable, "-m", "tests.simulators.commerce7", "--config", str(config_file)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert completed.returncode == 2 and "rate_limit" in completed.stderr


def test_runner_names_the_simulators_it_knows_when_asked_for_another() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "tests.simulators", "nosuchvendor"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert completed.returncode == 2
    known = completed.stderr.partition("(known: ")[2].partition(")")[0]
    assert "no simulator for connector 'nosuchvendor'" in completed.stderr
    assert {"commerce7", "vinoshipper"} <= {name.strip() for name in known.split(",")}
