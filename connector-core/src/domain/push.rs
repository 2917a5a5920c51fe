//! Phone push: the iOS app's HealthKit daily summary. Parsing with every
//! bound checked (the offending field named), and the deterministic merge of
//! incremental pushes for one (user, date).
//!
//! Merge rules: for each scalar the value of the newest `generated_at` that
//! carries it wins (equal `generated_at`: the larger value, so the outcome
//! never depends on arrival order); a field a payload leaves out never erases
//! a stored one; workouts dedupe on `type + start_time`, keeping the copy with
//! the earliest `generated_at` (equal: the longer, then the one with more
//! calories, then by type and start time). An identical resubmission
//! changes nothing.

use crate::domain::error::Error;
use crate::domain::health::{MetricType, Sample, PHONE_SOURCE};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The source name pushed data carries in reports and metrics.
pub const SOURCE: &str = PHONE_SOURCE;
/// Most workouts one push may carry.
pub const MAX_WORKOUTS: usize = 200;

/// A daily value the phone pushes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scalar {
    /// Step count.
    Steps,
    /// Resting heart rate, bpm.
    RestingHr,
    /// Sleep, hours.
    SleepHours,
    /// Heart-rate variability, ms.
    Hrv,
}

impl Scalar {
    /// Every scalar, in declaration order.
    pub const ALL: [Scalar; 4] = [
        Scalar::Steps,
        Scalar::RestingHr,
        Scalar::SleepHours,
        Scalar::Hrv,
    ];

    /// The scalar's field name in the push body.
    pub fn field(self) -> &'static str {
        match self {
            Scalar::Steps => "steps",
            Scalar::RestingHr => "resting_hr",
            Scalar::SleepHours => "sleep_hours",
            Scalar::Hrv => "hrv",
        }
    }

    fn bounds(self) -> (f64, f64) {
        match self {
            Scalar::Steps => (0.0, 100_000.0),
            Scalar::RestingHr => (25.0, 220.0),
            Scalar::SleepHours => (0.0, 24.0),
            Scalar::Hrv => (1.0, 300.0),
        }
    }
}

/// One workout from the phone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Workout {
    /// The workout's type, as the phone names it (1 to 64 characters); `type` in JSON.
    #[serde(rename = "type")]
    #[schema(min_length = 1, max_length = 64)]
    pub kind: String,
    /// Minutes.
    #[schema(minimum = 0, maximum = 1440)]
    pub duration: f64,
    /// kcal.
    #[schema(minimum = 0, maximum = 10000)]
    pub calories: f64,
    /// When the workout started: on the pushed date or a day next to it.
    pub start_time: DateTime<Utc>,
}

/// A push as the phone sends it. Unknown fields are ignored; a value
/// left out is not stored.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct PushBody {
    /// The day the push summarizes, at most one day ahead of the server's.
    date: NaiveDate,
    /// When the phone generated the payload; orders pushes in a merge.
    generated_at: DateTime<Utc>,
    /// Step count.
    #[schema(minimum = 0, maximum = 100000, multiple_of = 1)]
    steps: Option<f64>,
    /// Resting heart rate, bpm.
    #[schema(minimum = 25, maximum = 220)]
    resting_hr: Option<f64>,
    /// Sleep, hours.
    #[schema(minimum = 0, maximum = 24)]
    sleep_hours: Option<f64>,
    /// Heart-rate variability, ms.
    #[schema(minimum = 1, maximum = 300)]
    hrv: Option<f64>,
    /// The day's workouts.
    #[schema(max_items = 200)]
    workouts: Option<Vec<Workout>>,
}

/// A validated push.
#[derive(Clone, Debug, PartialEq)]
pub struct Push {
    /// The day the push summarizes.
    pub date: NaiveDate,
    /// When the phone generated the payload; orders pushes in a merge.
    pub generated_at: DateTime<Utc>,
    /// The daily values the push carries.
    pub scalars: BTreeMap<Scalar, f64>,
    /// The workouts the push carries.
    pub workouts: Vec<Workout>,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::InvalidField {
        field: field.into(),
        reason: reason.into(),
    }
}

fn number(
    obj: &Map<String, Value>,
    key: &str,
    field: &str,
    lo: f64,
    hi: f64,
) -> Result<Option<f64>, Error> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let v = n
                .as_f64()
                .filter(|v| v.is_finite())
                .ok_or_else(|| invalid(field, "must be a finite number"))?;
            if v < lo || v > hi {
                return Err(invalid(field, format!("must be between {lo} and {hi}")));
            }
            Ok(Some(v))
        }
        Some(_) => Err(invalid(field, "must be a number")),
    }
}

fn timestamp(obj: &Map<String, Value>, key: &str, field: &str) -> Result<DateTime<Utc>, Error> {
    let s = obj
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(field, "is required (RFC 3339 timestamp)"))?;
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| invalid(field, "must be an RFC 3339 timestamp"))
}

impl Push {
    /// Parses and bounds-checks a push body; `today` is the server's date
    /// (a date more than one day ahead of it is refused).
    pub fn parse(body: &[u8], today: NaiveDate) -> Result<Self, Error> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| Error::BadRequest(format!("body is not valid JSON: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| Error::BadRequest("body must be a JSON object".into()))?;
        let date_str = obj
            .get("date")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("date", "is required (YYYY-MM-DD)"))?;
        let date = NaiveDate::parse_from_str(date_str, "%Y-%m-%d")
            .map_err(|_| invalid("date", "must be a real calendar date YYYY-MM-DD"))?;
        if date > today + chrono::Duration::days(1) {
            return Err(invalid(
                "date",
                "must not be more than one day in the future",
            ));
        }
        let generated_at = timestamp(obj, "generated_at", "generated_at")?;
        let mut scalars = BTreeMap::new();
        for s in Scalar::ALL {
            let (lo, hi) = s.bounds();
            if let Some(v) = number(obj, s.field(), s.field(), lo, hi)? {
                if s == Scalar::Steps && v.fract() != 0.0 {
                    return Err(invalid("steps", "must be a whole number"));
                }
                scalars.insert(s, v);
            }
        }
        let mut workouts = Vec::new();
        match obj.get("workouts") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                if items.len() > MAX_WORKOUTS {
                    return Err(invalid(
                        "workouts",
                        format!("at most {MAX_WORKOUTS} workouts"),
                    ));
                }
                for (i, item) in items.iter().enumerate() {
                    workouts.push(Self::workout(item, i, date)?);
                }
            }
            Some(_) => return Err(invalid("workouts", "must be an array")),
        }
        Ok(Self {
            date,
            generated_at,
            scalars,
            workouts,
        })
    }

    fn workout(item: &Value, i: usize, date: NaiveDate) -> Result<Workout, Error> {
        let f = |k: &str| format!("workouts[{i}].{k}");
        let obj = item
            .as_object()
            .ok_or_else(|| invalid(format!("workouts[{i}]"), "must be an object"))?;
        let kind = obj
            .get("type")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= 64)
            .ok_or_else(|| invalid(f("type"), "is required (1 to 64 characters)"))?
            .to_string();
        let duration = number(obj, "duration", &f("duration"), 0.0, 1440.0)?
            .ok_or_else(|| invalid(f("duration"), "is required"))?;
        let calories = number(obj, "calories", &f("calories"), 0.0, 10_000.0)?
            .ok_or_else(|| invalid(f("calories"), "is required"))?;
        let start_time = timestamp(obj, "start_time", &f("start_time"))?;
        let day = start_time.date_naive();
        if day < date - chrono::Duration::days(1) || day > date + chrono::Duration::days(1) {
            return Err(invalid(
                f("start_time"),
                "must be on the pushed date or the day next to it",
            ));
        }
        Ok(Workout {
            kind,
            duration,
            calories,
            start_time,
        })
    }
}

/// A value with the `generated_at` of the payload it came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    /// The value, in its scalar's unit.
    pub value: f64,
    /// The `generated_at` of the payload it came from.
    pub generated_at: DateTime<Utc>,
}

/// A pushed workout as stored, with the payload time it came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredWorkout {
    /// The workout.
    #[serde(flatten)]
    pub workout: Workout,
    /// The `generated_at` of the payload this copy came from.
    pub generated_at: DateTime<Utc>,
}

/// What is stored for one (user, date).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DayRecord {
    /// The day the record is for.
    pub date: NaiveDate,
    /// Each scalar's winning value.
    pub scalars: BTreeMap<Scalar, Stamped>,
    /// Keyed by `type|start_time`.
    pub workouts: BTreeMap<String, StoredWorkout>,
}

impl DayRecord {
    /// The normalized samples the record stands for.
    pub fn samples(&self) -> Vec<Sample> {
        self.scalars
            .iter()
            .map(|(scalar, stamped)| {
                let (metric, value) = match scalar {
                    Scalar::Steps => (MetricType::Steps, stamped.value),
                    Scalar::RestingHr => (MetricType::RestingHr, stamped.value),
                    Scalar::Hrv => (MetricType::Hrv, stamped.value),
                    Scalar::SleepHours => {
                        (MetricType::SleepDuration, (stamped.value * 60.0).round())
                    }
                };
                Sample::daily(metric, self.date, value, SOURCE)
            })
            .collect()
    }
}

/// What a merge did to the stored day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MergeResult {
    /// Nothing was stored for the day; the push made the record.
    Created,
    /// The push changed the stored record.
    Merged,
    /// The push changed nothing.
    Unchanged,
}

fn workout_key(w: &Workout) -> String {
    format!(
        "{}|{}",
        w.kind.to_lowercase(),
        w.start_time.format("%Y-%m-%dT%H:%M:%SZ")
    )
}

/// True when `a` should be kept over `b` for the same workout: the earlier
/// `generated_at`, then the longer, then the one with more calories. Copies
/// that tie on all three (the type differs only in case, or the start only
/// within its second) are ordered by type and start time, so the copy kept
/// never depends on arrival order.
fn keeps_over(a: &StoredWorkout, b: &StoredWorkout) -> bool {
    let rank = |w: &StoredWorkout| (w.generated_at, -w.workout.duration, -w.workout.calories);
    match rank(a).partial_cmp(&rank(b)) {
        Some(std::cmp::Ordering::Less) => true,
        Some(std::cmp::Ordering::Greater) => false,
        _ => (&a.workout.kind, a.workout.start_time) < (&b.workout.kind, b.workout.start_time),
    }
}

/// Merges a push into what is stored for its day.
pub fn merge(stored: Option<&DayRecord>, push: &Push) -> (DayRecord, MergeResult) {
    let mut record = stored.cloned().unwrap_or_else(|| DayRecord {
        date: push.date,
        scalars: BTreeMap::new(),
        workouts: BTreeMap::new(),
    });
    for (&scalar, &value) in &push.scalars {
        let incoming = Stamped {
            value,
            generated_at: push.generated_at,
        };
        let take = match record.scalars.get(&scalar) {
            None => true,
            Some(old) => (incoming.generated_at, incoming.value) > (old.generated_at, old.value),
        };
        if take {
            record.scalars.insert(scalar, incoming);
        }
    }
    for w in &push.workouts {
        let incoming = StoredWorkout {
            workout: w.clone(),
            generated_at: push.generated_at,
        };
        let key = workout_key(w);
        let take = record
            .workouts
            .get(&key)
            .is_none_or(|old| keeps_over(&incoming, old));
        if take {
            record.workouts.insert(key, incoming);
        }
    }
    let result = match stored {
        None => MergeResult::Created,
        Some(old) if *old == record => MergeResult::Unchanged,
        Some(_) => MergeResult::Merged,
    };
    (record, result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn today() -> NaiveDate {
        "2026-02-17".parse().unwrap()
    }

    const EXAMPLE: &str = r#"{"date":"2026-02-16","steps":9234,"resting_hr":58,"sleep_hours":7.4,"hrv":46.2,"workouts":[{"type":"running","duration":42,"calories":418.5,"start_time":"2026-02-16T06:22:00Z"}],"generated_at":"2026-02-16T23:59:45Z","extra":"ignored"}"#;

    #[test]
    fn parses_the_documented_example() {
        let p = Push::parse(EXAMPLE.as_bytes(), today()).unwrap();
        assert_eq!(p.date.to_string(), "2026-02-16");
        assert_eq!(p.scalars[&Scalar::Steps], 9234.0);
        assert_eq!(p.scalars[&Scalar::Hrv], 46.2);
        assert_eq!(p.workouts.len(), 1);
        assert_eq!(p.workouts[0].kind, "running");
    }

    fn field_of(body: &str) -> String {
        match Push::parse(body.as_bytes(), today()).unwrap_err() {
            Error::InvalidField { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    fn with(key: &str, value: &str) -> String {
        let mut v: Value = serde_json::from_str(EXAMPLE).unwrap();
        v[key] = serde_json::from_str(value).unwrap();
        v.to_string()
    }

    fn schema_of<T: utoipa::PartialSchema>() -> Value {
        serde_json::to_value(T::schema()).unwrap()
    }

    /// Every bound the API description states is the parser's: the limit
    /// itself is accepted, one step past it is refused, for each field.
    #[test]
    fn the_described_bounds_are_the_parsers() {
        let body = schema_of::<PushBody>();
        for scalar in Scalar::ALL {
            let field = scalar.field();
            let described = &body["properties"][field];
            let step = if described["multipleOf"] == 1 {
                1.0
            } else {
                0.5
            };
            let (lo, hi) = (described["minimum"].as_f64(), described["maximum"].as_f64());
            assert_eq!(
                (lo, hi),
                (Some(scalar.bounds().0), Some(scalar.bounds().1)),
                "{field}"
            );
            let (lo, hi) = (lo.unwrap(), hi.unwrap());
            for ok in [lo, hi] {
                let push = Push::parse(with(field, &ok.to_string()).as_bytes(), today());
                assert!(push.is_ok(), "{field} = {ok}");
            }
            for bad in [lo - step, hi + step] {
                assert_eq!(field_of(&with(field, &bad.to_string())), field, "{bad}");
            }
        }
        let workout = |duration: f64, calories: f64| {
            format!(
                r#"{{"type":"run","duration":{duration},"calories":{calories},"start_time":"2026-02-16T06:00:00Z"}}"#
            )
        };
        let max_items = body["properties"]["workouts"]["maxItems"].as_u64().unwrap() as usize;
        assert_eq!(max_items, MAX_WORKOUTS);
        let many = |n: usize| format!("[{}]", vec![workout(1.0, 1.0); n].join(","));
        assert!(Push::parse(with("workouts", &many(max_items)).as_bytes(), today()).is_ok());
        assert_eq!(
            field_of(&with("workouts", &many(max_items + 1))),
            "workouts"
        );

        let described = schema_of::<Workout>();
        let bound = |field: &str, key: &str| described["properties"][field][key].as_f64().unwrap();
        let (d_lo, d_hi) = (bound("duration", "minimum"), bound("duration", "maximum"));
        let (c_lo, c_hi) = (bound("calories", "minimum"), bound("calories", "maximum"));
        for (duration, calories) in [(d_lo, c_lo), (d_hi, c_hi)] {
            let one = format!("[{}]", workout(duration, calories));
            assert!(Push::parse(with("workouts", &one).as_bytes(), today()).is_ok());
        }
        for (duration, calories, field) in [
            (d_lo - 0.5, c_lo, "workouts[0].duration"),
            (d_hi + 0.5, c_lo, "workouts[0].duration"),
            (d_lo, c_lo - 0.5, "workouts[0].calories"),
            (d_lo, c_hi + 0.5, "workouts[0].calories"),
        ] {
            let one = format!("[{}]", workout(duration, calories));
            assert_eq!(field_of(&with("workouts", &one)), field);
        }
        let kind = &described["properties"]["type"];
        let named = |kind: &str| {
            with(
                "workouts",
                &format!(
                    r#"[{{"type":"{kind}","duration":1,"calories":1,"start_time":"2026-02-16T06:00:00Z"}}]"#
                ),
            )
        };
        let longest = "r".repeat(kind["maxLength"].as_u64().unwrap() as usize);
        assert!(Push::parse(named(&longest).as_bytes(), today()).is_ok());
        assert_eq!(field_of(&named(&format!("{longest}r"))), "workouts[0].type");
        assert_eq!(kind["minLength"], 1);
        assert_eq!(field_of(&named("")), "workouts[0].type");
    }

    #[test]
    fn each_bound_names_its_field() {
        for (key, bad) in [
            ("date", r#""2026-02-30""#),
            ("date", r#""2026-02-19""#),
            ("date", "20260216"),
            ("generated_at", r#""yesterday""#),
            ("steps", "100001"),
            ("steps", "-1"),
            ("steps", "12.5"),
            ("steps", r#""9234""#),
            ("resting_hr", "24"),
            ("resting_hr", "221"),
            ("sleep_hours", "24.1"),
            ("sleep_hours", "-0.1"),
            ("hrv", "0.5"),
            ("hrv", "301"),
            ("workouts", "{}"),
        ] {
            assert_eq!(field_of(&with(key, bad)), key, "{key} = {bad}");
        }
        for (value, field) in [
            (
                r#"[{"type":"run","duration":1441,"calories":1,"start_time":"2026-02-16T06:00:00Z"}]"#,
                "workouts[0].duration",
            ),
            (
                r#"[{"type":"run","duration":1,"calories":10001,"start_time":"2026-02-16T06:00:00Z"}]"#,
                "workouts[0].calories",
            ),
            (
                r#"[{"type":"run","duration":1,"calories":1,"start_time":"2026-02-18T06:00:00Z"}]"#,
                "workouts[0].start_time",
            ),
            (
                r#"[{"type":"run","duration":1,"calories":1,"start_time":"2026-02-14T23:00:00Z"}]"#,
                "workouts[0].start_time",
            ),
            (
                r#"[{"type":"","duration":1,"calories":1,"start_time":"2026-02-16T06:00:00Z"}]"#,
                "workouts[0].type",
            ),
            (
                r#"[{"type":"run","calories":1,"start_time":"2026-02-16T06:00:00Z"}]"#,
                "workouts[0].duration",
            ),
            (r#"[1]"#, "workouts[0]"),
        ] {
            assert_eq!(field_of(&with("workouts", value)), field);
        }
        // Next to the date is fine, on either side.
        let ok = with(
            "workouts",
            r#"[{"type":"run","duration":1,"calories":1,"start_time":"2026-02-15T23:30:00Z"}]"#,
        );
        assert!(Push::parse(ok.as_bytes(), today()).is_ok());
        // Tomorrow (clock skew, time zones) is allowed; nulls are missing values.
        let tomorrow: Value =
            serde_json::json!({"date": "2026-02-18", "generated_at": "2026-02-17T12:00:00Z"});
        assert!(Push::parse(tomorrow.to_string().as_bytes(), today()).is_ok());
        assert!(!Push::parse(with("hrv", "null").as_bytes(), today())
            .unwrap()
            .scalars
            .contains_key(&Scalar::Hrv));
        assert!(matches!(
            Push::parse(b"[1]", today()),
            Err(Error::BadRequest(_))
        ));
    }

    fn push(gen: i64, scalars: &[(Scalar, f64)], workouts: &[(&str, i64, f64)]) -> Push {
        let base: DateTime<Utc> = "2026-02-16T00:00:00Z".parse().unwrap();
        Push {
            date: "2026-02-16".parse().unwrap(),
            generated_at: base + chrono::Duration::seconds(gen),
            scalars: scalars.iter().cloned().collect(),
            workouts: workouts
                .iter()
                .map(|(k, start, dur)| Workout {
                    kind: k.to_string(),
                    duration: *dur,
                    calories: 100.0,
                    start_time: base + chrono::Duration::seconds(*start),
                })
                .collect(),
        }
    }

    #[test]
    fn created_merged_unchanged() {
        let a = push(100, &[(Scalar::Steps, 1000.0)], &[("run", 3600, 30.0)]);
        let (r1, res) = merge(None, &a);
        assert_eq!(res, MergeResult::Created);
        let (r2, res) = merge(Some(&r1), &a);
        assert_eq!(res, MergeResult::Unchanged);
        assert_eq!(r1, r2);
        let b = push(
            200,
            &[(Scalar::Steps, 2000.0), (Scalar::Hrv, 40.0)],
            &[("run", 3600, 35.0)],
        );
        let (r3, res) = merge(Some(&r2), &b);
        assert_eq!(res, MergeResult::Merged);
        assert_eq!(r3.scalars[&Scalar::Steps].value, 2000.0);
        assert_eq!(
            r3.workouts.len(),
            1,
            "same type + start_time is one workout"
        );
        assert_eq!(
            r3.workouts.values().next().unwrap().workout.duration,
            30.0,
            "earliest provenance kept"
        );
        // An older payload never overwrites newer scalars but backfills missing ones.
        let old = push(50, &[(Scalar::Steps, 1.0), (Scalar::RestingHr, 55.0)], &[]);
        let (r4, res) = merge(Some(&r3), &old);
        assert_eq!(res, MergeResult::Merged);
        assert_eq!(r4.scalars[&Scalar::Steps].value, 2000.0);
        assert_eq!(r4.scalars[&Scalar::RestingHr].value, 55.0);
    }

    #[test]
    fn tied_copies_of_a_workout_do_not_depend_on_arrival_order() {
        // Found by fuzz/push_merge: two copies with the same key, the same
        // generated_at, duration and calories, whose type differs only in
        // case (or whose start differs within the second), were kept in
        // arrival order.
        let base: DateTime<Utc> = "2026-02-16T06:22:00Z".parse().unwrap();
        let copy = |kind: &str, start_ms: i64| Push {
            date: "2026-02-16".parse().unwrap(),
            generated_at: "2026-02-16T23:59:45Z".parse().unwrap(),
            scalars: BTreeMap::new(),
            workouts: vec![Workout {
                kind: kind.into(),
                duration: 42.0,
                calories: 418.5,
                start_time: base + chrono::Duration::milliseconds(start_ms),
            }],
        };
        for (a, b) in [
            (copy("running", 0), copy("Running", 0)),
            (copy("running", 200), copy("running", 700)),
        ] {
            let ab = merge(Some(&merge(None, &a).0), &b).0;
            let ba = merge(Some(&merge(None, &b).0), &a).0;
            assert_eq!(ab, ba);
            assert_eq!(ab.workouts.len(), 1);
        }
    }

    /// (generated_at offset, scalars, workouts as (kind index, quarter-hour, minutes)).
    type RawPush = (i64, Vec<(Scalar, f64)>, Vec<(u8, i64, f64)>);

    fn arb_push() -> impl Strategy<Value = RawPush> {
        (
            0i64..10_000,
            proptest::collection::vec(
                (prop::sample::select(Scalar::ALL.to_vec()), 1.0f64..24.0),
                0..4,
            ),
            proptest::collection::vec((0u8..3, 0i64..4, 1.0f64..100.0), 0..4),
        )
    }

    fn build(gen: i64, scalars: &[(Scalar, f64)], workouts: &[(u8, i64, f64)]) -> Push {
        let names = ["run", "ride", "swim"];
        let w: Vec<(&str, i64, f64)> = workouts
            .iter()
            .map(|(k, s, d)| (names[*k as usize], s * 900, *d))
            .collect();
        push(gen, scalars, &w)
    }

    proptest! {
        #[test]
        fn merge_is_order_independent_and_loses_nothing(
            raw in proptest::collection::vec(arb_push(), 1..6),
            seed in any::<u64>(),
        ) {
            // Distinct generated_at per payload.
            let mut pushes: Vec<Push> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for (gen, s, w) in &raw {
                if seen.insert(*gen) {
                    pushes.push(build(*gen, s, w));
                }
            }
            let fold = |order: &[Push]| {
                let mut rec: Option<DayRecord> = None;
                for p in order {
                    rec = Some(merge(rec.as_ref(), p).0);
                }
                rec.unwrap()
            };
            let forward = fold(&pushes);
            let mut shuffled = pushes.clone();
            let mut s = seed;
            for i in (1..shuffled.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (s >> 33) as usize % (i + 1));
            }
            prop_assert_eq!(&forward, &fold(&shuffled));
            let mut reversed = pushes.clone();
            reversed.reverse();
            prop_assert_eq!(&forward, &fold(&reversed));
            // Each scalar comes from the newest payload carrying it.
            for sc in Scalar::ALL {
                let newest = pushes
                    .iter()
                    .filter_map(|p| p.scalars.get(&sc).map(|v| (p.generated_at, *v)))
                    .max_by(|a, b| a.partial_cmp(b).unwrap());
                prop_assert_eq!(forward.scalars.get(&sc).map(|s| (s.generated_at, s.value)), newest);
            }
            // Workouts are the deduplicated union.
            let keys: std::collections::BTreeSet<String> =
                pushes.iter().flat_map(|p| p.workouts.iter().map(workout_key)).collect();
            prop_assert_eq!(forward.workouts.keys().cloned().collect::<std::collections::BTreeSet<_>>(), keys);
        }

        #[test]
        fn in_range_payloads_are_accepted(
            steps in 0u32..=100_000,
            hr in 25.0f64..=220.0,
            sleep in 0.0f64..=24.0,
            hrv in 1.0f64..=300.0,
            dur in 0.0f64..=1440.0,
            cal in 0.0f64..=10_000.0,
            minute in 0i64..(3 * 1440),
        ) {
            let start = "2026-02-15T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::minutes(minute);
            let body = serde_json::json!({
                "date": "2026-02-16", "steps": steps, "resting_hr": hr, "sleep_hours": sleep, "hrv": hrv,
                "workouts": [{"type": "run", "duration": dur, "calories": cal, "start_time": start.to_rfc3339()}],
                "generated_at": "2026-02-16T23:59:45Z"
            });
            let p = Push::parse(body.to_string().as_bytes(), today()).unwrap();
            prop_assert_eq!(p.scalars.len(), 4);
        }

        #[test]
        fn out_of_range_values_name_their_field(
            which in 0usize..4,
            above in any::<bool>(),
            delta in 0.001f64..1e6,
        ) {
            let s = Scalar::ALL[which];
            let (lo, hi) = s.bounds();
            let v = if above { hi + delta.max(1.0) } else { lo - delta.max(1.0) };
            let body = with(s.field(), &v.to_string());
            prop_assert_eq!(field_of(&body), s.field());
        }
    }
}
