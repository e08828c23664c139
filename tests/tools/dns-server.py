#!/usr/bin/env python3
"""A tiny authoritative DNS server for tests: answers A queries for the names given as
NAME=ADDRESS arguments, NXDOMAIN for any other name, and ignores what it cannot parse.
A name given as NAME=drop is never answered (the client's timeout path).

usage: dns-server.py [--bind ADDR] [--log] PORT NAME=ADDRESS|drop...
  PORT         a UDP port, or 0 for any free one; the first line printed names it:
               "dns-server: ADDR:PORT serving {...}"
  --bind ADDR  listen on ADDR (default 127.0.0.1); 0.0.0.0 reaches guests on a TAP device
  --log        print "query NAME from HOST:PORT" for every query (stdout)
"""
import socket
import struct
import sys


def qname(data, off):
    labels = []
    while True:
        n = data[off]
        off += 1
        if n == 0:
            return ".".join(labels).lower(), off
        if n & 0xC0:
            raise ValueError("compressed question name")
        labels.append(data[off:off + n].decode("ascii"))
        off += n


def main():
    args = sys.argv[1:]
    bind, log = "127.0.0.1", False
    while args and args[0].startswith("--"):
        opt = args.pop(0)
        if opt == "--bind":
            bind = args.pop(0)
        elif opt == "--log":
            log = True
        else:
            sys.exit(f"dns-server: unknown option {opt}\n{__doc__}")
    port = int(args[0])
    zone = dict(a.lower().split("=", 1) for a in args[1:])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((bind, port))
    print(f"dns-server: {bind}:{s.getsockname()[1]} serving {zone}", flush=True)
    while True:
        data, peer = s.recvfrom(1500)
        try:
            qid, flags, qd = struct.unpack("!HHH", data[:6])
            name, end = qname(data, 12)
            qtype, qclass = struct.unpack("!HH", data[end:end + 4])
        except (ValueError, struct.error, IndexError, UnicodeDecodeError):
            continue
        if log:
            print(f"query {name} from {peer[0]}:{peer[1]}", flush=True)
        question = data[12:end + 4]
        addr = zone.get(name)
        if addr == "drop":
            continue
        if addr and qtype == 1:
            header = struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0)
            answer = struct.pack("!HHHLH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(addr)
            s.sendto(header + question + answer, peer)
        else:
            rcode = 3 if not addr else 0
            s.sendto(struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, 0, 0, 0) + question, peer)


if __name__ == "__main__":
    main()
