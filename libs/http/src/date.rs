//! The `Date` header: IMF-fixdate (RFC 9110 §5.6.7) from the wall clock.

use uni_runtime::device::WallTime;

/// Wall-clock times before this (2020-01-01) mean the clock was never set; RFC 9110 §6.6.1
/// says a server without a reliable clock MUST NOT send `Date`.
const PLAUSIBLE: u64 = 1_577_836_800;

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `now` as an IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`, or `None` when the clock has
/// not been set.
pub(crate) fn imf_fixdate(now: WallTime) -> Option<impl core::fmt::Display> {
    (now.secs >= PLAUSIBLE).then_some(Fixdate(now.secs))
}

struct Fixdate(u64);

impl core::fmt::Display for Fixdate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let days = self.0 / 86_400;
        let secs = self.0 % 86_400;
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
            DAYS[(days % 7) as usize],
            MONTHS[(month - 1) as usize],
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        )
    }
}

/// The proleptic Gregorian (year, month 1–12, day 1–31) of `days` since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn at(secs: u64) -> alloc::string::String {
        imf_fixdate(WallTime { secs, nanos: 0 })
            .map(|d| d.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn dates() {
        assert_eq!(at(1_577_836_800), "Wed, 01 Jan 2020 00:00:00 GMT");
        assert_eq!(at(1_582_934_400 + 86_399), "Sat, 29 Feb 2020 23:59:59 GMT");
        assert_eq!(at(1_795_000_000), "Wed, 18 Nov 2026 11:06:40 GMT");
        assert_eq!(at(4_107_542_400), "Mon, 01 Mar 2100 00:00:00 GMT");
        assert_eq!(at(0), "", "an unset clock gives no Date");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
    }
}
