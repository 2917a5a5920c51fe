//! Property tests over every signature scheme in a vendor's SPEC: a
//! delivery signed with the right secret inside the window is accepted, and
//! a forged (other secret), tampered (one bit of the body), altered
//! signature, or stale (outside the window) one never is — 10,000
//! generated cases per scheme.

use super::*;
use crate::vendors::signature::{Rejection, SignatureScheme, TimestampUnit};
use chrono::{DateTime, Utc};
use http::HeaderMap;
use http::HeaderValue;
use proptest::prelude::*;

const CASES: u32 = 10_000;

/// The signed vendors' schemes, in `Vendor::ALL` order (Mock, WHOOP, Oura,
/// Polar, Terra).
fn signed() -> Vec<(&'static str, SignatureScheme)> {
    Vendor::ALL
        .into_iter()
        .filter_map(|v| spec(v).signature.map(|s| (v.as_str(), s)))
        .collect()
}

fn scheme(which: usize) -> (&'static str, SignatureScheme) {
    signed()[which]
}

#[test]
fn every_signed_vendor_has_its_property_below() {
    let names: Vec<&str> = signed().into_iter().map(|(name, _)| name).collect();
    assert_eq!(names, ["mock", "whoop", "oura", "polar", "terra"]);
}

/// Headers carrying `signature` (and the timestamp, where the scheme has one).
fn headers(scheme: &SignatureScheme, signature: &str, ts: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        scheme.signature_header,
        HeaderValue::from_str(signature).unwrap(),
    );
    if let Some(rule) = &scheme.timestamp {
        h.insert(rule.header, HeaderValue::from_str(ts).unwrap());
    }
    h
}

fn timestamp(scheme: &SignatureScheme, at: DateTime<Utc>) -> String {
    match scheme.timestamp.map(|r| r.unit) {
        Some(TimestampUnit::Millis) => at.timestamp_millis().to_string(),
        _ => at.timestamp().to_string(),
    }
}

/// The signature with one character changed to another of its alphabet.
fn altered(signature: &str, at: usize) -> String {
    let mut chars: Vec<char> = signature.trim_end_matches('=').chars().collect();
    let i = at % chars.len();
    chars[i] = if chars[i] == '0' { '1' } else { '0' };
    let padding = &signature[signature.trim_end_matches('=').len()..];
    chars.into_iter().collect::<String>() + padding
}

/// Every property for one generated delivery under scheme `which`.
fn check(
    which: usize,
    secret: &[u8],
    body: &[u8],
    flip: usize,
    skew: i64,
    late: i64,
) -> Result<(), TestCaseError> {
    let (name, scheme) = scheme(which);
    let now = Utc::now();
    let ts = timestamp(&scheme, now + chrono::Duration::seconds(skew));
    let ts_opt = scheme.timestamp.map(|_| ts.as_str());
    let sig = scheme.sign(secret, ts_opt, body);
    let ok = headers(&scheme, &sig, &ts);
    prop_assert_eq!(scheme.verify(secret, &ok, body, now), Ok(()), "{}", name);

    // Tampered body: one bit flipped.
    let mut tampered = body.to_vec();
    let i = flip % tampered.len();
    tampered[i] ^= 1 << (flip % 8);
    prop_assert!(
        scheme.verify(secret, &ok, &tampered, now).is_err(),
        "{} tampered",
        name
    );

    // Forged: another secret (not just longer: HMAC pads keys with zeros).
    let mut other = secret.to_vec();
    other[flip % secret.len()] ^= 0x40;
    prop_assert!(
        scheme.verify(&other, &ok, body, now).is_err(),
        "{} forged",
        name
    );

    // The signature altered in one character.
    let bad = headers(&scheme, &altered(&sig, flip), &ts);
    prop_assert!(
        scheme.verify(secret, &bad, body, now).is_err(),
        "{} altered",
        name
    );

    // Stale or from the future, though correctly signed: refused.
    if let Some(rule) = scheme.timestamp {
        let off = rule.tolerance_secs + late;
        let when = now + chrono::Duration::seconds(if flip.is_multiple_of(2) { off } else { -off });
        let old = timestamp(&scheme, when);
        let resigned = headers(&scheme, &scheme.sign(secret, Some(&old), body), &old);
        prop_assert_eq!(
            scheme.verify(secret, &resigned, body, now),
            Err(Rejection::Stale(rule.tolerance_secs)),
            "{} stale",
            name
        );
    }
    Ok(())
}

macro_rules! scheme_property {
    ($name:ident, $which:expr) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]
            #[test]
            fn $name(
                secret in proptest::collection::vec(any::<u8>(), 1..48),
                body in proptest::collection::vec(any::<u8>(), 1..256),
                flip in any::<usize>(),
                skew in -250i64..=250,
                late in 1i64..100_000,
            ) {
                check($which, &secret, &body, flip, skew, late)?;
            }
        }
    };
}

scheme_property!(mock_accepts_only_genuine_fresh_deliveries, 0);
scheme_property!(whoop_accepts_only_genuine_fresh_deliveries, 1);
scheme_property!(oura_accepts_only_genuine_fresh_deliveries, 2);
scheme_property!(polar_accepts_only_genuine_fresh_deliveries, 3);
scheme_property!(terra_accepts_only_genuine_fresh_deliveries, 4);
