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
