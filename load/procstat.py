"""CPU time of the load generator, read from /proc (psutil is not a dependency).

The runner starts locust as the leader of a new session, so every process it forks
(``--processes`` workers) shares its session id; summing utime+stime over that session
gives the generator's CPU, comparable with a replica's cgroup CPU time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessStat:
    pid: int
    state: str  # R, S, D, Z (zombie: exited, not yet reaped), ...
    session: int
    cpu_seconds: float  # user + system time


def parse_stat(text: str) -> ProcessStat:
    """The fields we need from the text of /proc/<pid>/stat.

    The command name (field 2) may contain spaces and parentheses, so fields are counted
    from the last ')'.
    """
    pid = int(text.split(" ", 1)[0])
    rest = text[text.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state): session is field 6, utime 14, stime 15.
    utime, stime = int(rest[11]), int(rest[12])
    return ProcessStat(pid, rest[0], int(rest[3]), (utime + stime) / CLOCK_TICKS)


def session_processes(session_id: int, proc: Path = PROC) -> list[ProcessStat]:
    """The processes (zombies included) whose session id is ``session_id``."""
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = parse_stat((entry / "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue  # the process ended between listing and reading
        if stat.session == session_id:
            found.append(stat)
    return found


def session_cpu_seconds(session_id: int, proc: Path = PROC) -> float:
    """CPU seconds used so far by the processes of one session (0.0 when none)."""
    return sum(session_cpu_by_process(session_id, proc).values())


def session_cpu_by_process(session_id: int, proc: Path = PROC) -> dict[int, float]:
    """CPU seconds used so far by each process of one session, by pid: a locust process
    is one gevent loop and saturates at one core, whatever the machine has."""
    return {stat.pid: stat.cpu_seconds for stat in session_processes(session_id, proc)}


def available(proc: Path = PROC) -> bool:
    return (proc / "self" / "stat").is_file()
