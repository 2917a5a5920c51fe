//! UTC offsets of the IANA time zones Withings names in its responses
//! (`"timezone": "Europe/Paris"`), without a time-zone database: the
//! workspace has none, and Lambda images need not ship one. Covers the zones
//! of the EU, US/Canada, Australian and New Zealand daylight-saving rules
//! and common fixed-offset zones (current rules only, not history). An
//! unknown name gives None and the caller falls back to UTC.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, Utc, Weekday};

#[derive(Clone, Copy)]
enum Rule {
    Fixed,
    /// Last Sunday of March 01:00 UTC → last Sunday of October 01:00 UTC.
    Eu,
    /// Second Sunday of March 02:00 local → first Sunday of November 02:00 local.
    Us,
    /// First Sunday of October 02:00 standard → first Sunday of April 03:00 daylight.
    Au,
    /// Last Sunday of September 02:00 standard → first Sunday of April 03:00 daylight.
    Nz,
}

/// (standard offset in minutes, rule) of a zone.
fn zone(name: &str) -> Option<(i32, Rule)> {
    use Rule::*;
    let z = match name {
        "UTC" | "Etc/UTC" | "GMT" | "Etc/GMT" | "Africa/Abidjan" | "Atlantic/Reykjavik" => {
            (0, Fixed)
        }
        "Europe/London" | "Europe/Dublin" | "Europe/Lisbon" | "Atlantic/Canary" => (0, Eu),
        "Europe/Paris" | "Europe/Berlin" | "Europe/Madrid" | "Europe/Rome" | "Europe/Amsterdam"
        | "Europe/Brussels" | "Europe/Vienna" | "Europe/Zurich" | "Europe/Stockholm"
        | "Europe/Oslo" | "Europe/Copenhagen" | "Europe/Prague" | "Europe/Warsaw"
        | "Europe/Budapest" | "Europe/Luxembourg" | "Europe/Monaco" | "Europe/Belgrade"
        | "Europe/Zagreb" | "Europe/Ljubljana" | "Europe/Bratislava" | "Europe/Malta" => (60, Eu),
        "Europe/Athens" | "Europe/Helsinki" | "Europe/Kiev" | "Europe/Kyiv"
        | "Europe/Bucharest" | "Europe/Sofia" | "Europe/Riga" | "Europe/Tallinn"
        | "Europe/Vilnius" => (120, Eu),
        "Europe/Istanbul" | "Europe/Moscow" | "Asia/Riyadh" => (180, Fixed),
        "Asia/Dubai" => (240, Fixed),
        "Asia/Karachi" => (300, Fixed),
        "Asia/Kolkata" | "Asia/Calcutta" => (330, Fixed),
        "Asia/Bangkok" | "Asia/Jakarta" | "Asia/Ho_Chi_Minh" => (420, Fixed),
        "Asia/Shanghai" | "Asia/Hong_Kong" | "Asia/Singapore" | "Asia/Taipei" | "Asia/Manila"
        | "Australia/Perth" => (480, Fixed),
        "Asia/Tokyo" | "Asia/Seoul" => (540, Fixed),
        "Australia/Adelaide" => (570, Au),
        "Australia/Darwin" => (570, Fixed),
        "Australia/Brisbane" => (600, Fixed),
        "Australia/Sydney" | "Australia/Melbourne" | "Australia/Canberra" | "Australia/Hobart" => {
            (600, Au)
        }
        "Pacific/Auckland" => (720, Nz),
        "Africa/Lagos" | "Africa/Algiers" => (60, Fixed),
        "Africa/Johannesburg" => (120, Fixed),
        "Africa/Nairobi" => (180, Fixed),
        "America/Sao_Paulo" | "America/Argentina/Buenos_Aires" => (-180, Fixed),
        "America/Halifax" => (-240, Us),
        "America/New_York" | "America/Toronto" | "America/Detroit" | "America/Montreal" => {
            (-300, Us)
        }
        "America/Chicago" | "America/Winnipeg" => (-360, Us),
        "America/Mexico_City" | "America/Regina" => (-360, Fixed),
        "America/Denver" | "America/Edmonton" => (-420, Us),
        "America/Phoenix" => (-420, Fixed),
        "America/Los_Angeles" | "America/Vancouver" => (-480, Us),
        "America/Anchorage" => (-540, Us),
        "Pacific/Honolulu" => (-600, Fixed),
        _ => return None,
    };
    Some(z)
}

fn nth_sunday(year: i32, month: u32, n: u8) -> NaiveDate {
    NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Sun, n).expect("a Sunday")
}

fn last_sunday(year: i32, month: u32) -> NaiveDate {
    NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Sun, 5)
        .unwrap_or_else(|| nth_sunday(year, month, 4))
}

fn utc_at(d: NaiveDate, hour: u32, offset_minutes: i32) -> DateTime<Utc> {
    d.and_hms_opt(hour, 0, 0).expect("hour").and_utc() - Duration::minutes(offset_minutes.into())
}

/// The zone's UTC offset at `at`, or None for an unknown zone name.
pub fn offset_at(name: &str, at: DateTime<Utc>) -> Option<FixedOffset> {
    let (std, rule) = zone(name)?;
    let y = at.year();
    let dst = match rule {
        Rule::Fixed => false,
        Rule::Eu => at >= utc_at(last_sunday(y, 3), 1, 0) && at < utc_at(last_sunday(y, 10), 1, 0),
        Rule::Us => {
            at >= utc_at(nth_sunday(y, 3, 2), 2, std)
                && at < utc_at(nth_sunday(y, 11, 1), 2, std + 60)
        }
        Rule::Au => {
            at < utc_at(nth_sunday(y, 4, 1), 3, std + 60)
                || at >= utc_at(nth_sunday(y, 10, 1), 2, std)
        }
        Rule::Nz => {
            at < utc_at(nth_sunday(y, 4, 1), 3, std + 60) || at >= utc_at(last_sunday(y, 9), 2, std)
        }
    };
    FixedOffset::east_opt((std + if dst { 60 } else { 0 }) * 60)
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
    fn local_dates_cross_midnight_by_the_zone() {
        let at: DateTime<Utc> = "2026-11-21T23:20:00Z".parse().unwrap();
        assert_eq!(local_date("Europe/Paris", at).to_string(), "2026-11-22");
        assert_eq!(local_date("America/Chicago", at).to_string(), "2026-11-21");
        assert_eq!(local_date("Nowhere/Unknown", at).to_string(), "2026-11-21");
    }
}
