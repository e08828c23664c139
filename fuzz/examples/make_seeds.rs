//! Writes the seed corpora of the targets whose inputs the project's own encoders make:
//! `cargo run --example make_seeds` in fuzz/. Each seed is a real input of its kind: xenstore
//! replies and watch events as `xen_wire::xenstore::Repr` emits them, ring pages and slots
//! from `xen_wire`'s `emit`s, a netfront session's backend script, HTTP requests from the
//! server tests, DNS replies built with simple-dns, kv_ro packs from `uni_runtime::kv::pack`,
//! boot command lines, and the flights of real in-memory TLS 1.2 and 1.3 handshakes between
//! libs/tls's client and server. Files are named after their content's hash, so running it
//! again adds nothing twice (TLS flights carry fresh randoms, so each run adds new ones:
//! delete the old `hs-*` seeds first).
//!
//! seeds-dtb/ is made by hand (see fuzz/dts/README.md); seeds/ and seeds-kv/ predate this.

#[path = "../fuzz_targets/tls_common.rs"]
mod tls_common;

use std::path::Path;

use sha2::Digest;
use uni_runtime::xen_wire::blkif;
use uni_runtime::xen_wire::mem::{cells, SharedMem};
use uni_runtime::xen_wire::netif::{self, RxResponse, TxResponse};
use uni_runtime::xen_wire::xenstore::{MsgType, Packet, Repr};
use uni_tls::{Session, Status};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("seeds-{target}"));
    std::fs::create_dir_all(&dir).unwrap();
    let hash = sha2::Sha256::digest(bytes);
    let hex: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(dir.join(format!("{name}-{hex}")), bytes).unwrap();
}

fn xs(t: MsgType, req_id: u32, payload: &[u8]) -> Vec<u8> {
    let r = Repr {
        msg_type: t,
        req_id,
        tx_id: 0,
        payload,
    };
    let mut v = vec![0u8; r.buffer_len()];
    r.emit(&mut Packet::new_unchecked(&mut v[..]));
    v
}

fn xenstore() {
    let boot = [
        xs(MsgType::Read, 1, b"7"),
        xs(MsgType::Directory, 2, b"0\0"),
        xs(MsgType::Read, 3, b"/local/domain/0/backend/vif/7/0"),
        xs(MsgType::Watch, 4, b"OK\0"),
        xs(
            MsgType::WatchEvent,
            0,
            b"/local/domain/0/backend/vif/7/0/state\0backend\0",
        ),
        xs(MsgType::Read, 1, b"4"),
    ]
    .concat();
    write("xenstore", "boot", &[[0x05].as_slice(), &boot].concat());
    let tx = [
        xs(MsgType::TransactionStart, 1, b"42\0"),
        xs(MsgType::Write, 2, b"OK\0"),
        xs(MsgType::Error, 3, b"EAGAIN\0"),
        xs(MsgType::Error, 4, b"ENOENT\0"),
    ]
    .concat();
    write(
        "xenstore",
        "transaction",
        &[[0x11].as_slice(), &tx].concat(),
    );
    let events = [
        xs(MsgType::WatchEvent, 0, b"/local/domain/7/device/vif/0\0w\0"),
        xs(MsgType::WatchEvent, 0, b"/elsewhere\0other\0"),
        xs(MsgType::Directory, 2, b"vif\0vbd\0console\0"),
        xs(
            MsgType::WatchEvent,
            0,
            b"/local/domain/7/device/vbd/51712/state\0w\0",
        ),
    ]
    .concat();
    write("xenstore", "events", &[[0x3f].as_slice(), &events].concat());
    let mut too_long = xs(MsgType::Read, 1, b"x");
    too_long[12..16].copy_from_slice(&5000u32.to_le_bytes());
    write(
        "xenstore",
        "too-long",
        &[[0x01].as_slice(), &too_long].concat(),
    );
}

fn xen_rings() {
    use uni_runtime::xen_wire::console::field as con;
    // A console page mid-stream: 100 bytes pending, the producer near a wrap.
    let mut page = vec![0u8; 4096];
    {
        let p = cells(&mut page);
        p.write_u32(con::OUT_CONS, 0xffff_ff00);
        p.write_u32(con::OUT_PROD, 0xffff_ff64);
        p.write_u32(netif::field::RSP_PROD, 3);
    }
    let line = b"uni: Xen 4.17 (xen,xen-4.17), 128 MiB RAM, GICv2\n";
    write("xen_rings", "console", &[page.as_slice(), line].concat());
    // A netif RX page: responses in the first slots, as netback writes them.
    let mut page = vec![0u8; 4096];
    {
        let p = cells(&mut page);
        p.write_u32(netif::field::RSP_PROD, 3);
        for (i, (id, status)) in [(0u16, 60i16), (1, 1514), (2, -2)].into_iter().enumerate() {
            let mut raw = [0u8; netif::RX_SLOT_LEN];
            RxResponse {
                id,
                offset: 0,
                flags: netif::rxf::DATA_VALIDATED,
                status,
            }
            .emit(&mut raw)
            .unwrap();
            p.write_bytes(netif::slot_offset(i as u32, netif::RX_SLOT_LEN, 256), &raw);
        }
        p.write_bytes(16, &2u32.to_le_bytes()); // the target's knob: 2 requests out
    }
    write("xen_rings", "netif-rx", &page);
    // A blkif page: one read completed, one flush refused.
    let mut page = vec![0u8; 4096];
    {
        let p = cells(&mut page);
        p.write_u32(netif::field::RSP_PROD, 2);
        for (i, (id, op, st)) in [
            (0u64, blkif::op::READ, blkif::status::OKAY),
            (1, blkif::op::FLUSH_DISKCACHE, blkif::status::EOPNOTSUPP),
        ]
        .into_iter()
        .enumerate()
        {
            let mut raw = [0u8; blkif::RESPONSE_LEN];
            blkif::Response {
                id,
                operation: op,
                status: st,
            }
            .emit(&mut raw)
            .unwrap();
            p.write_bytes(
                netif::slot_offset(i as u32, blkif::SLOT_LEN, blkif::RING_SIZE),
                &raw,
            );
        }
        let mut req = blkif::Request::new(blkif::op::WRITE, 0, 7, 2048);
        req.push(blkif::Segment::page_prefix(77, 4096).unwrap())
            .unwrap();
        let mut raw = [0u8; blkif::SLOT_LEN];
        req.emit(&mut raw).unwrap();
        p.write_bytes(2048, &raw);
        p.write_bytes(16, &2u32.to_le_bytes());
    }
    write("xen_rings", "blkif", &page);
    write("xen_rings", "strings", b"8388608\n512\n4\n");
    write("xen_rings", "mac", b"00:16:3e:5a:01:02");
}

fn netfront() {
    // op, then 8 bytes (see fuzz_targets/netfront.rs)
    let step = |op: u8, arg: [u8; 8]| {
        let mut v = vec![op];
        v.extend_from_slice(&arg);
        v
    };
    let rx = |id: u16, offset: u16, flags: u16, status: i16| {
        let mut raw = [0u8; 8];
        RxResponse {
            id,
            offset,
            flags,
            status,
        }
        .emit(&mut raw)
        .unwrap();
        raw
    };
    let tx = |id: u16, status: i16| {
        let mut raw = [0u8; 8];
        let mut b = [0u8; netif::TX_SLOT_LEN];
        TxResponse { id, status }.emit(&mut b).unwrap();
        raw[..4].copy_from_slice(&b[..4]);
        raw
    };
    let mut s = Vec::new();
    // DHCP: frames arrive, are taken and re-posted; frames go out and complete.
    s.extend(step(0, rx(0, 0, netif::rxf::DATA_VALIDATED, 342)));
    s.extend(step(0, rx(1, 0, 0, 60)));
    s.extend(step(2, [0; 8]));
    s.extend(step(3, [0, 0, 0, 0, 0, 0, 0, 0]));
    s.extend(step(3, [1, 0, 0, 0, 0, 0, 0, 0]));
    s.extend(step(4, [20, 0, 0, 0, 0, 0, 0, 0]));
    s.extend(step(4, [0, 0, 0, 0, 0, 0, 0, 0]));
    s.extend(step(5, tx(0, netif::status::OKAY)));
    s.extend(step(5, tx(1, netif::status::DROPPED)));
    s.extend(step(7, [0; 8]));
    write("netfront", "dhcp", &s);
    let mut s = Vec::new();
    // A confused backend: a stray id, a fragment, an overrun, and an impossible index.
    s.extend(step(0, rx(300, 0, 0, 60)));
    s.extend(step(0, rx(2, 0, netif::rxf::MORE_DATA, 60)));
    s.extend(step(0, rx(3, 4000, 0, 200)));
    s.extend(step(2, [0; 8]));
    s.extend(step(4, [0; 8]));
    s.extend(step(5, tx(9, netif::status::OKAY)));
    s.extend(step(5, tx(0, netif::status::NULL)));
    s.extend(step(7, [0; 8]));
    s.extend(step(1, [0, 2, 0, 0, 0, 0, 0, 0]));
    s.extend(step(2, [0; 8]));
    s.extend(step(6, [0, 0, 0, 0, 9, 0, 0, 0]));
    s.extend(step(7, [0; 8]));
    write("netfront", "confused", &s);
}

fn http() {
    let requests: &[&[u8]] = &[
        b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\nHEAD /css/site.css HTTP/1.1\r\nHost: t\r\n\r\nGET /docs HTTP/1.1\r\nHost: t\r\n\r\nGET /docs/ HTTP/1.1\r\nHost: t\r\n\r\nGET /nope.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        b"GET /data.json HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"x\", *\r\n\r\nGET /data.json HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n\r\n",
        b"GET /index.html HTTP/1.1\r\nHost: t\r\nRange: bytes=2-9\r\n\r\nGET /index.html HTTP/1.1\r\nHost: t\r\nRange: bytes=-5\r\n\r\nGET /index.html HTTP/1.1\r\nHost: t\r\nRange: bytes=100-\r\n\r\n",
        b"POST /index.html HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabcDELETE / HTTP/1.1\r\nHost: t\r\n\r\nget / HTTP/1.1\r\nHost: t\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\nabcd",
        b"PUT /x HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
        b"GET /docs/a%20b/%C3%BC.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /../../etc/passwd HTTP/1.1\r\nHost: t\r\n\r\nGET /%2e%2e/x HTTP/1.0\r\n\r\n",
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /empty.txt HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
        b"GET http://t/index.html HTTP/1.1\r\nHost: t\r\n\r\nOPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n",
    ];
    for (i, r) in requests.iter().enumerate() {
        write("http", &format!("req{i}"), r);
    }
}

fn dns() {
    use simple_dns::rdata::{RData, A, CNAME};
    use simple_dns::{Name, Packet, Question, ResourceRecord, CLASS, QCLASS, QTYPE, RCODE, TYPE};
    let reply = |rcode: RCODE, answers: Vec<RData<'static>>| {
        let mut p = Packet::new_reply(0x2a2a);
        *p.rcode_mut() = rcode;
        p.questions.push(Question::new(
            Name::new_unchecked("example.org"),
            QTYPE::TYPE(TYPE::A),
            QCLASS::CLASS(CLASS::IN),
            false,
        ));
        for rd in answers {
            p.answers.push(ResourceRecord::new(
                Name::new_unchecked("example.org"),
                CLASS::IN,
                300,
                rd,
            ));
        }
        p.build_bytes_vec_compressed().unwrap()
    };
    let a = |x: [u8; 4]| {
        RData::A(A {
            address: u32::from_be_bytes(x),
        })
    };
    write(
        "dns",
        "a",
        &reply(RCODE::NoError, vec![a([93, 184, 215, 14])]),
    );
    write(
        "dns",
        "a2",
        &reply(RCODE::NoError, vec![a([10, 0, 0, 1]), a([10, 0, 0, 2])]),
    );
    write(
        "dns",
        "cname",
        &reply(
            RCODE::NoError,
            vec![
                RData::CNAME(CNAME(Name::new_unchecked("www.example.net"))),
                a([10, 0, 0, 3]),
            ],
        ),
    );
    write("dns", "nxdomain", &reply(RCODE::NameError, vec![]));
    write("dns", "refused", &reply(RCODE::Refused, vec![]));
    write("dns", "servfail", &reply(RCODE::ServerFailure, vec![]));
    write("dns", "nodata", &reply(RCODE::NoError, vec![]));
    let mut other = reply(RCODE::NoError, vec![a([1, 2, 3, 4])]);
    other[0] = 0x11;
    write("dns", "other-id", &other);
}

fn kv_ro() {
    let packs: &[&[(&str, &[u8])]] = &[
        &[
            ("index.html", b"<h1>hi</h1>"),
            ("css/site.css", b"body{}"),
            ("css/x/deep.css", b"x"),
            ("css.txt", b"not the dir"),
            ("docs/a b.txt", b"space"),
        ],
        &[],
        &[("empty", b"")],
        &[("a.txt", b"2"), ("a/b", b"3"), ("a/c/d", b"4")],
    ];
    for (i, files) in packs.iter().enumerate() {
        let values: Vec<(&str, &[u8], [u8; 32])> = files
            .iter()
            .map(|&(k, v)| (k, v, sha2::Sha256::digest(v).into()))
            .collect();
        write(
            "kv_ro",
            &format!("pack{i}"),
            &uni_runtime::kv::pack(&values),
        );
    }
}

fn boot_args() {
    for (i, line) in [
        "--uni-boot-info --ipv4=10.0.0.9/24 --ipv4-gateway=10.0.0.1",
        "--port 8080 --verbose --port=9090",
        "--nameserver=10.0.0.1:5353 --uni-timestamps",
        "--ipv4-gateway=10.0.0.1",
        "--ipv4=10.0.0.2",
        "stray --x",
        "--",
        "--=v --k= --tap=uni0",
    ]
    .iter()
    .enumerate()
    {
        write("boot_args", &format!("line{i}"), line.as_bytes());
    }
}

/// One real handshake, data both ways and a close, in memory: what each side wrote.
fn handshake(
    versions: Option<Vec<&'static uni_tls::rustls::SupportedProtocolVersion>>,
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut c = Session::client(tls_common::client_for(versions), "localhost").unwrap();
    let mut s = Session::server(tls_common::server()).unwrap();
    let (mut from_client, mut from_server) = (Vec::new(), Vec::new());
    let mut to_server = c.handle(&[]).unwrap().to_send;
    for _ in 0..10 {
        from_client.push(to_server.clone());
        let out = s.handle(&to_server).unwrap();
        from_server.push(out.to_send.clone());
        to_server = c.handle(&out.to_send).unwrap().to_send;
        if c.status() == Status::Established && s.status() == Status::Established {
            break;
        }
    }
    if !to_server.is_empty() {
        from_client.push(to_server.clone());
        let out = s.handle(&to_server).unwrap();
        from_server.push(out.to_send);
    }
    from_client.push(
        c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap(),
    );
    from_server.push(
        s.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
            .unwrap(),
    );
    from_client.push(c.close().unwrap());
    from_server.push(s.close().unwrap());
    from_client.retain(|w| !w.is_empty());
    from_server.retain(|w| !w.is_empty());
    (from_client, from_server)
}

fn tls() {
    use uni_tls::rustls::version::{TLS12, TLS13};
    for (name, v) in [("hs-tls12", vec![&TLS12]), ("hs-tls13", vec![&TLS13])] {
        let (c, s) = handshake(Some(v));
        // The first flight alone, whole flights, and each flight cut in two.
        write(
            "tls_server",
            &format!("{name}-hello"),
            &tls_common::framed(&c[..1]),
        );
        write("tls_server", name, &tls_common::framed(&c));
        write(
            "tls_client",
            &format!("{name}-hello"),
            &tls_common::framed(&s[..1]),
        );
        write("tls_client", name, &tls_common::framed(&s));
        let split = |ws: &[Vec<u8>]| -> Vec<Vec<u8>> {
            ws.iter()
                .flat_map(|w| {
                    let (a, b) = w.split_at(w.len() / 2);
                    [a.to_vec(), b.to_vec()]
                })
                .collect()
        };
        write(
            "tls_server",
            &format!("{name}-split"),
            &tls_common::framed(&split(&c)),
        );
        write(
            "tls_client",
            &format!("{name}-split"),
            &tls_common::framed(&split(&s)),
        );
    }
}

fn main() {
    xenstore();
    xen_rings();
    netfront();
    http();
    dns();
    kv_ro();
    boot_args();
    tls();
}
