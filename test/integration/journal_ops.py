#!/usr/bin/python3
"""Make one change of every kind the journal records under MNT.

Usage: journal_ops.py MNT

Prints, one per line, the record each change must leave: op, path and
path2 (mount-relative, "-" for none), tab-separated, in order.
"""
import ctypes
import os
import sys

mnt = sys.argv[1]
out = []


def p(rel):
    return os.path.join(mnt, rel.lstrip("/"))


def want(op, path, path2="-"):
    out.append(f"{op}\t{path}\t{path2}")


libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_EXCHANGE = 2


def exchange(a, b):
    if libc.renameat2(AT_FDCWD, p(a).encode(), AT_FDCWD, p(b).encode(),
                      RENAME_EXCHANGE) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


os.mkdir(p("/d"))
want("mkdir", "/d")
fd = os.open(p("/d/f"), os.O_CREAT | os.O_WRONLY, 0o644)
want("create", "/d/f")
os.write(fd, b"hello")
want("write", "/d/f")
os.close(fd)
os.truncate(p("/d/f"), 2)
want("truncate", "/d/f")
fd = os.open(p("/d/f"), os.O_WRONLY)
os.posix_fallocate(fd, 0, 8192)
want("fallocate", "/d/f")
os.close(fd)
src = os.open(p("/d/f"), os.O_RDONLY)
fd = os.open(p("/d/g"), os.O_CREAT | os.O_WRONLY, 0o644)
want("create", "/d/g")
os.copy_file_range(src, fd, 2)
want("copy_file_range", "/d/g")
os.close(fd)
os.close(src)
os.chmod(p("/d/f"), 0o600)
want("chmod", "/d/f")
os.chown(p("/d/f"), 1, 1)
want("chown", "/d/f")
os.utime(p("/d/f"), (1, 2))
want("utimens", "/d/f")
os.setxattr(p("/d/f"), "user.k", b"v")
want("setxattr", "/d/f")
os.removexattr(p("/d/f"), "user.k")
want("removexattr", "/d/f")
os.symlink("f", p("/d/s"))
want("symlink", "/d/s")
os.mkfifo(p("/d/fifo"))
want("mknod", "/d/fifo")
os.link(p("/d/g"), p("/d/h"))
want("link", "/d/g", "/d/h")
os.rename(p("/d/f"), p("/d/f2"))
want("rename", "/d/f", "/d/f2")
os.mkdir(p("/e"))
want("mkdir", "/e")
exchange("/d", "/e")
want("exchange", "/d", "/e")
os.unlink(p("/e/h"))
want("unlink", "/e/h")
os.rename(p("/e"), p("/renamed dir %"))
want("rename", "/e", "/renamed dir %")
os.rmdir(p("/d"))
want("rmdir", "/d")
# O_TRUNC of a file with data is a truncation
with open(p("/renamed dir %/g"), "w") as f:
    pass
want("truncate", "/renamed dir %/g")

print("\n".join(out))
