#!/usr/bin/env python3
"""A tiny authoritative DNS server for tests: answers A queries for the names given as
NAME=ADDRESS arguments, NXDOMAIN for any other name, and ignores what it cannot parse.

usage: dns-server.py PORT NAME=ADDRESS...   (listens on 127.0.0.1:PORT over UDP)
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
    port = int(sys.argv[1])
    zone = dict(a.lower().split("=", 1) for a in sys.argv[2:])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    print(f"dns-server: 127.0.0.1:{port} serving {zone}", flush=True)
    while True:
        data, peer = s.recvfrom(1500)
        try:
            qid, flags, qd = struct.unpack("!HHH", data[:6])
            name, end = qname(data, 12)
            qtype, qclass = struct.unpack("!HH", data[end:end + 4])
        except (ValueError, struct.error, IndexError, UnicodeDecodeError):
            continue
        question = data[12:end + 4]
        addr = zone.get(name)
        if addr and qtype == 1:
            header = struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0)
            answer = struct.pack("!HHHLH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(addr)
            s.sendto(header + question + answer, peer)
        else:
            rcode = 3 if not addr else 0
            s.sendto(struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, 0, 0, 0) + question, peer)


if __name__ == "__main__":
    main()
