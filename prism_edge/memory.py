"""Peak resident memory of this process.

Linux's ru_maxrss survives exec and so reports the parent's size in a freshly spawned child;
VmHWM in /proc/self/status belongs to this process's own address space.
"""

from __future__ import annotations

import resource


def peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # macOS etc.
