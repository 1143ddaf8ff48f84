"""Is a process that started at a known time still running on this machine? Linux /proc, no
dependency: a run worker that was killed (SIGKILL, an out-of-memory kill, a restarted machine)
leaves nothing behind to say so, only its pid in the run's events."""

import os
from pathlib import Path

# A pid is reused once the kernel wraps around; a process that started this long after the one we
# look for is another process.
START_SLACK_S = 5.0


def _boot_time(proc: Path) -> float:
    for line in (proc / "stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def started_at(pid: int, proc: Path = Path("/proc")) -> float | None:
    """The start time (epoch seconds) of the process `pid`, or None when there is no such process."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may hold spaces: the fields after its end count.
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":  # a zombie has finished: it waits only for its parent to read its status
        return None
    ticks = int(fields[19])  # field 22, starttime, in clock ticks since boot
    return _boot_time(proc) + ticks / os.sysconf("SC_CLK_TCK")


def still_running(pid: int, since: float, proc: Path = Path("/proc")) -> bool:
    """True while the process `pid` that was running at `since` (epoch seconds) is alive; False when
    it is gone or its pid now belongs to a process that started later."""
    start = started_at(pid, proc)
    return start is not None and start <= since + START_SLACK_S
