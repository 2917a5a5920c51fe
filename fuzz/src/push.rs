//! The phone push: parsing refuses what is out of bounds with a 4xx, and
//! merging is idempotent and independent of arrival order.

use crate::refusal;
use chrono::{Duration, NaiveDate};
use connector_core::domain::push::{merge as merge_into, DayRecord, MergeResult, Push};

fn today() -> NaiveDate {
    crate::now().date_naive()
}

pub fn parse(data: &[u8]) {
    let push = match Push::parse(data, today()) {
        Ok(p) => p,
        Err(e) => return refusal("push", &e, data),
    };
    assert!(
        push.date <= today() + Duration::days(1),
        "a date past tomorrow"
    );
    for w in &push.workouts {
        assert!(
            w.duration.is_finite() && w.duration >= 0.0,
            "duration {}",
            w.duration
        );
        assert!(
            w.calories.is_finite() && w.calories >= 0.0,
            "calories {}",
            w.calories
        );
    }
    let (record, created) = merge_into(None, &push);
    assert_eq!(created, MergeResult::Created);
    assert_eq!(merge_into(Some(&record), &push).1, MergeResult::Unchanged);
}

fn fold<'a>(pushes: impl Iterator<Item = &'a Push>) -> Option<DayRecord> {
    pushes.fold(None, |stored, p| Some(merge_into(stored.as_ref(), p).0))
}

/// Up to four pushes of one day, separated by 0xFF (never in valid JSON):
/// merged in order and in reverse they give the same record, and merging
/// any of them again changes nothing.
pub fn merge(data: &[u8]) {
    let mut pushes: Vec<Push> = data
        .split(|&b| b == 0xFF)
        .take(4)
        .filter_map(|body| Push::parse(body, today()).ok())
        .collect();
    let Some(date) = pushes.first().map(|p| p.date) else {
        return;
    };
    pushes.retain(|p| p.date == date);
    let forward = fold(pushes.iter()).expect("one push at least");
    let backward = fold(pushes.iter().rev()).expect("one push at least");
    assert_eq!(forward, backward, "the stored day depends on arrival order");
    for p in &pushes {
        assert_eq!(merge_into(Some(&forward), p).1, MergeResult::Unchanged);
    }
}
