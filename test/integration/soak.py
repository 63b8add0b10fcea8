#!/usr/bin/python3
"""Mixed read/write soak across two cachefs mounts of one backend, with a
checker that counts stale reads beyond the revalidate bound.

usage: soak.py BACKEND MOUNT_A MOUNT_B SECONDS BOUND

Files of a fixed size carry a version number in their first 16 bytes.
Writers bump versions in place (so the size never changes: the change
shows only in the mtime) through mount A and directly on the backend
(as another host would).  Readers read through A and B.  A read that
started at time t and returned version r is stale if a version newer than
r had been completely written before t - BOUND.  Exit 1 if any read is.
"""
import os
import random
import sys
import threading
import time

BACKEND, MNT_A, MNT_B = sys.argv[1:4]
SECONDS, BOUND = float(sys.argv[4]), float(sys.argv[5])
NFILES, SIZE = 16, 4096

lock = threading.Lock()
done = [[(0, 0.0)] for _ in range(NFILES)]  # per file: (version, time written)
next_version = [0] * NFILES
stale, reads, worst = [], [0], [0.0]
stop = threading.Event()


def path(root, k):
    return os.path.join(root, "soak", "f%02d" % k)


def write_version(root, k, v):
    fd = os.open(path(root, k), os.O_WRONLY)
    try:
        os.pwrite(fd, b"%016d" % v, 0)
    finally:
        os.close(fd)


def writer(root, seed):
    rnd = random.Random(seed)
    while not stop.is_set():
        k = rnd.randrange(NFILES)
        with lock:  # versions of one file are written in order
            next_version[k] += 1
            v = next_version[k]
            write_version(root, k, v)
            done[k].append((v, time.monotonic()))
        time.sleep(rnd.uniform(0, 0.01))


def reader(root, seed):
    rnd = random.Random(seed)
    while not stop.is_set():
        k = rnd.randrange(NFILES)
        t = time.monotonic()
        with open(path(root, k), "rb") as f:
            head = f.read(16)
        r = int(head)
        with lock:
            # the newest version finished before t - BOUND
            newest = max((v for v, tw in done[k] if tw < t - BOUND), default=0)
            reads[0] += 1
            if newest > r:
                stale.append((root, k, r, newest))
            # how far behind this read was, for the report
            newer = [tw for v, tw in done[k] if v > r]
            if newer:
                worst[0] = max(worst[0], t - min(newer))


os.makedirs(os.path.join(BACKEND, "soak"), exist_ok=True)
for k in range(NFILES):
    with open(path(BACKEND, k), "wb") as f:
        f.write(b"%016d" % 0 + b"\0" * (SIZE - 16))
threads = [threading.Thread(target=writer, args=(MNT_A, 1)),
           threading.Thread(target=writer, args=(BACKEND, 2))]
threads += [threading.Thread(target=reader, args=(m, 10 + n))
            for n, m in enumerate([MNT_A, MNT_B, MNT_B, MNT_A])]
for t in threads:
    t.start()
time.sleep(SECONDS)
stop.set()
for t in threads:
    t.join()
writes = sum(len(d) - 1 for d in done)
print("soak: %.0f s, %d writes, %d reads, %d stale beyond %.2f s; "
      "the most behind any read was %.3f s"
      % (SECONDS, writes, reads[0], len(stale), BOUND, worst[0]))
for s in stale[:10]:
    print("stale: %s file %d read version %d, %d was written %.2f s before"
          % (s[0], s[1], s[2], s[3], BOUND), file=sys.stderr)
sys.exit(1 if stale or reads[0] == 0 or writes == 0 else 0)
