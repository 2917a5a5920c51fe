//! Normalized health data: metric types with their units, samples, and the
//! daily summary served by `GET /v1/reports`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A kind of normalized health metric; each has one fixed unit (see `unit`).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MetricType {
    /// Heart rate, bpm.
    HeartRate,
    /// Resting heart rate, bpm.
    RestingHr,
    /// Heart-rate variability, ms.
    Hrv,
    /// Step count.
    Steps,
    /// Energy burned, kcal.
    Calories,
    /// Total sleep time, min.
    SleepDuration,
    /// Time in one sleep stage, min; the stage's name is the sample's label.
    SleepStage,
    /// Sleep score, 0–100.
    SleepScore,
    /// Stress score, 0–10.
    Stress,
    /// Blood oxygen saturation, percent.
    Spo2,
    /// Respiratory rate, breaths per minute.
    RespiratoryRate,
    /// Skin temperature, °C.
    SkinTemperature,
    /// Body weight, kg.
    BodyWeight,
    /// Body fat, percent.
    BodyFat,
    /// Blood glucose, mg/dL.
    Glucose,
    /// Workout distance, m.
    WorkoutDistance,
    /// Workout pace, s per km.
    WorkoutPace,
    /// Workout power, W.
    WorkoutPower,
    /// Workout duration, min.
    WorkoutDuration,
    /// Energy burned in a workout, kcal.
    WorkoutCalories,
    /// Readiness score, 0–100.
    Readiness,
    /// Strain score, 0–21.
    Strain,
    /// Recovery, percent.
    Recovery,
    /// Systolic blood pressure, mmHg.
    BloodPressureSystolic,
    /// Diastolic blood pressure, mmHg.
    BloodPressureDiastolic,
}

impl MetricType {
    /// Every metric type, in declaration order.
    pub const ALL: [MetricType; 25] = [
        MetricType::HeartRate,
        MetricType::RestingHr,
        MetricType::Hrv,
        MetricType::Steps,
        MetricType::Calories,
        MetricType::SleepDuration,
        MetricType::SleepStage,
        MetricType::SleepScore,
        MetricType::Stress,
        MetricType::Spo2,
        MetricType::RespiratoryRate,
        MetricType::SkinTemperature,
        MetricType::BodyWeight,
        MetricType::BodyFat,
        MetricType::Glucose,
        MetricType::WorkoutDistance,
        MetricType::WorkoutPace,
        MetricType::WorkoutPower,
        MetricType::WorkoutDuration,
        MetricType::WorkoutCalories,
        MetricType::Readiness,
        MetricType::Strain,
        MetricType::Recovery,
        MetricType::BloodPressureSystolic,
        MetricType::BloodPressureDiastolic,
    ];

    /// The metric's snake_case name, as in JSON and storage keys.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::HeartRate => "heart_rate",
            MetricType::RestingHr => "resting_hr",
            MetricType::Hrv => "hrv",
            MetricType::Steps => "steps",
            MetricType::Calories => "calories",
            MetricType::SleepDuration => "sleep_duration",
            MetricType::SleepStage => "sleep_stage",
            MetricType::SleepScore => "sleep_score",
            MetricType::Stress => "stress",
            MetricType::Spo2 => "spo2",
            MetricType::RespiratoryRate => "respiratory_rate",
            MetricType::SkinTemperature => "skin_temperature",
            MetricType::BodyWeight => "body_weight",
            MetricType::BodyFat => "body_fat",
            MetricType::Glucose => "glucose",
            MetricType::WorkoutDistance => "workout_distance",
            MetricType::WorkoutPace => "workout_pace",
            MetricType::WorkoutPower => "workout_power",
            MetricType::WorkoutDuration => "workout_duration",
            MetricType::WorkoutCalories => "workout_calories",
            MetricType::Readiness => "readiness",
            MetricType::Strain => "strain",
            MetricType::Recovery => "recovery",
            MetricType::BloodPressureSystolic => "blood_pressure_systolic",
            MetricType::BloodPressureDiastolic => "blood_pressure_diastolic",
        }
    }

    /// The metric named by its snake_case name, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// The metric's unit, e.g. `bpm`, `ms`, `kcal`.
    pub fn unit(self) -> &'static str {
        match self {
            MetricType::HeartRate | MetricType::RestingHr => "bpm",
            MetricType::Hrv => "ms",
            MetricType::Steps => "count",
            MetricType::Calories | MetricType::WorkoutCalories => "kcal",
            MetricType::SleepDuration | MetricType::SleepStage | MetricType::WorkoutDuration => {
                "min"
            }
            MetricType::SleepScore | MetricType::Readiness => "score_0_100",
            MetricType::Stress => "score_0_10",
            MetricType::Spo2 | MetricType::BodyFat | MetricType::Recovery => "percent",
            MetricType::RespiratoryRate => "breaths_per_min",
            MetricType::SkinTemperature => "celsius",
            MetricType::BodyWeight => "kg",
            MetricType::Glucose => "mg_dl",
            MetricType::WorkoutDistance => "m",
            MetricType::WorkoutPace => "s_per_km",
            MetricType::WorkoutPower => "w",
            MetricType::Strain => "score_0_21",
            MetricType::BloodPressureSystolic | MetricType::BloodPressureDiastolic => "mmhg",
        }
    }
}

/// One normalized value. `date` is the user-local day it belongs to (sleep
/// belongs to the day the user woke up); `time` is set for intraday values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Which metric the value measures.
    pub metric: MetricType,
    /// The user-local day the value belongs to.
    pub date: NaiveDate,
    /// When the value was measured, for intraday values; `None` for daily ones.
    pub time: Option<DateTime<Utc>>,
    /// The value, in the metric's unit.
    pub value: f64,
    /// Where the value came from: a vendor's name, or `apple_health`.
    pub source: String,
    /// What the value is about where the metric alone does not say (a
    /// workout's sport, a sleep stage's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl Sample {
    /// A daily value (no time of day) on the user-local day `date`.
    pub fn daily(metric: MetricType, date: NaiveDate, value: f64, source: &str) -> Self {
        Self {
            metric,
            date,
            time: None,
            value,
            source: source.to_string(),
            label: None,
        }
    }

    /// An intraday value at `time`, on the user-local day `date`.
    pub fn at(
        metric: MetricType,
        date: NaiveDate,
        time: DateTime<Utc>,
        value: f64,
        source: &str,
    ) -> Self {
        Self {
            time: Some(time),
            ..Self::daily(metric, date, value, source)
        }
    }

    /// The sample with `label` set.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The natural key inside one user's partition: metric, time, source.
    /// Writing the same sample twice overwrites, never duplicates.
    pub fn sort_key(&self) -> String {
        let at = match self.time {
            Some(t) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            None => self.date.format("%Y-%m-%d").to_string(),
        };
        format!("sample#{}#{}#{}", self.metric.as_str(), at, self.source)
    }
}

/// The metrics a daily summary carries, in report order.
pub const SUMMARY_METRICS: [MetricType; 6] = [
    MetricType::Hrv,
    MetricType::RestingHr,
    MetricType::SleepScore,
    MetricType::Stress,
    MetricType::Steps,
    MetricType::Calories,
];

/// The source of the phone's pushed data (Apple Health) in reports and metrics.
pub const PHONE_SOURCE: &str = "apple_health";

/// Which source a daily summary shows when several have a value (lower
/// wins): the phone counts steps all day, worn or not, so Apple Health leads
/// for steps; for everything else a wearable vendor's measurement leads and
/// the phone fills in.
pub fn source_rank(metric: MetricType, source: &str) -> u8 {
    let phone = source == PHONE_SOURCE;
    match (metric, phone) {
        (MetricType::Steps, true) => 0,
        (MetricType::Steps, false) => 1,
        (_, false) => 0,
        (_, true) => 1,
    }
}

/// One row of `GET /v1/reports`: a user-local day; `sources` names where
/// each value came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DailySummary {
    /// The user-local day summarized.
    pub date: NaiveDate,
    /// Heart-rate variability, ms.
    pub hrv: Option<f64>,
    /// Resting heart rate, bpm.
    pub resting_hr: Option<f64>,
    /// Sleep score, 0–100.
    pub sleep_score: Option<f64>,
    /// Stress score, 0–10.
    pub stress: Option<f64>,
    /// Step count.
    pub steps: Option<f64>,
    /// Energy burned, kcal.
    pub calories: Option<f64>,
    /// Each set value's source, by metric name.
    pub sources: BTreeMap<String, String>,
}

impl DailySummary {
    /// An empty summary for `date`.
    pub fn new(date: NaiveDate) -> Self {
        Self {
            date,
            ..Default::default()
        }
    }

    /// The summary's value for `metric`; `None` if unset or not a summary metric.
    pub fn get(&self, metric: MetricType) -> Option<f64> {
        match metric {
            MetricType::Hrv => self.hrv,
            MetricType::RestingHr => self.resting_hr,
            MetricType::SleepScore => self.sleep_score,
            MetricType::Stress => self.stress,
            MetricType::Steps => self.steps,
            MetricType::Calories => self.calories,
            _ => None,
        }
    }

    /// Sets a summary value with its provenance; other metrics are ignored.
    pub fn set(&mut self, metric: MetricType, value: f64, source: &str) {
        let slot = match metric {
            MetricType::Hrv => &mut self.hrv,
            MetricType::RestingHr => &mut self.resting_hr,
            MetricType::SleepScore => &mut self.sleep_score,
            MetricType::Stress => &mut self.stress,
            MetricType::Steps => &mut self.steps,
            MetricType::Calories => &mut self.calories,
            _ => return,
        };
        *slot = Some(value);
        self.sources
            .insert(metric.as_str().to_string(), source.to_string());
    }

    /// Daily summaries of the given samples, one per date, in date order.
    pub fn from_samples(samples: &[Sample]) -> Vec<DailySummary> {
        let mut by_date: BTreeMap<NaiveDate, DailySummary> = BTreeMap::new();
        for s in samples.iter().filter(|s| s.time.is_none()) {
            by_date
                .entry(s.date)
                .or_insert_with(|| DailySummary::new(s.date))
                .set(s.metric, s.value, &s.source);
        }
        by_date.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_has_a_unit_and_parses_back() {
        for m in MetricType::ALL {
            assert!(!m.unit().is_empty());
            assert_eq!(MetricType::parse(m.as_str()), Some(m));
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
        }
        assert_eq!(MetricType::parse("nope"), None);
    }

    #[test]
    fn sample_key_is_natural_key() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let a = Sample::daily(MetricType::Hrv, d, 40.0, "mock");
        let b = Sample::daily(MetricType::Hrv, d, 55.0, "mock");
        assert_eq!(a.sort_key(), b.sort_key());
        assert_eq!(a.sort_key(), "sample#hrv#2026-11-23#mock");
        let c = Sample::daily(MetricType::Hrv, d, 55.0, "oura");
        assert_ne!(a.sort_key(), c.sort_key());
    }

    #[test]
    fn summaries_group_by_date_with_provenance() {
        let d1 = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let d2 = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let rows = DailySummary::from_samples(&[
            Sample::daily(MetricType::Steps, d2, 1000.0, "mock"),
            Sample::daily(MetricType::Hrv, d1, 50.0, "mock"),
            Sample::daily(MetricType::Glucose, d1, 99.0, "mock"),
        ]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].date, d1);
        assert_eq!(rows[0].hrv, Some(50.0));
        assert_eq!(rows[0].sources.get("hrv").map(String::as_str), Some("mock"));
        assert!(!rows[0].sources.contains_key("glucose"));
        assert_eq!(rows[1].steps, Some(1000.0));
    }
}
