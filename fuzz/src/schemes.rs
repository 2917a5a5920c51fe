//! Every signature scheme's verifier on its own: a delivery the harness did
//! not sign is never accepted; one it signed is never refused for its
//! signature; an accepted timestamp is inside the window.

use crate::{now, now_in, set, Delivery};
use connector_core::vendors::signature::{phone_push, Rejection, TimestampUnit};
use connector_core::vendors::{mock::MockVendor, oura, polar, terra, whoop};

const SECRET: &[u8] = b"fake-scheme-secret-for-fuzzing";

/// Bits 3–5 of byte 0 pick the scheme; 5 and above is Terra's split header.
pub fn verify(data: &[u8]) {
    let Some(mut d) = Delivery::decode(data) else {
        return;
    };
    let schemes = [
        MockVendor::scheme(),
        whoop::scheme(),
        oura::scheme(),
        polar::scheme(),
        phone_push(300),
    ];
    let Some(&scheme) = schemes.get(usize::from(d.control >> 3) & 7) else {
        return terra_header(d);
    };
    let given_ts = scheme
        .timestamp
        .is_some_and(|rule| d.headers.contains_key(rule.header));
    if d.authenticate {
        let ts = scheme.timestamp.map(|rule| {
            match d.headers.get(rule.header).and_then(|v| v.to_str().ok()) {
                Some(given) => given.trim().to_string(),
                None => now_in(rule.unit),
            }
        });
        let sig = scheme.sign(SECRET, ts.as_deref(), &d.body);
        set(&mut d.headers, scheme.signature_header, &sig);
        if let (Some(rule), Some(ts), false) = (scheme.timestamp, ts, given_ts) {
            set(&mut d.headers, rule.header, &ts);
        }
    }
    let result = scheme.verify(SECRET, &d.headers, &d.body, now());
    if !d.authenticate {
        assert!(
            result.is_err(),
            "a delivery not signed with the secret was accepted"
        );
    } else {
        assert_ne!(
            result,
            Err(Rejection::BadSignature),
            "a genuine signature was refused"
        );
        assert!(
            given_ts || result.is_ok(),
            "a fresh genuine delivery was refused: {result:?}"
        );
    }
    if let (Ok(()), Some(rule)) = (&result, scheme.timestamp) {
        let raw = d.headers[rule.header].to_str().unwrap().trim();
        if let (TimestampUnit::Seconds, Ok(secs)) = (rule.unit, raw.parse::<i64>()) {
            assert!(
                now().timestamp().abs_diff(secs) <= rule.tolerance_secs.unsigned_abs(),
                "timestamp {secs} accepted outside the window"
            );
        }
    }
}

fn terra_header(mut d: Delivery) {
    if d.authenticate {
        let sig = terra::sign(SECRET, now().timestamp(), &d.body);
        set(&mut d.headers, terra::SIGNATURE_HEADER, &sig);
    }
    let result = terra::verify(SECRET, &d.headers, &d.body, now());
    assert_eq!(
        result.is_ok(),
        d.authenticate,
        "terra-signature: genuine {} but {result:?}",
        d.authenticate
    );
}
