//! Time helpers the drivers share: where a UTC day starts, the offsets
//! vendors spell, and the user-local day of an instant.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Utc};

/// The zero offset, for records that carry none.
pub fn utc() -> FixedOffset {
    FixedOffset::east_opt(0).expect("zero offset")
}

/// Midnight UTC at the start of `date`.
pub fn day_start(date: NaiveDate) -> DateTime<Utc> {
    date.and_hms_opt(0, 0, 0).expect("midnight").and_utc()
}

/// The UTC instants that cover the user-local dates `from..=to` wherever
/// the user is: local days reach up to 14 h either side of UTC, so a day
/// wider on each side (the caller keeps what falls on the asked days).
pub fn covering(from: NaiveDate, to: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    (
        day_start(from - Duration::days(1)),
        day_start(to + Duration::days(2)),
    )
}

/// An offset as ISO 8601 spells it ("-05:00", "+0530", "Z").
pub fn parse_offset(s: &str) -> Option<FixedOffset> {
    if s == "Z" {
        return Some(utc());
    }
    DateTime::parse_from_rfc3339(&format!("2000-01-01T00:00:00{s}"))
        .ok()
        .map(|d| *d.offset())
}

/// The user-local date of an instant at `offset`.
pub fn local_date(at: DateTime<Utc>, offset: FixedOffset) -> NaiveDate {
    at.with_timezone(&offset).date_naive()
}

/// The user's offset at `t` from the offsets their records revealed (sorted
/// by instant): that of the latest at or before `t`, else the earliest,
/// else UTC.
pub fn offset_at(known: &[(DateTime<Utc>, FixedOffset)], t: DateTime<Utc>) -> FixedOffset {
    known
        .iter()
        .rev()
        .find(|(at, _)| *at <= t)
        .or_else(|| known.first())
        .map_or_else(utc, |(_, o)| *o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn offsets_parse_as_iso_spells_them() {
        assert_eq!(parse_offset("-05:00").unwrap().local_minus_utc(), -5 * 3600);
        assert_eq!(parse_offset("+05:30").unwrap().local_minus_utc(), 19_800);
        assert_eq!(parse_offset("Z").unwrap(), utc());
        assert!(parse_offset("five").is_none());
    }

    #[test]
    fn a_window_covers_every_zone_of_its_local_days() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let (start, end) = covering(d("2026-11-21"), d("2026-11-22"));
        // 00:00 on the 21st at UTC+14 and 23:59 on the 22nd at UTC-12.
        assert!(start <= at("2026-11-20T10:00:00Z"));
        assert!(end >= at("2026-11-23T11:59:00Z"));
        assert_eq!(day_start(d("2026-11-21")), at("2026-11-21T00:00:00Z"));
    }

    #[test]
    fn the_latest_known_offset_applies() {
        let est = parse_offset("-05:00").unwrap();
        let cet = parse_offset("+01:00").unwrap();
        let known = [
            (at("2026-11-20T12:00:00Z"), est),
            (at("2026-11-21T12:00:00Z"), cet),
        ];
        assert_eq!(offset_at(&known, at("2026-11-21T00:00:00Z")), est);
        assert_eq!(offset_at(&known, at("2026-11-22T00:00:00Z")), cet);
        assert_eq!(offset_at(&known, at("2026-11-19T00:00:00Z")), est);
        assert_eq!(offset_at(&[], at("2026-11-19T00:00:00Z")), utc());
        assert_eq!(
            local_date(at("2026-11-21T03:30:00Z"), est).to_string(),
            "2026-11-20"
        );
    }
}
