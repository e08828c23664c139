#!/usr/bin/env python3
"""TCP peers that vanish without a word, and SYN floods, for the direct stack's clean-up test
(issue #15).

    uni lan -- tests/tools/vanish.py --iface uni0 --guest-mac MAC connections --count 300 --wave 100 --pause 7
    uni lan -- tests/tools/vanish.py --iface uni0 --guest-mac MAC flood --count 20000 --rate 4000

Runs inside the board's network namespace (through `uni lan`) and speaks TCP with raw Ethernet
frames (an AF_PACKET socket on the host end of the board's TAP device), from an address no host
owns, 10.0.0.200 with a MAC of its own, so that no kernel answers for it: when the script stops
answering a connection, nothing does, neither FIN nor RST. It answers ARP for 10.0.0.200 while
it runs, so the guest's retransmissions and keep-alive probes reach it and go unanswered.

`connections`: waves of `--wave` connections to the guest's echo port, each vanishing in one of
four ways, in turn:
  idle      sends a line, acknowledges its echo, then says nothing more;
  inflight  sends 700 bytes and never acknowledges the echo;
  lastack   sends a line and a FIN, and never acknowledges the echo or the guest's FIN;
  syn       sends a SYN and never completes the handshake (a few per wave, last, fewer than the
            listener's backlog).
A SYN without answer is sent again after 1 s (the guest drops SYNs beyond its backlog). After
each wave, `--pause` seconds of silence (ARP only). Prints one line per wave and a summary
`vanished N connections (…)`; exits 1 if a connection never got its SYN-ACK, or the echo of an
`idle` one, within 20 s.

`flood`: `--count` SYNs from random ports at `--rate` per second, none ever answered. Prints
`flooded N SYNs in S s (K SYN-ACKs seen)`.
"""
import argparse
import os
import random
import select
import socket
import struct
import sys
import time

FAKE_IP = socket.inet_aton("10.0.0.200")
FAKE_MAC = bytes([0x02, 0x00, 0x0A, 0x00, 0x00, 0xC8])
ETH_P_ALL = 0x0003
SYN, ACK, PSH, FIN, RST = 0x02, 0x10, 0x08, 0x01, 0x04


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


class Wire:
    def __init__(self, iface, guest_mac, guest_ip, port):
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.s.bind((iface, 0))
        self.s.setblocking(False)
        self.guest_mac = guest_mac
        self.guest_ip = guest_ip
        self.port = port

    def send_tcp(self, sport, seq, ack, flags, payload=b"", mss=False):
        opts = struct.pack("!BBH", 2, 4, 1460) if mss else b""
        off = (20 + len(opts)) // 4
        hdr = struct.pack("!HHIIBBHHH", sport, self.port, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                          off << 4, flags, 65535, 0, 0) + opts
        pseudo = FAKE_IP + self.guest_ip + struct.pack("!BBH", 0, 6, len(hdr) + len(payload))
        c = csum(pseudo + hdr + payload)
        hdr = hdr[:16] + struct.pack("!H", c) + hdr[18:]
        seg = hdr + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), random.getrandbits(16), 0x4000,
                         64, 6, 0, FAKE_IP, self.guest_ip)
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        self.send(self.guest_mac + FAKE_MAC + b"\x08\x00" + ip + seg)

    def send(self, frame):
        while True:
            try:
                self.s.send(frame)
                return
            except BlockingIOError:
                select.select([], [self.s], [], 1)

    def arp(self, op, target_mac, target_ip):
        body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, FAKE_MAC, FAKE_IP,
                           target_mac if op == 2 else b"\0" * 6, target_ip)
        self.send(target_mac + FAKE_MAC + b"\x08\x06" + body)

    def frames(self, timeout):
        """Yields (kind, fields) for frames meant for 10.0.0.200, for up to `timeout` s."""
        r, _, _ = select.select([self.s], [], [], timeout)
        if not r:
            return
        while True:
            try:
                f = self.s.recv(2048)
            except BlockingIOError:
                return
            if len(f) < 42:
                continue
            typ = f[12:14]
            if typ == b"\x08\x06" and f[21] == 1 and f[38:42] == FAKE_IP:
                # ARP request for our address: answer it.
                self.arp(2, f[22:28], f[28:32])
            elif typ == b"\x08\x00" and f[0:6] == FAKE_MAC and f[23] == 6 and f[30:34] == FAKE_IP:
                ihl = (f[14] & 15) * 4
                t = f[14 + ihl:]
                total = struct.unpack("!H", f[16:18])[0]
                sport, dport, seq, ack, off, flags = struct.unpack("!HHIIBB", t[:14])
                payload = t[(off >> 4) * 4:total - ihl]
                yield dport, seq, ack, flags, payload


KINDS = ["idle", "inflight", "lastack"]


def connections(w, a):
    rnd = random.Random(a.seed)
    w.arp(1, w.guest_mac, w.guest_ip)  # the guest learns 10.0.0.200 from our request
    next_port = 20000
    totals = {k: 0 for k in KINDS + ["syn"]}
    failed = []
    done_count = 0
    wave = 0
    while done_count < a.count:
        n = min(a.wave, a.count - done_count)
        syns = min(a.syns, n // 4)
        conns = {}
        for i in range(n):
            kind = "syn" if i >= n - syns else KINDS[i % 3]
            port = next_port
            next_port = 20000 + (next_port - 20000 + 1) % 40000
            conns[port] = {"kind": kind, "isn": rnd.getrandbits(32), "state": "new", "sent": 0.0}
        order = [p for p in conns if conns[p]["kind"] != "syn"] + [p for p in conns if conns[p]["kind"] == "syn"]
        t0 = time.time()
        pending = list(order)
        in_handshake = 0
        while True:
            now = time.time()
            # Start handshakes a few at a time (the syn kind last), and repeat unanswered SYNs.
            for p in order:
                c = conns[p]
                if c["state"] == "new" and in_handshake < 8 and (c["kind"] != "syn" or all(
                        conns[q]["state"] == "done" for q in order if conns[q]["kind"] != "syn")):
                    c["state"], c["sent"] = "synsent", now
                    in_handshake += 1
                    w.send_tcp(p, c["isn"], 0, SYN, mss=True)
                elif c["state"] == "synsent" and now - c["sent"] > 1.0:
                    c["sent"] = now
                    w.send_tcp(p, c["isn"], 0, SYN, mss=True)
            if all(c["state"] == "done" for c in conns.values()):
                break
            if now - t0 > 20:
                failed += [(p, c["kind"], c["state"]) for p, c in conns.items() if c["state"] != "done"]
                break
            for dport, seq, ack, flags, payload in w.frames(0.05):
                c = conns.get(dport)
                if c is None or c["state"] == "done":
                    continue  # a vanished connection: say nothing
                isn = c["isn"]
                if c["state"] == "synsent" and flags & (SYN | ACK) == SYN | ACK:
                    in_handshake -= 1
                    kind = c["kind"]
                    g = seq + 1
                    if kind == "syn":
                        c["state"] = "done"
                    elif kind == "idle":
                        w.send_tcp(dport, isn + 1, g, ACK)
                        w.send_tcp(dport, isn + 1, g, ACK | PSH, b"hello\n")
                        c["state"] = "echo"
                    elif kind == "inflight":
                        w.send_tcp(dport, isn + 1, g, ACK)
                        w.send_tcp(dport, isn + 1, g, ACK | PSH, bytes(rnd.getrandbits(8) for _ in range(700)))
                        c["state"] = "done"
                    else:
                        w.send_tcp(dport, isn + 1, g, ACK)
                        w.send_tcp(dport, isn + 1, g, ACK | PSH | FIN, b"bye\n")
                        c["state"] = "done"
                elif c["state"] == "echo" and payload:
                    w.send_tcp(dport, isn + 7, seq + len(payload), ACK)
                    c["state"] = "done"
        for c in conns.values():
            if c["state"] == "done":
                totals[c["kind"]] += 1
        done_count += n
        wave += 1
        print("wave %d: %d connections in %.1f s" % (wave, n, time.time() - t0), flush=True)
        end = time.time() + a.pause
        while time.time() < end:
            for _ in w.frames(min(0.2, max(0.0, end - time.time()))):
                pass
    print("vanished %d connections (%s)" % (sum(totals.values()),
          ", ".join("%s %d" % kv for kv in totals.items())), flush=True)
    if failed:
        print("never finished: %s" % failed[:20], file=sys.stderr)
        return 1
    return 0


def flood(w, a):
    t0 = time.time()
    seen = 0
    for i in range(a.count):
        w.send_tcp(random.randint(1024, 65535), random.getrandbits(32), 0, SYN, mss=True)
        if i % 200 == 199:
            for dport, seq, ack, flags, payload in w.frames(0):
                seen += flags & (SYN | ACK) == SYN | ACK
            lag = (i + 1) / a.rate - (time.time() - t0)
            if lag > 0:
                time.sleep(lag)
    print("flooded %d SYNs in %.1f s (%d SYN-ACKs seen)" % (a.count, time.time() - t0, seen), flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iface", required=True, help="the board's TAP device")
    ap.add_argument("--guest-mac", required=True)
    ap.add_argument("--guest-ip", default="10.0.0.2")
    ap.add_argument("--port", type=int, default=7000)
    ap.add_argument("--seed", type=int, default=15)
    sub = ap.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("connections")
    c.add_argument("--count", type=int, default=300)
    c.add_argument("--wave", type=int, default=100)
    c.add_argument("--syns", type=int, default=8, help="handshakes left half-open per wave")
    c.add_argument("--pause", type=float, default=7.0)
    f = sub.add_parser("flood")
    f.add_argument("--count", type=int, default=20000)
    f.add_argument("--rate", type=float, default=4000.0)
    a = ap.parse_args()
    w = Wire(a.iface, mac_bytes(a.guest_mac), socket.inet_aton(a.guest_ip), a.port)
    return connections(w, a) if a.mode == "connections" else flood(w, a)


if __name__ == "__main__":
    sys.exit(main())
