"""CPU-seconds spent by named processes between two moments, read from /proc.

The bench asks where each order's CPU goes: each ordersync service, Kafka, Postgres, each
simulator and the load generator. /proc/<pid>/stat counts a process's user and system time in
clock ticks; a phase's cost is the difference between two readings. Postgres is a postmaster
with one backend per connection, so its reading adds the live backends (children of the
postmaster) to the time of the ones already gone (the postmaster's cutime and cstime).
Kafka and Postgres are found by the port they listen on, so the meter needs no pid files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
TCP_LISTEN = "0A"


@dataclass(frozen=True)
class MeteredProcess:
    """One process to meter; with_children adds its live and reaped children (Postgres)."""

    name: str
    pid: int
    with_children: bool = False


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces)."""
    text = (PROC / str(pid) / "stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def own_ticks(pid: int) -> int:
    """utime + stime of one process (fields 14 and 15 of stat, 12 and 13 after the name)."""
    fields = _stat_fields(pid)
    return int(fields[11]) + int(fields[12])


def reaped_children_ticks(pid: int) -> int:
    """cutime + cstime: the CPU of the process's children that have exited and been waited for."""
    fields = _stat_fields(pid)
    return int(fields[13]) + int(fields[14])


def live_children(pid: int) -> Iterator[int]:
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat_fields(int(entry.name))[1]) == pid:
                    yield int(entry.name)
            except (OSError, ValueError):
                continue  # exited while we looked


def cpu_seconds(process: MeteredProcess) -> float:
    """CPU-seconds the process (and, if asked, its children) has used since it started."""
    ticks = own_ticks(process.pid)
    if process.with_children:
        ticks += reaped_children_ticks(process.pid)
        for child in live_children(process.pid):
            try:
                ticks += own_ticks(child)
            except OSError:
                continue  # a backend that exited between listing and reading; counted next time
    return ticks / TICKS_PER_SECOND


def listening_pid(port: int) -> int:
    """The pid of the process with a TCP socket listening on `port` (any address)."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        path = PROC / "net" / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == TCP_LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(entry.name)
        except OSError:
            continue  # another user's process, or one that exited
    raise LookupError(f"no process of ours listens on port {port}")


class CpuMeter:
    """Readings of every metered process; `since(reading)` is each one's CPU-seconds since then."""

    def __init__(self, processes: list[MeteredProcess]):
        self.processes = processes

    def reading(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for process in self.processes:
            totals[process.name] = totals.get(process.name, 0.0) + cpu_seconds(process)
        return totals

    def since(self, earlier: Mapping[str, float]) -> dict[str, float]:
        now = self.reading()
        return {name: now[name] - earlier.get(name, 0.0) for name in now}
