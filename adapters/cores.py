"""How many cores this process may use, and whether one is idle for a second process.

Verify, rebuild and export each start a helper process only when it would run on a core
of its own: on a machine already busy the child only competes with its parent (on a shared
2-core machine, load average 5-8, a 100k-event verify took 7.3 s with its child, 3.5 s
without, best of 5, interleaved).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

IDLE_NEEDED = 1.5  # the calling process's core, and most of another
_SAMPLE = 0.05  # seconds: 5 clock ticks a core at the kernel's usual 100 Hz


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS says, else all)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def spare_core() -> bool:
    """Whether a core is idle for a second process.

    Told by the cores idle over a moment while this process waits (all but this one's,
    and one more), where the kernel says (Linux); else by the load average, which trails
    by a minute: work finished just before looks like a busy machine for that long.
    """
    cores = usable_cores()
    idle = idle_cores()
    if idle is not None:
        return min(idle, cores) >= IDLE_NEEDED
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average here: trust a machine of 4 or more
        return cores >= 4
    return cores - busy >= IDLE_NEEDED


def idle_cores(seconds: float = _SAMPLE) -> float | None:
    """How many cores were idle over `seconds` (neither busy, nor waiting on a disk, nor
    taken by the host), from /proc/stat; None where it cannot be read."""
    try:
        before = _cpu_ticks()
        time.sleep(seconds)
        after = _cpu_ticks()
    except (OSError, ValueError, IndexError):
        return None
    total, idle = after[0] - before[0], after[1] - before[1]
    if total <= 0:
        return None
    return (os.cpu_count() or 1) * idle / total


def _cpu_ticks() -> tuple[int, int]:
    """(all ticks, idle ticks) of every CPU since boot: user nice system idle iowait irq
    softirq steal."""
    with Path("/proc/stat").open("rb") as stat:
        fields = stat.readline().split()
    if fields[0] != b"cpu":
        raise ValueError
    ticks = [int(value) for value in fields[1:9]]
    return sum(ticks), ticks[3]
