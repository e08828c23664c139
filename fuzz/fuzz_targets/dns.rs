//! Fuzzes the DNS resolver's response handling (`uni_net::dns::answer`, what
//! `StubResolver` does with each datagram from its nameserver).
//!
//! Input: a datagram as the nameserver's reply to query id 0x2a2a for `example.org`.
//! Properties: a reply with another id, or one simple-dns cannot parse, is ignored (the
//! resolver keeps waiting); otherwise the result is the reply's A records, in order, or an
//! error naming the name or the server's RFC error code, never a Rust Debug form; the addresses
//! are no more than the datagram could carry (15 bytes per A record at least).
#![no_main]

use libfuzzer_sys::fuzz_target;
use uni_net::dns::answer;
use uni_runtime::device::DnsError;

const ID: u16 = 0x2a2a;
const NAME: &str = "example.org";
const CODES: [&str; 13] = [
    "NOERROR",
    "FORMERR",
    "SERVFAIL",
    "NXDOMAIN",
    "NOTIMP",
    "REFUSED",
    "YXDOMAIN",
    "YXRRSET",
    "NXRRSET",
    "NOTAUTH",
    "NOTZONE",
    "BADVERS",
    "an unknown error code",
];

fuzz_target!(|data: &[u8]| {
    let parsed = simple_dns::Packet::parse(data).ok();
    match answer(data, ID, NAME) {
        None => assert!(parsed.is_none_or(|p| p.id() != ID)),
        Some(result) => {
            let p = parsed.expect("an answer comes from a parsed reply");
            assert_eq!(p.id(), ID);
            match result {
                Ok(addrs) => {
                    assert!(!addrs.is_empty());
                    assert!(12 + addrs.len() * 15 <= data.len());
                    let want: Vec<_> = p
                        .answers
                        .iter()
                        .filter_map(|rr| match &rr.rdata {
                            simple_dns::rdata::RData::A(a) => {
                                Some(std::net::Ipv4Addr::from(a.address))
                            }
                            _ => None,
                        })
                        .collect();
                    assert_eq!(addrs, want);
                }
                Err(DnsError::NotFound(n)) => assert_eq!(n, NAME),
                Err(DnsError::Server(code)) => {
                    assert!(CODES.contains(&code.as_str()), "{code}");
                    let shown = DnsError::Server(code).to_string();
                    assert!(!shown.contains('{') && !shown.contains("::"), "{shown}");
                }
                Err(e) => panic!("unexpected error kind: {e}"),
            }
        }
    }
    // And the nameserver setting, from the same bytes as text.
    let text = String::from_utf8_lossy(&data[..data.len().min(64)]);
    match uni_net::dns::parse_nameserver(&text) {
        Ok(a) => assert!(a.is_ipv4()),
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.starts_with("boot argument --nameserver="), "{shown}");
            assert!(shown.contains(&*text));
        }
    }
});
