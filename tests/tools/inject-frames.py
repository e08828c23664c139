#!/usr/bin/env python3
"""Injects malformed or random Ethernet frames onto the emulated board's bridge (issue #4, test 5).

    uni lan -- tests/tools/inject-frames.py [--iface uni0] [--count 2000] [--target-mac MAC] [--seed N]

The frames are written with an AF_PACKET socket to the host end of the board's TAP device (the
`uni0` interface that `uni run --target xen-arm` creates in its own network namespace, so this
runs inside it, through `uni lan`; found automatically when only one exists). QEMU carries them to dom0's virtio NIC, which is a port of xenbr0, so they reach every
guest vif the bridge floods to (all broadcast frames, and unicast to --target-mac once the bridge
has learned it). Needs CAP_NET_RAW in the namespace, which `uni lan` gives.

The mix, cycled through: random bytes of random length (14..1514); truncated Ethernet headers;
IPv4 with bad version, IHL, total length or checksum; TCP and UDP with bad offsets and checksums,
aimed at the guest; ARP with wrong sizes; IPv6 and unknown ethertypes; oversize-looking lengths
and zero-length payloads. Half go to the broadcast address, half to --target-mac. Prints a
summary line `injected N frames (…)` and exits 0 when all were written.
"""
import argparse
import os
import random
import socket
import struct
import sys


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def ipv4(src, dst, proto, payload, rnd, bad):
    ver_ihl = 0x45
    total = 20 + len(payload)
    if bad == "version":
        ver_ihl = (rnd.choice([0, 6, 15]) << 4) | 5
    elif bad == "ihl":
        ver_ihl = 0x40 | rnd.choice([0, 1, 4, 15])
    elif bad == "length":
        total = rnd.choice([0, 19, total + 1, 65535])
    hdr = struct.pack("!BBHHHBBH4s4s", ver_ihl, 0, total, rnd.getrandbits(16),
                      rnd.choice([0, 0x4000, 0x2000, 0x1FFF]), rnd.choice([0, 1, 64]), proto, 0, src, dst)
    c = csum(hdr)
    if bad == "checksum":
        c ^= 0x5A5A
    return hdr[:10] + struct.pack("!H", c) + hdr[12:] + payload


def frame(i, rnd, src_mac, dst_mac, guest_ip, host_ip):
    eth = lambda typ: dst_mac + src_mac + struct.pack("!H", typ)
    kind = i % 10
    if kind == 0:  # random bytes
        return os.urandom(rnd.randint(14, 1514))
    if kind == 1:  # truncated header
        return (dst_mac + src_mac + b"\x08\x00")[: rnd.randint(1, 13)]
    if kind in (2, 3):  # broken IPv4 header
        bad = rnd.choice(["version", "ihl", "length", "checksum"])
        return eth(0x0800) + ipv4(host_ip, guest_ip, rnd.choice([1, 6, 17, 255]), os.urandom(rnd.randint(0, 64)), rnd, bad)
    if kind in (4, 5):  # TCP to the guest with bad offsets, flags, checksum
        off = rnd.choice([0, 1, 4, 15]) << 4
        tcp = struct.pack("!HHIIBBHHH", rnd.getrandbits(16), rnd.choice([7, 80, 443, 7000, rnd.getrandbits(16)]),
                          rnd.getrandbits(32), rnd.getrandbits(32), off, rnd.getrandbits(8), rnd.getrandbits(16),
                          rnd.getrandbits(16), rnd.getrandbits(16)) + os.urandom(rnd.randint(0, 40))
        return eth(0x0800) + ipv4(host_ip, guest_ip, 6, tcp, rnd, rnd.choice([None, None, "checksum"]))
    if kind == 6:  # UDP with bad length (DHCP and DNS ports included)
        body = os.urandom(rnd.randint(0, 300))
        udp = struct.pack("!HHHH", rnd.choice([67, 53, 1234]), rnd.choice([68, 53, 7, 1234]),
                          rnd.choice([0, 7, 8 + len(body) + 9, 8 + len(body)]), rnd.getrandbits(16)) + body
        return eth(0x0800) + ipv4(host_ip, guest_ip, 17, udp, rnd, None)
    if kind == 7:  # ARP with wrong sizes / opcodes
        arp = struct.pack("!HHBBH", 1, 0x0800, rnd.choice([0, 6, 255]), rnd.choice([0, 4, 255]), rnd.choice([1, 2, 9]))
        arp += src_mac + host_ip + b"\0" * 6 + guest_ip
        return eth(0x0806) + arp[: rnd.randint(0, len(arp))]
    if kind == 8:  # IPv6 garbage
        return eth(0x86DD) + os.urandom(rnd.randint(0, 200))
    # unknown ethertype, or a frame claiming 802.3 length
    return eth(rnd.choice([0x1234, 0x05DC, 0x0000, 0xFFFF, 0x8100])) + os.urandom(rnd.randint(0, 100))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iface", help="the board's TAP device (default: the only uniNNN interface)")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--target-mac", default="00:16:3e:75:6e:02", help="the guest's MAC (`uni run` prints it in its Network line)")
    ap.add_argument("--guest-ip", default="10.0.0.2")
    ap.add_argument("--seed", type=int, default=4)
    a = ap.parse_args()
    iface = a.iface
    if not iface:
        taps = sorted(n for n in os.listdir("/sys/class/net") if n.startswith("uni") and n[3:].isdigit())
        if len(taps) != 1:
            sys.exit(f"inject-frames: found {taps or 'no'} board tap devices; pass --iface")
        iface = taps[0]
    rnd = random.Random(a.seed)
    try:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind((iface, 0))
    except PermissionError:
        sys.exit("inject-frames: AF_PACKET needs root or CAP_NET_RAW")
    src = bytes([0x02, 0x00, 0x5E, 0x10, 0x00, 0x01])
    dst_guest = mac_bytes(a.target_mac)
    guest_ip = socket.inet_aton(a.guest_ip)
    # A made-up peer (not the host's 10.0.0.254): stacks learn neighbours from the source of
    # the IP packets they receive, and frames from a fake MAC claiming the host's address would
    # poison the guest's cache for the host. That is spoofing, not malformed input.
    host_ip = socket.inet_aton("10.0.0.253")
    sent = errors = 0
    for i in range(a.count):
        dst = b"\xff" * 6 if i % 2 else dst_guest
        f = frame(i, rnd, src, dst, guest_ip, host_ip)
        try:
            s.send(f)
            sent += 1
        except OSError:
            errors += 1  # the kernel refuses some runts (shorter than a header): count them
    print(f"injected {sent} frames onto {iface} ({errors} refused by the host kernel)")
    return 0 if sent + errors == a.count else 1


if __name__ == "__main__":
    sys.exit(main())
