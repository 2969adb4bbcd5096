#!/usr/bin/env python3
"""How long this disk takes to make a small write durable: the wait that a commit per buy (the
PostgreSQL baseline) pays on every order, and group commit pays once per batch.

    python3 bench/disk/fsync.py        # from the repository root, so it measures the real disk

Appends 4 KiB and calls fdatasync 300 times on a scratch file here, then prints the median and
the 90th percentile.
"""

import os
import time

PATH = "fsync-probe.tmp"
fd = os.open(PATH, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
try:
    waits = []
    for _ in range(300):
        os.write(fd, b"x" * 4096)
        start = time.perf_counter()
        os.fdatasync(fd)
        waits.append(time.perf_counter() - start)
finally:
    os.close(fd)
    os.remove(PATH)
waits.sort()
print(f"fdatasync of 4 KiB: p50 {waits[150] * 1e3:.3f} ms, p90 {waits[270] * 1e3:.3f} ms")
