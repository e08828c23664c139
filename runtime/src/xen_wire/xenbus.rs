//! XenBus, the device handshake over xenstore (`xen/include/public/io/xenbus.h`): each side of a
//! split device has a `state` node, and the front end and the back end move through these states
//! as they connect (Initialising, InitWait, Initialised, Connected) and disconnect (Closing,
//! Closed).

use core::fmt;

/// `enum xenbus_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XenbusState {
    /// 0.
    Unknown,
    /// 1.
    Initialising,
    /// 2: the backend waits for the frontend's ring details.
    InitWait,
    /// 3.
    Initialised,
    /// 4.
    Connected,
    /// 5: the device is being torn down.
    Closing,
    /// 6.
    Closed,
    /// 7.
    Reconfiguring,
    /// 8.
    Reconfigured,
}

impl XenbusState {
    /// Parses a `state` node's value; anything unknown is `Unknown`.
    pub fn parse(s: &str) -> XenbusState {
        match s.trim().parse::<u32>() {
            Ok(1) => XenbusState::Initialising,
            Ok(2) => XenbusState::InitWait,
            Ok(3) => XenbusState::Initialised,
            Ok(4) => XenbusState::Connected,
            Ok(5) => XenbusState::Closing,
            Ok(6) => XenbusState::Closed,
            Ok(7) => XenbusState::Reconfiguring,
            Ok(8) => XenbusState::Reconfigured,
            _ => XenbusState::Unknown,
        }
    }

    /// The value written to a `state` node.
    pub fn value(self) -> &'static str {
        match self {
            XenbusState::Unknown => "0",
            XenbusState::Initialising => "1",
            XenbusState::InitWait => "2",
            XenbusState::Initialised => "3",
            XenbusState::Connected => "4",
            XenbusState::Closing => "5",
            XenbusState::Closed => "6",
            XenbusState::Reconfiguring => "7",
            XenbusState::Reconfigured => "8",
        }
    }
}

impl fmt::Display for XenbusState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            XenbusState::Unknown => "Unknown",
            XenbusState::Initialising => "Initialising",
            XenbusState::InitWait => "InitWait",
            XenbusState::Initialised => "Initialised",
            XenbusState::Connected => "Connected",
            XenbusState::Closing => "Closing",
            XenbusState::Closed => "Closed",
            XenbusState::Reconfiguring => "Reconfiguring",
            XenbusState::Reconfigured => "Reconfigured",
        };
        write!(f, "{name} ({})", self.value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn states_parse_and_print() {
        assert_eq!(XenbusState::parse("4"), XenbusState::Connected);
        assert_eq!(XenbusState::parse(" 6\n"), XenbusState::Closed);
        assert_eq!(XenbusState::parse("x"), XenbusState::Unknown);
        assert_eq!(XenbusState::Closing.to_string(), "Closing (5)");
        assert_eq!(XenbusState::InitWait.value(), "2");
    }
}
