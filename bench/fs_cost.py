#!/usr/bin/env python3
"""Kernel CPU of the file-system operations a spooled message costs on this machine.

Creates N 5 KB files in a directory next to the spool (default ./data/fs-cost), each with
write + (fdatasync + directory fsync) + close + rename + unlink, and prints wall time and
system CPU per cycle, with and without the syncs. It explains digued's system time in
bench/relay_bench.py: the spool does the synced variant (minus the rename) per message.
Usage: python3 bench/fs_cost.py [N] [DIR]
"""
import os
import resource
import shutil
import sys
import time


def run(n, d, sync):
    buf = b"x" * 5200
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    for i in range(n):
        a, b = os.path.join(d, "t%d" % i), os.path.join(d, "q%d" % i)
        fd = os.open(a, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o640)
        os.write(fd, buf)
        if sync:
            os.fdatasync(fd)
        os.close(fd)
        os.rename(a, b)
        if sync:
            os.fsync(dfd)
        os.unlink(b)
    t1 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    os.close(dfd)
    print("sync=%-5s wall %.3f ms/cycle, system CPU %.3f ms/cycle"
          % (sync, (t1 - t0) * 1000 / n, (r1.ru_stime - r0.ru_stime) * 1000 / n))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    d = sys.argv[2] if len(sys.argv) > 2 else os.path.join("data", "fs-cost")
    os.makedirs(d, exist_ok=True)
    try:
        run(n, d, True)
        run(n, d, False)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
