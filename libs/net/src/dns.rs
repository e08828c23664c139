//! A stub DNS resolver over any [`Stack`]'s UDP: one A query to the configured nameserver,
//! retried on timeout. The wire format is simple-dns's.

use alloc::format;
use alloc::string::ToString;
use alloc::vec::Vec;
use core::future::{poll_fn, Future};
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::pin::pin;
use core::task::Poll;
use core::time::Duration;

use simple_dns::rdata::RData;
use simple_dns::{Name, Packet, Question, CLASS, QCLASS, QTYPE, RCODE, TYPE};
use uni_runtime::device::net::{Stack, UdpSocket};
use uni_runtime::device::Clock;
use uni_runtime::device::{DnsError, Resolver};
use uni_runtime::BootArgs;

use crate::NetConfigError;

const TRIES: usize = 3;
const WAIT: Duration = Duration::from_secs(2);

/// Resolves names by asking one nameserver over `S`.
pub struct StubResolver<S: Stack, C: Clock> {
    stack: S,
    clock: C,
    nameserver: Option<SocketAddr>,
}

/// `A.B.C.D` or `A.B.C.D:PORT` (port 53 by default).
fn parse_server(s: &str) -> Option<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a);
    }
    s.parse::<Ipv4Addr>()
        .ok()
        .map(|ip| SocketAddr::new(IpAddr::V4(ip), 53))
}

impl<S: Stack, C: Clock> StubResolver<S, C> {
    /// A resolver asking `nameserver` (from unikernel.toml), or the boot argument
    /// `--nameserver=A.B.C.D[:PORT]`, which wins.
    pub fn new(
        stack: S,
        clock: C,
        nameserver: Option<&str>,
        boot_args: &BootArgs,
    ) -> Result<Self, NetConfigError> {
        let nameserver = match boot_args.get("nameserver").or(nameserver) {
            None => None,
            Some(v) => Some(parse_nameserver(v)?),
        };
        Ok(StubResolver {
            stack,
            clock,
            nameserver,
        })
    }

    async fn ask(
        &self,
        server: SocketAddr,
        query: &[u8],
        id: u16,
        name: &str,
    ) -> Result<Option<Vec<Ipv4Addr>>, DnsError> {
        let sock = self
            .stack
            .bind_udp(0)
            .await
            .map_err(|e| DnsError::Net(e.to_string()))?;
        sock.send_to(query, server)
            .await
            .map_err(|e| DnsError::Net(e.to_string()))?;
        let mut timeout = pin!(self.clock.sleep(WAIT));
        let mut buf = [0u8; 1500];
        loop {
            let got = {
                let mut recv = pin!(sock.recv_from(&mut buf));
                poll_fn(|cx| {
                    if let Poll::Ready(r) = recv.as_mut().poll(cx) {
                        return Poll::Ready(Some(r));
                    }
                    timeout.as_mut().poll(cx).map(|()| None)
                })
                .await
            };
            let (n, from) = match got {
                None => return Ok(None),
                Some(r) => r.map_err(|e| DnsError::Net(e.to_string()))?,
            };
            if from != server {
                continue; // not our server: ignore
            }
            if let Some(result) = answer(&buf[..n], id, name) {
                return result.map(Some);
            }
            // garbage, or another query's reply: keep waiting for the real answer
        }
    }
}

/// What the datagram `reply` means for the A query `id` about `name`: `None` if it is not a
/// reply to it (unparseable, or another id), so the resolver keeps waiting; else the addresses,
/// or why there are none. Fuzzed (fuzz/ `dns`).
pub fn answer(reply: &[u8], id: u16, name: &str) -> Option<Result<Vec<Ipv4Addr>, DnsError>> {
    let reply = Packet::parse(reply).ok()?;
    if reply.id() != id {
        return None;
    }
    Some(match reply.rcode() {
        RCODE::NoError => {
            let addrs: Vec<Ipv4Addr> = reply
                .answers
                .iter()
                .filter_map(|rr| match &rr.rdata {
                    RData::A(a) => Some(Ipv4Addr::from(a.address)),
                    _ => None,
                })
                .collect();
            if addrs.is_empty() {
                Err(DnsError::NotFound(name.to_string()))
            } else {
                Ok(addrs)
            }
        }
        RCODE::NameError => Err(DnsError::NotFound(name.to_string())),
        other => Err(DnsError::Server(rcode_name(other).to_string())),
    })
}

/// The RFC name of an error code, as people know it (`SERVFAIL`, `REFUSED`, ...).
fn rcode_name(rcode: RCODE) -> &'static str {
    match rcode {
        RCODE::NoError => "NOERROR",
        RCODE::FormatError => "FORMERR",
        RCODE::ServerFailure => "SERVFAIL",
        RCODE::NameError => "NXDOMAIN",
        RCODE::NotImplemented => "NOTIMP",
        RCODE::Refused => "REFUSED",
        RCODE::YXDOMAIN => "YXDOMAIN",
        RCODE::YXRRSET => "YXRRSET",
        RCODE::NXRRSET => "NXRRSET",
        RCODE::NOTAUTH => "NOTAUTH",
        RCODE::NOTZONE => "NOTZONE",
        RCODE::BADVERS => "BADVERS",
        RCODE::Reserved => "an unknown error code",
    }
}

/// The nameserver setting (`nameserver` in unikernel.toml, or `--nameserver=`): `A.B.C.D` or
/// `A.B.C.D:PORT`, port 53 by default.
pub fn parse_nameserver(value: &str) -> Result<SocketAddr, NetConfigError> {
    parse_server(value).ok_or_else(|| NetConfigError {
        arg: "nameserver",
        value: value.to_string(),
        expected: "an IPv4 address, optionally with a port, like 9.9.9.9 or 10.0.0.1:5353",
    })
}

impl<S: Stack, C: Clock> Resolver for StubResolver<S, C> {
    async fn lookup_ipv4(&self, name: &str) -> Result<Vec<Ipv4Addr>, DnsError> {
        if let Ok(ip) = name.parse::<Ipv4Addr>() {
            return Ok(alloc::vec![ip]);
        }
        let server = self.nameserver.ok_or_else(|| {
            DnsError::Net("no nameserver configured (set `nameserver` or --nameserver=)".into())
        })?;
        let qname = Name::new(name)
            .map_err(|e| DnsError::Malformed(format!("`{name}` is not a DNS name: {e}")))?;
        // Query ids need not be secret from an on-path attacker here, only distinct.
        let id = (self.clock.now().as_nanos() as u16) ^ 0x5a5a;
        let mut q = Packet::new_query(id);
        q.set_flags(simple_dns::PacketFlag::RECURSION_DESIRED);
        q.questions.push(Question::new(
            qname,
            QTYPE::TYPE(TYPE::A),
            QCLASS::CLASS(CLASS::IN),
            false,
        ));
        let bytes = q
            .build_bytes_vec()
            .map_err(|e| DnsError::Malformed(format!("building the query: {e}")))?;
        for _ in 0..TRIES {
            if let Some(addrs) = self.ask(server, &bytes, id, name).await? {
                return Ok(addrs);
            }
        }
        Err(DnsError::TimedOut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simple_dns::rdata::A;
    use simple_dns::ResourceRecord;

    fn reply(id: u16, rcode: RCODE, addrs: &[[u8; 4]]) -> Vec<u8> {
        let mut p = Packet::new_reply(id);
        *p.rcode_mut() = rcode;
        for a in addrs {
            p.answers.push(ResourceRecord::new(
                Name::new_unchecked("example.org"),
                CLASS::IN,
                60,
                RData::A(A {
                    address: u32::from_be_bytes(*a),
                }),
            ));
        }
        p.build_bytes_vec().unwrap()
    }

    #[test]
    fn answers_errors_and_strangers() {
        assert_eq!(
            answer(
                &reply(7, RCODE::NoError, &[[10, 0, 0, 1], [10, 0, 0, 2]]),
                7,
                "x"
            ),
            Some(Ok(alloc::vec![
                Ipv4Addr::new(10, 0, 0, 1),
                Ipv4Addr::new(10, 0, 0, 2)
            ]))
        );
        assert_eq!(
            answer(&reply(8, RCODE::NoError, &[[1, 2, 3, 4]]), 7, "x"),
            None
        );
        assert_eq!(answer(b"\x00\x07garbage", 7, "x"), None);
        assert_eq!(
            answer(&reply(7, RCODE::NoError, &[]), 7, "x"),
            Some(Err(DnsError::NotFound("x".into())))
        );
        let refused = answer(&reply(7, RCODE::Refused, &[]), 7, "x")
            .unwrap()
            .unwrap_err();
        assert_eq!(refused.to_string(), "dns: the nameserver answered REFUSED");
        assert_eq!(
            parse_nameserver("10.0.0.1:5353").unwrap(),
            "10.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(
            parse_nameserver("dns.example").unwrap_err().to_string(),
            "boot argument --nameserver=dns.example: expected an IPv4 address, optionally with a port, like 9.9.9.9 or 10.0.0.1:5353"
        );
    }
}
