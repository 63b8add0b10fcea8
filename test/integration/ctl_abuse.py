#!/usr/bin/python3
"""Throw garbage, oversized and partial requests, slow readers and too many
clients at a cachefs control socket, and check that every bad request gets
an error answer and that well-behaved clients and the mount keep working.

usage: ctl_abuse.py SOCKET MOUNTPOINT
"""
import json
import os
import random
import select
import socket
import sys
import time

SOCK, MNT = sys.argv[1], sys.argv[2]
LINE_MAX = 65536
DEADLINE = 10  # seconds any single wait may take


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(DEADLINE)
    s.connect(SOCK)
    return s


def read_line(s, buf=b""):
    while b"\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
    line, rest = buf.split(b"\n", 1)
    return json.loads(line), rest


def ask(s, raw):
    s.sendall(raw)
    answer, _ = read_line(s)
    return answer


def healthy(what):
    """A fresh client gets status, and the mount answers, promptly."""
    t = time.monotonic()
    with connect() as s:
        a = ask(s, b'{"cmd":"status"}\n')
    if not a or not a.get("ok"):
        fail("%s: status failed: %r" % (what, a))
    os.stat(MNT)
    os.listdir(MNT)
    if time.monotonic() - t > 5:
        fail("%s: status took %.1f s" % (what, time.monotonic() - t))


def counters():
    with connect() as s:
        a = ask(s, b'{"cmd":"stats"}\n')
    return a["data"]["counters"]


before = counters()

# 1. Malformed requests on one connection: each gets an error, in order,
#    and the connection stays usable.
bad = [
    b"garbage",
    b"{",
    b"[]",
    b"42",
    b'"status"',
    b"{}",
    b'{"cmd":1}',
    b'{"cmd":"STATUS"}',
    b'{"cmd":"status","extra":1}',
    b'{"cmd":"status","args":[]}',
    b'{"cmd":"status","cmd":"stats"}',
    b'{"cmd":"nosuchcommand"}',
    b'{"cmd":"stats","args":{"reset":"yes"}}',
    b'{"cmd":"stats","args":{"bogus":true}}',
    b'{"cmd":"config.set","args":{"name":"threads"}}',
    b'{"cmd":"trace.show","args":{"max":-1}}',
    b'{"cmd":"trace.on","args":{"path":"relative"}}',
    b'{"cmd":"a\x00b"}',
    b"\xff\xfe\xfd",
    b'{"cmd":"' + b"x" * 40 + b'"}',
    b"[" * 5000 + b"]" * 5000,
    b"\r",
]
random.seed(1)
bad += [bytes(random.getrandbits(8) for _ in range(200)).replace(b"\n", b"")
        for _ in range(20)]
with connect() as s:
    buf = b""
    s.sendall(b"".join(b + b"\n" for b in bad))
    for b in bad:
        a, buf = read_line(s, buf)
        if a is None:
            fail("connection closed after %r" % b[:40])
        if a.get("ok") is not False or not a.get("error"):
            fail("no error for %r: %r" % (b[:40], a))
    a = ask(s, b'{"cmd":"help"}\n')
    if not a.get("ok"):
        fail("help failed after garbage")
healthy("after malformed requests")

# 2. An oversized request, with or without a newline: an error, then the
#    connection is closed.
for tail in (b"", b"\n"):
    with connect() as s:
        try:
            s.sendall(b'{"cmd":"status","args":{"x":"' + b"y" * (LINE_MAX + 10)
                      + tail)
        except (BrokenPipeError, ConnectionResetError):
            pass
        a, _ = read_line(s)
        if not a or a.get("ok") is not False or "longer" not in a["error"]:
            fail("oversized request: %r" % a)
        try:
            if s.recv(1):
                fail("oversized request: connection not closed")
        except ConnectionResetError:
            pass  # closed with the rest of the request unread
healthy("after oversized requests")

# 3. Partial requests, then gone; and a client that connects and vanishes.
for part in (b'{"cmd":"sta', b"x" * 1000, b""):
    s = connect()
    s.sendall(part)
    s.close()
healthy("after partial requests")

# 4. A client that sends many requests and never reads the answers: the
#    daemon stops reading it instead of buffering without bound.
slow = connect()
slow.setblocking(False)
sent = 0
req = b'{"cmd":"stats"}\n'
t = time.monotonic()
while time.monotonic() - t < 3 and sent < 200000:
    try:
        sent += slow.send(req * 64) // len(req)
    except BlockingIOError:
        break
healthy("while a client does not read")
slow.close()
healthy("after the slow client left")

# 5. Too many clients: the extra ones are told so and closed; the others work.
conns = [connect() for _ in range(80)]
refused = 0
# The refused ones are told at once; the others hear nothing: wait for
# the answers together, not for each silence in turn.
waiting = list(conns)
deadline = time.monotonic() + DEADLINE
while waiting and refused < 80 - 64 and time.monotonic() < deadline:
    ready, _, _ = select.select(waiting, [], [], 0.2)
    for c in ready:
        waiting.remove(c)
        data = c.recv(4096)
        if data and b"too many control clients" in data:
            refused += 1
if refused < 80 - 64:
    fail("only %d of 80 clients refused (limit 64)" % refused)
for c in conns:
    c.close()
# The daemon sees the closes on its own loop: wait until a client fits.
deadline = time.monotonic() + DEADLINE
while True:
    with connect() as s:
        a = ask(s, b'{"cmd":"status"}\n')
    if a and a.get("ok"):
        break
    if time.monotonic() > deadline:
        fail("no client accepted after the others left: %r" % a)
    time.sleep(0.05)
healthy("after too many clients")

# 6. A client that sends its requests and shuts down its sending side
#    still gets every answer, whole, however long.
with connect() as s:
    ask(s, b'{"cmd":"trace.on"}\n')
for k in range(1200):
    try:
        os.stat(os.path.join(MNT, "nosuchfile%d" % k))
    except FileNotFoundError:
        pass
with connect() as s:
    ask(s, b'{"cmd":"trace.off"}\n')
with connect() as s:
    s.sendall(b'{"cmd":"trace.show","args":{"max":1000}}\n' +
              b'{"cmd":"status"}\n' * 50)
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        data += chunk
lines = data.split(b"\n")
if lines[-1] != b"" or len(lines) != 52:
    fail("half-closed client: %d answers, not 51" % (len(lines) - 1))
first = json.loads(lines[0])
if not first["ok"] or len(first["data"]["records"]) != 1000:
    fail("half-closed client: trace.show answer cut short")
if not all(json.loads(l)["ok"] for l in lines[1:-1]):
    fail("half-closed client: a status answer failed")
healthy("after a half-closed client")

after = counters()
# Unparsable or unknown requests count as bad; parsable ones with wrong
# arguments as failed.
def rejected(c):
    return c["ctl_bad_requests"] + c["ctl_failed_requests"]
if rejected(after) - rejected(before) < len(bad) + 2:
    fail("bad requests not counted: %r -> %r" % (before, after))
if after["ctl_dropped_clients"] - before["ctl_dropped_clients"] < 80 - 64:
    fail("dropped clients not counted: %r -> %r" % (before, after))
print("ctl_abuse: %d malformed requests answered, %d clients refused, "
      "slow client sent %d requests unread" % (len(bad), refused, sent))
