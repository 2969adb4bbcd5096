#!/usr/bin/env python3
"""Prints the machine's idle share every 50 ms, to see whether a benchmark leaves CPU unused.

    python3 bench/cpu/idle.py 14 & ./target/release/hawker-bench herd --designs hawker-async --runs 1 --no-record

Samples /proc/stat (idle + iowait, over all cores) for the given seconds and prints one
`seconds:idle%` pair per interval when done.
"""

import sys
import time


def snapshot():
    with open("/proc/stat") as f:
        ticks = [int(t) for t in f.readline().split()[1:]]
    return sum(ticks), ticks[3] + ticks[4]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    seconds = float(sys.argv[1])
    start, samples = time.time(), []
    before = snapshot()
    while time.time() - start < seconds:
        time.sleep(0.05)
        after = snapshot()
        total, idle = after[0] - before[0], after[1] - before[1]
        samples.append(f"{time.time() - start:.2f}:{100 * idle // max(total, 1)}")
        before = after
    print(" ".join(samples))


if __name__ == "__main__":
    main()
