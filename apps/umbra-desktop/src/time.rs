//! Times as the app shows them, from unix milliseconds, in local time: a [`Zone`] is the
//! machine's offset from UTC, read once when the app starts (on Linux the offset can only be
//! read safely while the process has one thread, so before the back end starts; a change
//! of daylight saving time while the app runs shows after a restart).

/// The offset from UTC that times are shown in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Zone {
    offset_s: i32,
}

impl Zone {
    /// UTC.
    pub fn utc() -> Self {
        Self::default()
    }

    /// A fixed offset east of UTC, seconds.
    pub fn from_offset_seconds(offset_s: i32) -> Self {
        Self { offset_s }
    }

    /// The machine's offset now, or UTC when it cannot be known safely: call it before the
    /// process starts a thread (`time` refuses to read it afterwards on Linux, where reading
    /// the environment races other threads).
    pub fn local() -> Self {
        ::time::UtcOffset::current_local_offset().map_or_else(
            |_| Self::utc(),
            |o| Self::from_offset_seconds(o.whole_seconds()),
        )
    }

    /// `ms` moved by the offset, so that the UTC calendar below reads local time.
    fn shift(self, ms: u64) -> u64 {
        let shifted = i128::from(ms) + i128::from(self.offset_s) * 1000;
        u64::try_from(shifted.max(0)).unwrap_or(u64::MAX)
    }

    /// `HH:MM` of a time.
    pub(crate) fn clock(self, ms: u64) -> String {
        clock(self.shift(ms))
    }

    /// The local day number of a time (for day separators).
    pub(crate) fn day(self, ms: u64) -> u64 {
        day(self.shift(ms))
    }

    /// What the conversation list shows: the time today, else the date.
    pub(crate) fn short(self, ms: u64, now_ms: u64) -> String {
        short(self.shift(ms), self.shift(now_ms))
    }

    /// A day separator's text.
    pub(crate) fn separator(self, ms: u64, now_ms: u64) -> String {
        separator(self.shift(ms), self.shift(now_ms))
    }
}

/// `HH:MM` of a time.
fn clock(ms: u64) -> String {
    let secs = ms / 1000;
    let day_secs = secs % 86_400;
    format!("{:02}:{:02}", day_secs / 3600, (day_secs % 3600) / 60)
}

/// The day number (days since 1970-01-01) of a time.
fn day(ms: u64) -> u64 {
    ms / 86_400_000
}

/// A day as `2026-12-03`.
fn date(ms: u64) -> String {
    let (y, m, d) = civil(day(ms));
    format!("{y:04}-{m:02}-{d:02}")
}

/// What the conversation list shows: the time today, else the date.
fn short(ms: u64, now_ms: u64) -> String {
    if day(ms) == day(now_ms) {
        clock(ms)
    } else if day(ms) + 1 == day(now_ms) {
        "yesterday".into()
    } else {
        date(ms)
    }
}

/// A day separator's text.
fn separator(ms: u64, now_ms: u64) -> String {
    if day(ms) == day(now_ms) {
        "Today".into()
    } else if day(ms) + 1 == day(now_ms) {
        "Yesterday".into()
    } else {
        date(ms)
    }
}

/// A timer as people say it: `10 seconds`, `5 minutes`, `1 day`, `2 weeks`.
pub(crate) fn timer(seconds: u32) -> String {
    let (n, unit) = [
        (604_800, "week"),
        (86_400, "day"),
        (3_600, "hour"),
        (60, "minute"),
    ]
    .into_iter()
    .find(|(u, _)| seconds >= *u && seconds.is_multiple_of(*u))
    .map_or((seconds, "second"), |(u, name)| (seconds / u, name));
    let plural = if n == 1 { "" } else { "s" };
    format!("{n} {unit}{plural}")
}

/// Time left, in its two largest units: `9s`, `4m 59s`, `2h 5m`, `3d 4h`.
pub(crate) fn remaining(ms: u64) -> String {
    let s = ms.div_ceil(1000);
    let (d, h, m, s) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// Year, month, day of a day number (Howard Hinnant's `civil_from_days`).
fn civil(days: u64) -> (i64, u32, u32) {
    let z = i64::try_from(days).unwrap_or(i64::MAX / 2) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_clocks() {
        // 2026-12-03 19:05:00 UTC
        let t = 1_796_324_700_000;
        assert_eq!(date(t), "2026-12-03");
        assert_eq!(clock(t), "19:05");
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400_000), "2000-02-29");
        assert_eq!(short(t, t + 60_000), "19:05");
        assert_eq!(short(t, t + 86_400_000), "yesterday");
        assert_eq!(separator(t, t + 3 * 86_400_000), "2026-12-03");
    }

    #[test]
    fn local_times_are_shifted_by_the_offset() {
        // 2026-12-03 23:30 UTC is 00:30 the next day at UTC+1, 18:30 at UTC-5.
        let t = 1_796_340_600_000;
        let plus1 = Zone::from_offset_seconds(3600);
        let minus5 = Zone::from_offset_seconds(-5 * 3600);
        assert_eq!(Zone::utc().clock(t), "23:30");
        assert_eq!(plus1.clock(t), "00:30");
        assert_eq!(minus5.clock(t), "18:30");
        assert_eq!(plus1.day(t), Zone::utc().day(t) + 1);
        assert_eq!(plus1.separator(t, t), "Today");
        assert_eq!(plus1.short(t - 3_600_000, t), "yesterday");
        assert_eq!(Zone::from_offset_seconds(-3600).clock(0), "00:00");
    }

    #[test]
    fn timers_and_time_left() {
        assert_eq!(timer(10), "10 seconds");
        assert_eq!(timer(300), "5 minutes");
        assert_eq!(timer(3600), "1 hour");
        assert_eq!(timer(90), "90 seconds");
        assert_eq!(timer(14 * 86_400), "2 weeks");
        assert_eq!(remaining(9_001), "10s");
        assert_eq!(remaining(299_000), "4m 59s");
        assert_eq!(remaining(2 * 3_600_000 + 300_000), "2h 5m");
        assert_eq!(remaining(3 * 86_400_000 + 4 * 3_600_000), "3d 4h");
        assert_eq!(remaining(0), "0s");
    }
}
