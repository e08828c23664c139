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
        let bad = |v: &str| NetConfigError {
            arg: "nameserver",
            value: v.to_string(),
            expected: "an IPv4 address, optionally with a port, like 9.9.9.9 or 10.0.0.1:5353",
        };
        let nameserver = match boot_args.get("nameserver").or(nameserver) {
            None => None,
            Some(v) => Some(parse_server(v).ok_or_else(|| bad(v))?),
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
            let Ok(reply) = Packet::parse(&buf[..n]) else {
                continue; // garbage: keep waiting for the real answer
            };
            if reply.id() != id {
                continue;
            }
            return match reply.rcode() {
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
                        Ok(Some(addrs))
                    }
                }
                RCODE::NameError => Err(DnsError::NotFound(name.to_string())),
                other => Err(DnsError::Server(format!("{other:?}"))),
            };
        }
    }
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
