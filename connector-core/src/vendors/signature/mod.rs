//! Webhook signature schemes and the freshness window. One
//! scheme type covers every vendor's rule: the HMAC, the encoding of the
//! signature, what bytes are signed, and an optional timestamp header.

use crate::domain::connection::Secret;
use crate::domain::error::{Error, Result};
use crate::domain::metric::{count, Metric};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use http::HeaderMap;

/// The HMAC a signature is made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA256.
    HmacSha256,
    /// HMAC-SHA1.
    HmacSha1,
}

/// How the signature header encodes the MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Hex, either case (Oura sends upper case).
    Hex,
    /// Standard base64, padded.
    Base64,
}

/// The bytes that are signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignedMessage {
    /// The raw request body alone.
    Body,
    /// timestamp followed directly by the body (WHOOP, Oura).
    TimestampBody,
    /// timestamp "." body (Mock, Terra, phone push).
    TimestampDotBody,
}

/// What the timestamp header holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampUnit {
    /// Unix seconds.
    Seconds,
    /// Unix milliseconds.
    Millis,
    /// Unix seconds or an ISO-8601 / RFC 3339 timestamp (the phone push).
    SecondsOrRfc3339,
}

/// A scheme's signed timestamp header and its freshness window.
#[derive(Clone, Copy, Debug)]
pub struct TimestampRule {
    /// The header that carries the timestamp.
    pub header: &'static str,
    /// How the timestamp is written.
    pub unit: TimestampUnit,
    /// How far the timestamp may be from now, either way.
    pub tolerance_secs: i64,
}

/// A webhook signature rule: a vendor's, or the phone push's.
#[derive(Clone, Copy, Debug)]
pub struct SignatureScheme {
    /// The HMAC used.
    pub algorithm: Algorithm,
    /// How the signature header encodes it.
    pub encoding: Encoding,
    /// Which bytes are signed.
    pub message: SignedMessage,
    /// The header that carries the signature.
    pub signature_header: &'static str,
    /// The timestamp rule, for schemes that sign a timestamp.
    pub timestamp: Option<TimestampRule>,
}

/// Why a webhook was refused. Never carries the signature or secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Rejection {
    /// The named header is absent.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// The named header is not text, or its value does not decode or parse.
    #[error("{0} header is malformed")]
    Malformed(&'static str),
    /// The timestamp is outside the freshness window of this many seconds.
    #[error("timestamp outside the {0} s freshness window")]
    Stale(i64),
    /// The signature does not match the message.
    #[error("signature does not match")]
    BadSignature,
}

impl From<Rejection> for Error {
    fn from(r: Rejection) -> Self {
        Error::Unauthorized(format!("webhook rejected: {r}"))
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, Rejection> {
    headers
        .get(name)
        .ok_or(Rejection::MissingHeader(name))?
        .to_str()
        .map(str::trim)
        .map_err(|_| Rejection::Malformed(name))
}

impl SignatureScheme {
    /// Checks the signature (constant time) and, where the scheme has a
    /// timestamp, that it is within the window around `now`.
    pub fn verify(
        &self,
        secret: &[u8],
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), Rejection> {
        let given = header(headers, self.signature_header)?;
        let given = match self.encoding {
            Encoding::Hex => hex::decode(given),
            Encoding::Base64 => B64.decode(given).map_err(|_| hex::FromHexError::OddLength),
        }
        .map_err(|_| Rejection::Malformed(self.signature_header))?;

        let timestamp = match &self.timestamp {
            None => None,
            Some(rule) => {
                let raw = header(headers, rule.header)?;
                let malformed = || Rejection::Malformed(rule.header);
                let secs = match rule.unit {
                    TimestampUnit::Seconds => raw.parse::<i64>().map_err(|_| malformed())?,
                    TimestampUnit::Millis => raw
                        .parse::<i64>()
                        .map_err(|_| malformed())?
                        .div_euclid(1000),
                    TimestampUnit::SecondsOrRfc3339 => match raw.parse::<i64>() {
                        Ok(s) => s,
                        Err(_) => DateTime::parse_from_rfc3339(raw)
                            .map_err(|_| malformed())?
                            .timestamp(),
                    },
                };
                if now.timestamp().abs_diff(secs) > rule.tolerance_secs.unsigned_abs() {
                    return Err(Rejection::Stale(rule.tolerance_secs));
                }
                Some(raw)
            }
        };
        let ts = timestamp.unwrap_or_default().as_bytes();
        let parts: &[&[u8]] = match self.message {
            SignedMessage::Body => &[body],
            SignedMessage::TimestampBody => &[ts, body],
            SignedMessage::TimestampDotBody => &[ts, b".", body],
        };
        let ok = match self.algorithm {
            Algorithm::HmacSha256 => verify_mac::<Hmac<sha2::Sha256>>(secret, parts, &given),
            Algorithm::HmacSha1 => verify_mac::<Hmac<sha1::Sha1>>(secret, parts, &given),
        };
        if ok {
            Ok(())
        } else {
            Err(Rejection::BadSignature)
        }
    }
}

impl SignatureScheme {
    /// The signature header value a sender computes for `body` (and the
    /// timestamp header value, where the scheme has one) — what a vendor
    /// does; used by the vendor simulator and tests.
    pub fn sign(&self, secret: &[u8], timestamp: Option<&str>, body: &[u8]) -> String {
        let ts = timestamp.unwrap_or_default().as_bytes();
        let parts: &[&[u8]] = match self.message {
            SignedMessage::Body => &[body],
            SignedMessage::TimestampBody => &[ts, body],
            SignedMessage::TimestampDotBody => &[ts, b".", body],
        };
        let mac = match self.algorithm {
            Algorithm::HmacSha256 => mac_bytes::<Hmac<sha2::Sha256>>(secret, parts),
            Algorithm::HmacSha1 => mac_bytes::<Hmac<sha1::Sha1>>(secret, parts),
        };
        match self.encoding {
            Encoding::Hex => hex::encode(mac),
            Encoding::Base64 => B64.encode(mac),
        }
    }
}

fn mac_bytes<M: Mac + hmac::digest::KeyInit>(secret: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac =
        <M as hmac::digest::KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

fn verify_mac<M: Mac + hmac::digest::KeyInit>(
    secret: &[u8],
    parts: &[&[u8]],
    given: &[u8],
) -> bool {
    let mut mac =
        <M as hmac::digest::KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    // verify_slice compares in constant time.
    mac.verify_slice(given).is_ok()
}

/// Lowercase hex HMAC-SHA256 of `parts` — what a sender computes.
pub fn sign_hex_sha256(secret: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new_from_slice(secret)
        .expect("any key length");
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// The phone's signed push envelope (`X-Sync-Timestamp`, unix seconds or
/// ISO 8601, and `X-Sync-Signature` = lowercase hex HMAC-SHA256(secret,
/// timestamp + "." + body)), fresh within `window_secs` either way. The
/// health-push function verifies with it and the dev signer signs with it.
pub const fn phone_push(window_secs: i64) -> SignatureScheme {
    SignatureScheme {
        algorithm: Algorithm::HmacSha256,
        encoding: Encoding::Hex,
        message: SignedMessage::TimestampDotBody,
        signature_header: "x-sync-signature",
        timestamp: Some(TimestampRule {
            header: "x-sync-timestamp",
            unit: TimestampUnit::SecondsOrRfc3339,
            tolerance_secs: window_secs,
        }),
    }
}

/// The values a secret that authenticates deliveries accepts: its current
/// one and, while it is rotated, the one it replaces
/// (`<NAME>_PREVIOUS`). The previous value counts only beside a current one.
#[derive(Clone, Copy, Debug, Default)]
pub struct Accepted<'a> {
    /// The value senders should use.
    pub current: Option<&'a Secret>,
    /// The value being rotated out, accepted until it is removed.
    pub previous: Option<&'a Secret>,
}

impl<'a> Accepted<'a> {
    /// The current value alone.
    pub fn only(current: Option<&'a Secret>) -> Self {
        Self {
            current,
            previous: None,
        }
    }

    /// Runs `check` with the current value, then with the previous one
    /// when only the signature failed; the current value's rejection when
    /// neither passes. `source` (a vendor, or `push`) names the sender in
    /// [`Metric::PreviousSecretAccepted`].
    pub fn verify(
        &self,
        source: &str,
        check: impl Fn(&[u8]) -> Result<(), Rejection>,
    ) -> Result<(), Rejection> {
        let Some(current) = self.current else {
            return Err(Rejection::BadSignature);
        };
        match check(current.expose().as_bytes()) {
            Err(Rejection::BadSignature) => match self.previous {
                Some(previous) if check(previous.expose().as_bytes()).is_ok() => {
                    previous_used(source);
                    Ok(())
                }
                _ => Err(Rejection::BadSignature),
            },
            other => other,
        }
    }

    /// Whether a presented shared value (a bearer secret, a verify token)
    /// is one of the accepted ones, compared in constant time.
    pub fn matches(&self, source: &str, given: Option<&str>) -> bool {
        if secret_matches(given, self.current) {
            return true;
        }
        let by_previous = self.current.is_some() && secret_matches(given, self.previous);
        if by_previous {
            previous_used(source);
        }
        by_previous
    }
}

fn previous_used(source: &str) {
    count(Metric::PreviousSecretAccepted, &[source], 1);
    tracing::info!(
        source,
        "delivery authenticated with the previous value of a rotated secret"
    );
}

/// Constant-time equality of a presented shared secret (a bearer secret, a
/// verify token) with the configured one; a missing one never matches.
pub fn secret_matches(given: Option<&str>, configured: Option<&Secret>) -> bool {
    use subtle::ConstantTimeEq;
    match (given, configured) {
        (Some(g), Some(c)) => bool::from(g.as_bytes().ct_eq(c.expose().as_bytes())),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// A scheme of the Mock vendor's shape: hex HMAC-SHA256 of timestamp "." body.
    fn test_scheme() -> SignatureScheme {
        SignatureScheme {
            algorithm: Algorithm::HmacSha256,
            encoding: Encoding::Hex,
            message: SignedMessage::TimestampDotBody,
            signature_header: "x-test-signature",
            timestamp: Some(TimestampRule {
                header: "x-test-timestamp",
                unit: TimestampUnit::Seconds,
                tolerance_secs: 300,
            }),
        }
    }

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn rfc4231_vectors() {
        assert_eq!(
            sign_hex_sha256(&[0x0b; 20], &[b"Hi There"]),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            sign_hex_sha256(b"Jefe", &[b"what do ya ", b"want for nothing?"]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn standard_webhooks_vector_in_base64_scheme() {
        // Standard Webhooks v1 test vector: base64 HMAC-SHA256 over
        // "id.timestamp.body" with the base64-decoded whsec_ secret.
        let secret = B64.decode("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let scheme = SignatureScheme {
            algorithm: Algorithm::HmacSha256,
            encoding: Encoding::Base64,
            message: SignedMessage::Body,
            signature_header: "webhook-signature",
            timestamp: None,
        };
        let body = b"msg_27UH4WbU6Z5A5EzD8u03UvzRbpk.1649367553.{\"email\":\"test@example.com\",\"username\":\"test_user\"}";
        let h = headers(&[(
            "webhook-signature",
            "tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=".into(),
        )]);
        assert_eq!(scheme.verify(&secret, &h, body, Utc::now()), Ok(()));
        let h = headers(&[(
            "webhook-signature",
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".into(),
        )]);
        assert_eq!(
            scheme.verify(&secret, &h, body, Utc::now()),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn a_timestamped_hex_scheme_accepts_signed_and_rejects_the_rest() {
        let scheme = test_scheme();
        let secret = b"fake-test-webhook-secret";
        let now = Utc::now();
        let ts = now.timestamp().to_string();
        let body = br#"{"event_id":"e1"}"#;
        let sig = sign_hex_sha256(secret, &[ts.as_bytes(), b".", body]);
        let ok = headers(&[
            ("x-test-timestamp", ts.clone()),
            ("x-test-signature", sig.clone()),
        ]);
        assert_eq!(scheme.verify(secret, &ok, body, now), Ok(()));
        // Upper-case hex is the same signature.
        let upper = headers(&[
            ("x-test-timestamp", ts.clone()),
            ("x-test-signature", sig.to_uppercase()),
        ]);
        assert_eq!(scheme.verify(secret, &upper, body, now), Ok(()));
        // Tampered body, wrong secret, missing headers, stale timestamp.
        assert_eq!(
            scheme.verify(secret, &ok, br#"{"event_id":"e2"}"#, now),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            scheme.verify(b"other", &ok, body, now),
            Err(Rejection::BadSignature)
        );
        let unsigned = headers(&[("x-test-timestamp", ts.clone())]);
        assert_eq!(
            scheme.verify(secret, &unsigned, body, now),
            Err(Rejection::MissingHeader("x-test-signature"))
        );
        let no_ts = headers(&[("x-test-signature", sig.clone())]);
        assert_eq!(
            scheme.verify(secret, &no_ts, body, now),
            Err(Rejection::MissingHeader("x-test-timestamp"))
        );
        let later = now + chrono::Duration::seconds(301);
        assert_eq!(
            scheme.verify(secret, &ok, body, later),
            Err(Rejection::Stale(300))
        );
        let garbage = headers(&[("x-test-timestamp", ts), ("x-test-signature", "zz".into())]);
        assert_eq!(
            scheme.verify(secret, &garbage, body, now),
            Err(Rejection::Malformed("x-test-signature"))
        );
    }

    #[test]
    fn timestamp_is_part_of_the_signed_message() {
        let scheme = test_scheme();
        let secret = b"k";
        let now = Utc::now();
        let ts = now.timestamp();
        let body = b"{}";
        let sig = sign_hex_sha256(secret, &[ts.to_string().as_bytes(), b".", body]);
        let moved = headers(&[
            ("x-test-timestamp", (ts + 1).to_string()),
            ("x-test-signature", sig),
        ]);
        assert_eq!(
            scheme.verify(secret, &moved, body, now),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn timestamps_at_the_ends_of_i64_are_stale_not_a_panic() {
        let scheme = test_scheme();
        let now = Utc::now();
        for ts in [i64::MIN, i64::MIN + 1, i64::MAX, -now.timestamp() - 1] {
            let ts = ts.to_string();
            let sig = sign_hex_sha256(b"k", &[ts.as_bytes(), b".", b"{}"]);
            let h = headers(&[("x-test-timestamp", ts.clone()), ("x-test-signature", sig)]);
            assert!(
                matches!(
                    scheme.verify(b"k", &h, b"{}", now),
                    Err(Rejection::Stale(_))
                ),
                "{ts}"
            );
        }
    }

    #[test]
    fn push_timestamps_may_be_iso_8601() {
        let scheme = phone_push(300);
        let now: DateTime<Utc> = "2026-02-16T23:59:50Z".parse().unwrap();
        for ts in [
            "2026-02-16T23:59:45Z",
            "2026-02-17T00:59:45+01:00",
            "1771286385",
        ] {
            let sig = sign_hex_sha256(b"k", &[ts.as_bytes(), b".", b"{}"]);
            let h = headers(&[
                ("x-sync-timestamp", ts.to_string()),
                ("x-sync-signature", sig),
            ]);
            assert_eq!(scheme.verify(b"k", &h, b"{}", now), Ok(()), "{ts}");
        }
        let sig = sign_hex_sha256(b"k", &[b"2026-02-16T23:00:00Z.{}"]);
        let h = headers(&[
            ("x-sync-timestamp", "2026-02-16T23:00:00Z".to_string()),
            ("x-sync-signature", sig),
        ]);
        assert_eq!(
            scheme.verify(b"k", &h, b"{}", now),
            Err(Rejection::Stale(300))
        );
    }

    #[test]
    fn millisecond_timestamps_and_sha1() {
        let scheme = SignatureScheme {
            algorithm: Algorithm::HmacSha1,
            encoding: Encoding::Base64,
            message: SignedMessage::TimestampBody,
            signature_header: "x-sig",
            timestamp: Some(TimestampRule {
                header: "x-ts",
                unit: TimestampUnit::Millis,
                tolerance_secs: 60,
            }),
        };
        let now = Utc::now();
        let ts = now.timestamp_millis().to_string();
        let mut mac = <Hmac<sha1::Sha1> as hmac::digest::KeyInit>::new_from_slice(b"s").unwrap();
        mac.update(ts.as_bytes());
        mac.update(b"body");
        let sig = B64.encode(mac.finalize().into_bytes());
        let h = headers(&[("x-ts", ts), ("x-sig", sig)]);
        assert_eq!(scheme.verify(b"s", &h, b"body", now), Ok(()));
        assert_eq!(
            scheme.verify(b"s", &h, b"body", now + chrono::Duration::seconds(120)),
            Err(Rejection::Stale(60))
        );
    }

    proptest::proptest! {
        #[test]
        fn only_the_exact_signed_delivery_is_accepted(
            secret in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..64),
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            flip in proptest::prelude::any::<usize>(),
            skew in -300i64..=300,
        ) {
            let scheme = test_scheme();
            let now = Utc::now();
            let ts = (now.timestamp() + skew).to_string();
            let sig = sign_hex_sha256(&secret, &[ts.as_bytes(), b".", &body]);
            let ok = headers(&[("x-test-timestamp", ts.clone()), ("x-test-signature", sig.clone())]);
            proptest::prop_assert_eq!(scheme.verify(&secret, &ok, &body, now), Ok(()));
            // Any one bit of the body flipped.
            if !body.is_empty() {
                let mut tampered = body.clone();
                let i = flip % tampered.len();
                tampered[i] ^= 1 << (flip % 8);
                proptest::prop_assert_eq!(scheme.verify(&secret, &ok, &tampered, now), Err(Rejection::BadSignature));
            }
            // Any one hex digit of the signature changed.
            let mut forged: Vec<u8> = sig.into_bytes();
            let i = flip % forged.len();
            forged[i] = if forged[i] == b'0' { b'1' } else { b'0' };
            let forged = headers(&[("x-test-timestamp", ts), ("x-test-signature", String::from_utf8(forged).unwrap())]);
            proptest::prop_assert_eq!(scheme.verify(&secret, &forged, &body, now), Err(Rejection::BadSignature));
            // Another secret (appending zero bytes would not do: HMAC pads keys with zeros).
            let mut other = secret.clone();
            other[flip % secret.len()] ^= 0x80;
            proptest::prop_assert_eq!(scheme.verify(&other, &ok, &body, now), Err(Rejection::BadSignature));
        }
    }
}
