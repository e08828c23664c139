//! Fuzzes the xenstore client's side of the wire: a stream of replies and watch events from
//! xenstored, fed to the real `Session` in chunks and through the real page pump
//! (`xen_wire::xenstore`).
//!
//! Input: one byte (chunk size and starting ring index), then the byte stream xenstored sends.
//! Properties: the session sees exactly the messages an independent parse of the stream finds
//! (replies by `req_id`, watch events in order), whatever the chunking; a malformed header
//! breaks the session for good; every message round-trips through `Repr`; each payload parser
//! gives a value or an error that says what was wrong; the pump refuses impossible ring
//! indices and moves exactly the bytes the ring holds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uni_runtime::device::XenstoreError;
use uni_runtime::xen_wire::mem::{cells, SharedMem};
use uni_runtime::xen_wire::ring;
use uni_runtime::xen_wire::xenstore::ring::{page, pump, RING};
use uni_runtime::xen_wire::xenstore::session::Session;
use uni_runtime::xen_wire::xenstore::{
    error_from_payload, parse_directory, parse_tx_id, parse_value, parse_watch_event, Message,
    MsgType, Packet, Repr, WireError,
};

/// The requests a guest has in flight while the stream arrives: ids 1..=4.
const REQUESTS: u32 = 4;
const TOKENS: [&str; 2] = ["w", "backend"];

fn session() -> Session {
    let mut s = Session::new();
    for t in TOKENS {
        s.add_watch(t);
    }
    for i in 0..REQUESTS {
        let id = s.request(MsgType::Read, 0, b"name\0").unwrap();
        assert_eq!(id, i + 1);
    }
    let n = s.output().0.len() + s.output().1.len();
    s.consume_output(n);
    s
}

/// What a session must have after `stream`: the messages, and whether a bad header came.
fn reference(stream: &[u8]) -> (Vec<Message>, bool) {
    let mut msgs = Vec::new();
    let mut rest = stream;
    loop {
        match Packet::new_checked(rest) {
            Ok(p) => {
                let r = Repr::parse(&p).expect("a checked packet parses");
                let mut out = vec![0u8; r.buffer_len()];
                r.emit(&mut Packet::new_unchecked(&mut out[..]));
                assert_eq!(out, &rest[..p.total_len()], "emit(parse(m)) == m");
                msgs.push(Message {
                    msg_type: r.msg_type,
                    req_id: r.req_id,
                    tx_id: r.tx_id,
                    payload: r.payload.to_vec(),
                });
                rest = &rest[p.total_len()..];
            }
            Err(WireError::Truncated) => return (msgs, false),
            Err(WireError::TooLong) => return (msgs, true),
        }
    }
}

fn check_payload_parsers(m: &Message) {
    let p = &m.payload;
    if let Ok(v) = parse_value(p) {
        assert_eq!(v.as_bytes(), &p[..]);
    }
    if let Ok(names) = parse_directory(p) {
        assert!(names.iter().all(|n| !n.is_empty() && !n.contains('\0')));
        assert!(names.len() <= p.len());
    }
    if let Ok(id) = parse_tx_id(p) {
        let text = p.split(|&b| b == 0).next().unwrap();
        assert_eq!(
            std::str::from_utf8(text).unwrap().parse::<u32>().unwrap(),
            id
        );
    }
    match parse_watch_event(p) {
        Ok((path, token)) => assert!(!path.contains('\0') && !token.contains('\0')),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    let e = error_from_payload(p);
    assert!(!e.to_string().is_empty());
    match m.clone().into_result(MsgType::Read) {
        Ok(v) => assert_eq!(m.msg_type, MsgType::Read, "{v:?}"),
        Err(XenstoreError::Protocol(what)) => assert!(!what.is_empty()),
        Err(_) => assert_eq!(m.msg_type, MsgType::Error),
    }
}

/// Drains what `s` holds: replies to ids 1..=4 and the events of each token.
fn drain(s: &mut Session) -> (Vec<Option<Message>>, Vec<Vec<String>>) {
    let replies = (1..=REQUESTS).map(|id| s.take_reply(id)).collect();
    let events = TOKENS
        .iter()
        .map(|t| std::iter::from_fn(|| s.take_event(t)).collect())
        .collect();
    (replies, events)
}

fuzz_target!(|data: &[u8]| {
    let Some((&knob, stream)) = data.split_first() else {
        return;
    };
    let (msgs, bad_header) = reference(stream);
    for m in &msgs {
        check_payload_parsers(m);
    }

    // What the session must hold: the last reply to each id, and each token's events.
    let mut want_replies: Vec<Option<Message>> = vec![None; REQUESTS as usize];
    let mut want_events: Vec<Vec<String>> = vec![Vec::new(); TOKENS.len()];
    for m in &msgs {
        if m.msg_type == MsgType::WatchEvent {
            if let Ok((path, token)) = parse_watch_event(&m.payload) {
                if let Some(i) = TOKENS.iter().position(|t| *t == token) {
                    want_events[i].push(path);
                }
            }
        } else if (1..=REQUESTS).contains(&m.req_id) {
            want_replies[m.req_id as usize - 1] = Some(m.clone());
        }
    }

    // Whole, then in chunks: the same result.
    let chunk = usize::from(knob % 64) + 1;
    for size in [stream.len().max(1), chunk] {
        let mut s = session();
        let mut result = Ok(());
        for c in stream.chunks(size) {
            result = s.receive(c);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result.is_err(), bad_header, "chunks of {size}");
        assert_eq!(s.is_broken(), bad_header);
        if bad_header {
            assert!(s.receive(&[]).is_err(), "a broken session stays broken");
        }
        let (replies, events) = drain(&mut s);
        assert_eq!(replies, want_replies, "chunks of {size}");
        assert_eq!(events, want_events, "chunks of {size}");
    }

    // Through the page: xenstored put (up to) 1 KiB at ring index `start`.
    let mut buf = [0u8; 4096];
    let p = cells(&mut buf);
    let start = u32::from(knob).wrapping_mul(0x0101_0101) ^ 0xffff_fc00;
    let shown = &stream[..stream.len().min(1024)];
    p.write_u32(page::RSP_CONS, start);
    p.write_u32(page::RSP_PROD, start);
    let n = ring::write(RING, p, page::RSP.start, start, start, shown).unwrap();
    assert_eq!(n, shown.len());
    p.write_u32(page::RSP_PROD, start.wrapping_add(n as u32));
    let mut s = session();
    let mut kicked = false;
    let r = pump(p, &mut s, || kicked = true);
    assert_eq!(kicked, n > 0);
    assert_eq!(p.read_u32(page::RSP_CONS), start.wrapping_add(n as u32));
    let (_, bad) = reference(shown);
    assert_eq!(r.is_err(), bad);

    // Indices xenstored should never write: refused, nothing consumed.
    if stream.len() >= 8 {
        let cons = u32::from_le_bytes(stream[..4].try_into().unwrap());
        let prod = u32::from_le_bytes(stream[4..8].try_into().unwrap());
        let mut buf = [0u8; 4096];
        let p = cells(&mut buf);
        p.write_u32(page::RSP_CONS, cons);
        p.write_u32(page::RSP_PROD, prod);
        let mut s = Session::new();
        let r = pump(p, &mut s, || {});
        if prod.wrapping_sub(cons) > 1024 {
            assert!(r.is_err());
            assert_eq!(p.read_u32(page::RSP_CONS), cons);
        }
    }
});
