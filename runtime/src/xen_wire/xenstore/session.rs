//! The client's protocol state, without any IO: request ids, queued request bytes, the partial
//! incoming message, replies waiting for their requester, and watch events waiting for their
//! watcher. Replies are matched by `req_id`, never by order.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::{parse_watch_event, Message, MsgType, Packet, Repr, WireError, PAYLOAD_MAX};
use crate::device::XenstoreError;

/// A client's protocol state: outgoing bytes, partial incoming message, replies waiting for their
/// requester, and watch events waiting for their watcher.
#[derive(Debug, Default)]
pub struct Session {
    next_req_id: u32,
    out: VecDeque<u8>,
    partial: Vec<u8>,
    replies: BTreeMap<u32, Option<Message>>,
    watches: BTreeMap<String, VecDeque<String>>,
    broken: Option<WireError>,
}

impl Session {
    /// A fresh session.
    pub fn new() -> Session {
        Session {
            next_req_id: 1,
            ..Session::default()
        }
    }

    /// Queues a request and returns its `req_id`. The reply is later available from
    /// [`take_reply`](Session::take_reply).
    pub fn request(
        &mut self,
        msg_type: MsgType,
        tx_id: u32,
        payload: &[u8],
    ) -> Result<u32, XenstoreError> {
        if payload.len() > PAYLOAD_MAX {
            return Err(XenstoreError::Protocol("request longer than 4096 bytes"));
        }
        let req_id = self.next_req_id;
        self.next_req_id = self.next_req_id.wrapping_add(1).max(1);
        let repr = Repr {
            msg_type,
            req_id,
            tx_id,
            payload,
        };
        let mut buf = alloc::vec![0u8; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
        self.out.extend(buf);
        self.replies.insert(req_id, None);
        Ok(req_id)
    }

    /// The queued request bytes, in order (two slices because the queue may wrap).
    pub fn output(&self) -> (&[u8], &[u8]) {
        self.out.as_slices()
    }

    /// Drops the first `n` queued bytes after they were copied to the ring.
    pub fn consume_output(&mut self, n: usize) {
        self.out.drain(..n.min(self.out.len()));
    }

    /// Whether request bytes are still queued.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Feeds bytes read from the response ring. Complete messages become replies or watch events;
    /// replies nobody waits for and events for unknown tokens are dropped.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<(), XenstoreError> {
        if let Some(e) = self.broken {
            return Err(e.into());
        }
        self.partial.extend_from_slice(bytes);
        loop {
            let p = Packet::new_unchecked(&self.partial[..]);
            match p.check_len() {
                Err(WireError::Truncated) => return Ok(()),
                Err(e) => {
                    self.broken = Some(e);
                    return Err(e.into());
                }
                Ok(()) => {}
            }
            let total = p.total_len();
            let msg = Message {
                msg_type: p.msg_type(),
                req_id: p.req_id(),
                tx_id: p.tx_id(),
                payload: p.payload().to_vec(),
            };
            self.partial.drain(..total);
            self.dispatch(msg);
        }
    }

    fn dispatch(&mut self, msg: Message) {
        if msg.msg_type == MsgType::WatchEvent {
            if let Ok((path, token)) = parse_watch_event(&msg.payload) {
                if let Some(q) = self.watches.get_mut(&token) {
                    q.push_back(path);
                }
            }
            return;
        }
        if let Some(slot) = self.replies.get_mut(&msg.req_id) {
            *slot = Some(msg);
        }
    }

    /// The reply to `req_id`, once it has arrived.
    pub fn take_reply(&mut self, req_id: u32) -> Option<Message> {
        match self.replies.get(&req_id) {
            Some(Some(_)) => self.replies.remove(&req_id).flatten(),
            _ => None,
        }
    }

    /// Forgets `req_id` (its requester went away); its reply will be dropped.
    pub fn cancel(&mut self, req_id: u32) {
        self.replies.remove(&req_id);
    }

    /// Starts collecting events for `token`.
    pub fn add_watch(&mut self, token: &str) {
        self.watches.entry(token.to_string()).or_default();
    }

    /// Stops collecting events for `token`.
    pub fn remove_watch(&mut self, token: &str) {
        self.watches.remove(token);
    }

    /// The next path that fired for `token`.
    pub fn take_event(&mut self, token: &str) -> Option<String> {
        self.watches.get_mut(token)?.pop_front()
    }

    /// The stream is unusable (a malformed header arrived).
    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::{parse_directory, HEADER_LEN};
    use super::*;

    /// A message's bytes.
    pub fn msg(t: u32, req: u32, tx: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [t, req, tx, payload.len() as u32] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn replies_are_matched_by_req_id_across_interleaved_watch_events() {
        let mut s = Session::new();
        s.add_watch("w");
        let a = s.request(MsgType::Read, 0, b"name\0").unwrap();
        let b = s.request(MsgType::Directory, 0, b"device\0").unwrap();
        let (x, y) = s.output();
        let sent = [x, y].concat();
        assert_eq!(sent.len(), 2 * HEADER_LEN + 5 + 7);
        s.consume_output(sent.len());
        assert!(!s.has_output());

        // b's reply first, then an event, then a's reply split in odd places.
        let mut stream = msg(1, b, 0, b"vif\0vbd\0");
        stream.extend(msg(15, 0, 0, b"/local/domain/3/x\0w\0"));
        stream.extend(msg(15, 0, 0, b"/elsewhere\0other\0"));
        stream.extend(msg(2, a, 0, b"hello"));
        for chunk in stream.chunks(5) {
            s.receive(chunk).unwrap();
        }
        assert_eq!(
            s.take_reply(a).unwrap().into_result(MsgType::Read).unwrap(),
            b"hello"
        );
        let dir = s
            .take_reply(b)
            .unwrap()
            .into_result(MsgType::Directory)
            .unwrap();
        assert_eq!(parse_directory(&dir).unwrap(), ["vif", "vbd"]);
        assert_eq!(s.take_reply(a), None);
        assert_eq!(s.take_event("w").as_deref(), Some("/local/domain/3/x"));
        assert_eq!(s.take_event("w"), None);
        assert_eq!(s.take_event("other"), None);
    }

    #[test]
    fn errors_and_cancelled_requests() {
        let mut s = Session::new();
        let a = s.request(MsgType::Read, 0, b"nope\0").unwrap();
        let b = s.request(MsgType::Read, 0, b"gone\0").unwrap();
        s.cancel(b);
        s.receive(&msg(16, b, 0, b"ENOENT\0")).unwrap();
        s.receive(&msg(16, a, 0, b"ENOENT\0")).unwrap();
        assert_eq!(s.take_reply(b), None);
        assert_eq!(
            s.take_reply(a).unwrap().into_result(MsgType::Read),
            Err(XenstoreError::NoEntry)
        );
        let mut bad = msg(2, 9, 0, &[]);
        bad[12..16].copy_from_slice(&100_000u32.to_le_bytes());
        assert!(s.receive(&bad).is_err());
        assert!(s.is_broken());
    }
}
