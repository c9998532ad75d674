//! Times as the app shows them, from unix milliseconds. UTC for now: the workspace has no
//! time-zone support yet, and a wrong local offset would be worse than a labelled UTC time.

/// `HH:MM` of a time.
pub(crate) fn clock(ms: u64) -> String {
    let secs = ms / 1000;
    let day_secs = secs % 86_400;
    format!("{:02}:{:02}", day_secs / 3600, (day_secs % 3600) / 60)
}

/// The day number (days since 1970-01-01) of a time.
pub(crate) fn day(ms: u64) -> u64 {
    ms / 86_400_000
}

/// A day as `2026-12-03`.
pub(crate) fn date(ms: u64) -> String {
    let (y, m, d) = civil(day(ms));
    format!("{y:04}-{m:02}-{d:02}")
}

/// What the conversation list shows: the time today, else the date.
pub(crate) fn short(ms: u64, now_ms: u64) -> String {
    if day(ms) == day(now_ms) {
        clock(ms)
    } else if day(ms) + 1 == day(now_ms) {
        "yesterday".into()
    } else {
        date(ms)
    }
}

/// A day separator's text.
pub(crate) fn separator(ms: u64, now_ms: u64) -> String {
    if day(ms) == day(now_ms) {
        "Today".into()
    } else if day(ms) + 1 == day(now_ms) {
        "Yesterday".into()
    } else {
        date(ms)
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
}
