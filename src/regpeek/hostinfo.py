"""What the host tells about itself: its default image platform."""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

from regpeek.formats.platform import Platform, host_platform

__all__ = ["default_platform"]


def _arm_version() -> str:
    """The ARM architecture version of a 32-bit ARM Linux host ("7"), or "" when unknown."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""
    match = re.search(r"^CPU architecture\s*:\s*(\d+)", cpuinfo, re.MULTILINE)
    return match.group(1) if match else ""


@lru_cache(maxsize=1)
def default_platform() -> Platform:
    """``linux/<host architecture>[/<variant>]``, on any host OS (macOS included)."""
    machine = os.uname().machine or "amd64"  # what platform.machine() reads, without its import
    arm = _arm_version() if machine.lower().startswith("arm") and machine.lower() not in ("arm64",) else ""
    return host_platform(machine, arm)
