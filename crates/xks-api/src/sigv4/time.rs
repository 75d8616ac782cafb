//! `x-amz-date` (`YYYYMMDDTHHMMSSZ`) parsing and formatting, without a
//! calendar crate: the proleptic Gregorian conversions below are exact for
//! the years SigV4 can carry.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 for a civil date (Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date for a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // The casts cannot truncate: 1 <= m <= 12 and 1 <= d <= 31.
    (y, m as u32, d as u32)
}

/// Formats a time as `YYYYMMDDTHHMMSSZ`.
pub fn format_amz_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

fn digits(s: &str) -> Option<i64> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// Parses `YYYYMMDDTHHMMSSZ`; `None` if malformed or out of range.
pub fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let y = digits(s.get(0..4)?)?;
    let mo = digits(s.get(4..6)?)?;
    let d = digits(s.get(6..8)?)?;
    let h = digits(s.get(9..11)?)?;
    let mi = digits(s.get(11..13)?)?;
    let se = digits(s.get(13..15)?)?;
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || h > 23
        || mi > 59
        || se > 60
    {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    // Reject dates like Feb 31 that the arithmetic would silently roll over.
    if civil_from_days(days) != (y, mo as u32, d as u32) {
        return None;
    }
    let secs = u64::try_from(days * 86_400 + h * 3600 + mi * 60 + se).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Today's UTC date as `(year, month, day)`.
pub fn today() -> (i64, u32, u32) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    civil_from_days((secs / 86_400) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in ["20150830T123600Z", "20000229T000000Z", "20261124T235959Z"] {
            assert_eq!(format_amz_date(parse_amz_date(s).unwrap()), s);
        }
        assert_eq!(
            parse_amz_date("19700101T000001Z").unwrap(),
            UNIX_EPOCH + Duration::from_secs(1)
        );
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "20150830T123600",
            "2015083OT123600Z",
            "20150231T000000Z",
            "20151330T000000Z",
            "+0150830T123600Z",
        ] {
            assert!(parse_amz_date(s).is_none(), "{s}");
        }
    }
}
