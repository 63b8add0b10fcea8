#!/usr/bin/python3
"""Forward UDP datagrams from 127.0.0.1:LISTEN to 127.0.0.1:TO, dropping
the first one that contains the bytes DROP; stop after SECONDS.
usage: udp_relay.py LISTEN TO SECONDS DROP"""
import socket
import sys
import time

listen, to, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
drop = sys.argv[4].encode()
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx.bind(("127.0.0.1", listen))
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.monotonic() + seconds
n = 0
print("ready", flush=True)
while time.monotonic() < end:
    rx.settimeout(max(0.01, end - time.monotonic()))
    try:
        data = rx.recv(65536)
    except socket.timeout:
        continue
    n += 1
    if drop and drop in data:
        print("dropped datagram %d" % n, flush=True)
        drop = None
        continue
    tx.sendto(data, ("127.0.0.1", to))
