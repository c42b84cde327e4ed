"""The bench's CPU meter: what it reads from /proc for a process, its children and a port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from tests.system.cpu_usage import CpuMeter, MeteredProcess, cpu_seconds, listening_pid

BURN_HALF_SECOND = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass\n"


def test_a_process_that_burned_half_a_second_reads_about_half_a_second():
    child = subprocess.Popen([sys.executable, "-c", BURN_HALF_SECOND + "time.sleep(30)"])
    try:
        meter = CpuMeter([MeteredProcess("burner", child.pid)])
        start = meter.reading()
        time.sleep(1.5)  # the burn ends well within this, then the child sleeps
        used = meter.since(start)["burner"]
        assert 0.3 <= used <= 0.9
        settled = meter.reading()
        time.sleep(0.3)
        assert meter.since(settled)["burner"] < 0.05  # a sleeping process uses nothing
    finally:
        child.kill()
        child.wait()


def test_a_parent_with_children_counts_children_that_ran_and_exited():
    # The parent waits for a burning child, as the postmaster reaps a closed connection's backend.
    parent_code = (
        "import subprocess, sys, time\n"
        f"subprocess.run([sys.executable, '-c', {BURN_HALF_SECOND!r}])\n"
        "print('done', flush=True)\n"
        "time.sleep(30)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE)
    try:
        assert parent.stdout.readline().strip() == b"done"
        alone = cpu_seconds(MeteredProcess("parent", parent.pid))
        with_children = cpu_seconds(MeteredProcess("parent", parent.pid, with_children=True))
        assert with_children - alone >= 0.3
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()


def test_the_listening_process_is_found_by_its_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert listening_pid(listener.getsockname()[1]) == os.getpid()


def test_a_port_nobody_listens_on_is_an_error_that_names_it():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening
    with pytest.raises(LookupError, match=str(port)):
        listening_pid(port)
