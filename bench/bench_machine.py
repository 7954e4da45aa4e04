"""One line describing the machine a benchmark ran on."""
from __future__ import annotations

import os
import platform
from pathlib import Path


def describe(*extra: str) -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return "; ".join([f"{os.cpu_count()} CPUs, {cpu}", f"Python {platform.python_version()}",
                      *extra])


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM), in MB. Not ru_maxrss: Linux carries that over from
    the parent across fork and exec, so a child would report its parent's peak."""
    import resource
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
