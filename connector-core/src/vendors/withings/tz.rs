//! Local dates in the IANA time zones Withings names in its responses
//! (`"timezone": "Europe/Paris"`), from the IANA database compiled into the
//! binary (jiff's bundled TZif data): every zone, with its history. An
//! unknown name gives None and the caller falls back to UTC.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

/// The zone's UTC offset at `at`, or None for an unknown zone name.
pub fn offset_at(name: &str, at: DateTime<Utc>) -> Option<FixedOffset> {
    let zone = jiff::tz::TimeZone::get(name).ok()?;
    let instant = jiff::Timestamp::from_second(at.timestamp()).ok()?;
    FixedOffset::east_opt(zone.to_offset(instant).seconds())
}

/// The local date of `at` in the named zone (UTC for an unknown zone).
pub fn local_date(name: &str, at: DateTime<Utc>) -> NaiveDate {
    match offset_at(name, at) {
        Some(o) => at.with_timezone(&o).date_naive(),
        None => at.date_naive(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn off(name: &str, at: &str) -> i32 {
        offset_at(name, at.parse().unwrap())
            .unwrap()
            .local_minus_utc()
            / 60
    }

    #[test]
    fn daylight_saving_switches_at_the_documented_instants() {
        // EU 2026: 29 March 01:00 UTC and 25 October 01:00 UTC.
        assert_eq!(off("Europe/Paris", "2026-03-29T00:59:59Z"), 60);
        assert_eq!(off("Europe/Paris", "2026-03-29T01:00:00Z"), 120);
        assert_eq!(off("Europe/Paris", "2026-10-25T00:59:59Z"), 120);
        assert_eq!(off("Europe/Paris", "2026-10-25T01:00:00Z"), 60);
        assert_eq!(off("Europe/London", "2026-07-01T12:00:00Z"), 60);
        assert_eq!(off("Europe/London", "2026-11-21T12:00:00Z"), 0);
        // US 2026: 8 March 02:00 EST (07:00 UTC), 1 November 02:00 EDT (06:00 UTC).
        assert_eq!(off("America/New_York", "2026-03-08T06:59:59Z"), -300);
        assert_eq!(off("America/New_York", "2026-03-08T07:00:00Z"), -240);
        assert_eq!(off("America/New_York", "2026-11-01T05:59:59Z"), -240);
        assert_eq!(off("America/New_York", "2026-11-01T06:00:00Z"), -300);
        // Southern hemisphere: daylight time over the new year.
        assert_eq!(off("Australia/Sydney", "2026-01-15T00:00:00Z"), 660);
        assert_eq!(off("Australia/Sydney", "2026-07-15T00:00:00Z"), 600);
        assert_eq!(off("Pacific/Auckland", "2026-12-15T00:00:00Z"), 780);
        assert_eq!(off("Asia/Kolkata", "2026-12-15T00:00:00Z"), 330);
        assert!(offset_at("Mars/Olympus_Mons", Utc::now()).is_none());
    }

    #[test]
    fn every_iana_zone_with_its_history() {
        // Quarter- and half-hour zones, and one with its own daylight rule.
        assert_eq!(off("Asia/Kathmandu", "2026-12-15T00:00:00Z"), 345);
        assert_eq!(off("America/St_Johns", "2026-07-01T12:00:00Z"), -150);
        assert_eq!(off("America/St_Johns", "2026-12-01T12:00:00Z"), -210);
        assert_eq!(off("Pacific/Chatham", "2026-12-15T00:00:00Z"), 825);
        // Southern hemisphere, half an hour, daylight over the new year.
        assert_eq!(off("Australia/Adelaide", "2026-01-15T00:00:00Z"), 630);
        assert_eq!(off("Australia/Adelaide", "2026-07-15T00:00:00Z"), 570);
        // History: Brazil kept daylight time until 2019, Moscow was UTC+4 in 2013.
        assert_eq!(off("America/Sao_Paulo", "2018-12-15T12:00:00Z"), -120);
        assert_eq!(off("America/Sao_Paulo", "2026-12-15T12:00:00Z"), -180);
        assert_eq!(off("Europe/Moscow", "2013-06-01T12:00:00Z"), 240);
        assert_eq!(off("Europe/Moscow", "2026-06-01T12:00:00Z"), 180);
        // Chile's southern-hemisphere rule.
        assert_eq!(off("America/Santiago", "2026-01-15T12:00:00Z"), -180);
        assert_eq!(off("America/Santiago", "2026-07-15T12:00:00Z"), -240);
    }

    #[test]
    fn local_dates_cross_midnight_by_the_zone() {
        let at: DateTime<Utc> = "2026-11-21T23:20:00Z".parse().unwrap();
        assert_eq!(local_date("Europe/Paris", at).to_string(), "2026-11-22");
        assert_eq!(local_date("America/Chicago", at).to_string(), "2026-11-21");
        assert_eq!(local_date("Nowhere/Unknown", at).to_string(), "2026-11-21");
    }
}
