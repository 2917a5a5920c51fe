//! Calls to vendor APIs: bearer auth, bounded JSON bodies, and the vendor's
//! answer mapped onto what the sync worker does next — refresh on 401, wait
//! as long as the vendor says on 429, retry 5xx and timeouts later. Response
//! bodies never reach an error message (they can echo tokens).

use crate::domain::metric::{count_vendor, Metric};
use crate::domain::vendor::VendorError;
use crate::vendors::budget::CallBudget;
use crate::vendors::credentials::VendorCredentials;
use chrono::{DateTime, Utc};
use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// What a driver needs to call its vendor: the shared HTTP client and the
/// app's registration with the vendor (ids, secrets, URLs).
#[derive(Clone)]
pub struct VendorCtx {
    /// The shared HTTP client.
    pub http: reqwest::Client,
    /// The app's registration with the vendor.
    pub creds: VendorCredentials,
    /// The fleet's quota every API call takes a slot from.
    pub budget: CallBudget,
    /// Bytes of vendor answers read with this context (one sync window's
    /// pull, whose records are held until they are written), at most
    /// `MAX_PULL_BYTES`.
    pub pulled_bytes: Arc<AtomicUsize>,
}

impl VendorCtx {
    /// A context for one pull (or one call) with nothing read yet.
    pub fn new(http: reqwest::Client, creds: VendorCredentials, budget: CallBudget) -> Self {
        Self {
            http,
            creds,
            budget,
            pulled_bytes: Arc::default(),
        }
    }

    /// The vendor's API origin with `path` appended exactly as documented.
    pub fn api_url(&self, path: &str) -> Result<url::Url, VendorError> {
        let base = self
            .creds
            .api_base
            .as_deref()
            .ok_or_else(|| VendorError::Permanent("API base URL is not configured".into()))?;
        url::Url::parse(&format!("{}{path}", base.trim_end_matches('/')))
            .map_err(|_| VendorError::Permanent("API base URL is not a valid URL".into()))
    }
}

/// Larger vendor answers are refused rather than buffered.
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// Most bytes of answers one pull may read: its records are held until they
/// are written, and a function has 256 MB. Past it the pull fails for good
/// (no vendor sends that much for the ≤ 90 days one job asks for).
pub const MAX_PULL_BYTES: usize = 24 * 1024 * 1024;
/// Wait this long on a 429 that says nothing about when to come back.
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 60;

/// A vendor's answer: status, headers and the (bounded) body.
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, at most `MAX_RESPONSE_BYTES`.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body parsed as JSON; a mismatch is a permanent error naming `what`.
    pub fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, VendorError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| VendorError::Permanent(format!("{what}: unexpected response shape ({e})")))
    }
}

/// Sends a request once the fleet's quota for the vendor has a slot, and
/// reads the answer, whatever its status.
pub async fn send(ctx: &VendorCtx, req: reqwest::RequestBuilder) -> Result<Answer, VendorError> {
    match ctx.budget.admit().await {
        Ok(Ok(())) => {}
        Ok(Err(over)) => {
            return Err(VendorError::RateLimited {
                retry_after_secs: over.retry_after.as_secs().max(1),
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, "vendor quota could not be read; the call is retried later");
            return Err(VendorError::Transient("quota store unavailable".into()));
        }
    }
    let vendor = ctx.budget.vendor();
    count_vendor(Metric::VendorCalls, vendor, 1);
    let mut resp = req.send().await.map_err(|e| {
        VendorError::Transient(if e.is_timeout() {
            "vendor API timed out".into()
        } else {
            "vendor API unreachable".into()
        })
    })?;
    let status = resp.status();
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        count_vendor(Metric::VendorThrottled, vendor, 1);
    }
    let headers = resp.headers().clone();
    let body = read_capped(&mut resp, MAX_RESPONSE_BYTES)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => VendorError::Permanent("vendor response too large".into()),
            BodyError::Interrupted => VendorError::Transient("vendor response interrupted".into()),
        })?;
    let pulled = ctx.pulled_bytes.fetch_add(body.len(), Relaxed) + body.len();
    if pulled > MAX_PULL_BYTES {
        return Err(VendorError::Permanent(format!(
            "the vendor's answers to one pull passed {} MiB",
            MAX_PULL_BYTES >> 20
        )));
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// Why a body was not read.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Longer than allowed, by its Content-Length or as it arrived.
    TooLarge,
    /// The connection failed while reading.
    Interrupted,
}

/// Reads `resp`'s body, refusing one longer than `max` bytes before holding
/// more than that.
pub async fn read_capped(resp: &mut reqwest::Response, max: usize) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|_| BodyError::Interrupted)? {
        if body.len() + chunk.len() > max {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Sends a request and accepts only a 2xx answer.
pub async fn send_ok(
    ctx: &VendorCtx,
    req: reqwest::RequestBuilder,
    what: &str,
) -> Result<Answer, VendorError> {
    let answer = send(ctx, req).await?;
    check_status(&answer, what, Utc::now())?;
    Ok(answer)
}

/// GET with the user's bearer token, expecting JSON.
pub async fn get_json<T: DeserializeOwned>(
    ctx: &VendorCtx,
    access_token: &str,
    url: url::Url,
    what: &str,
) -> Result<T, VendorError> {
    send_ok(ctx, ctx.http.get(url).bearer_auth(access_token), what)
        .await?
        .json(what)
}

/// How a vendor pages a collection: the query parameter that asks for the
/// next page, the array of records, and the field naming the next page.
pub struct Paging {
    /// The query parameter that asks for the next page.
    pub request_param: &'static str,
    /// The field holding the page's array of records.
    pub items: &'static str,
    /// The field naming the next page; absent or empty on the last.
    pub next: &'static str,
    /// Most pages read before giving up (a permanent error).
    pub max_pages: usize,
}

/// Every page of a collection at `path` with `params`, each record parsed
/// and kept with its raw JSON.
pub async fn paginate<T: DeserializeOwned>(
    ctx: &VendorCtx,
    access_token: &str,
    path: &str,
    params: &[(&str, String)],
    paging: &Paging,
) -> Result<Vec<(T, String)>, VendorError> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..paging.max_pages {
        let mut url = ctx.api_url(path)?;
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
            if let Some(t) = &next {
                q.append_pair(paging.request_param, t);
            }
        }
        let mut page: serde_json::Value = get_json(ctx, access_token, url, path).await?;
        let items = match page.get_mut(paging.items).map(serde_json::Value::take) {
            Some(serde_json::Value::Array(items)) => items,
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(_) => {
                return Err(VendorError::Permanent(format!(
                    "{path}: {} is not a list",
                    paging.items
                )))
            }
        };
        for raw in items {
            let parsed = serde_json::from_value::<T>(raw.clone()).map_err(|e| {
                VendorError::Permanent(format!("{path}: unexpected record shape ({e})"))
            })?;
            out.push((parsed, raw.to_string()));
        }
        match page
            .get(paging.next)
            .and_then(serde_json::Value::as_str)
            .filter(|t| !t.is_empty())
        {
            Some(t) => next = Some(t.to_string()),
            None => return Ok(out),
        }
    }
    Err(VendorError::Permanent(format!(
        "{path}: more than {} pages",
        paging.max_pages
    )))
}

/// DELETE `path` on the vendor's API with the user's bearer token, expecting 2xx
/// (WHOOP's revoke, Garmin's deregistration).
pub async fn delete_with_token(
    ctx: &VendorCtx,
    access_token: &str,
    path: &str,
    what: &str,
) -> Result<(), VendorError> {
    let url = ctx.api_url(path)?;
    send_ok(ctx, ctx.http.delete(url).bearer_auth(access_token), what).await?;
    Ok(())
}

/// Whether the vendor still honours the user's `access_token`: GET `path`
/// with it; false on 401, else `check` judges the answer.
pub async fn token_still_honoured(
    ctx: &VendorCtx,
    access_token: &str,
    path: &str,
    check: fn(&Answer) -> Result<(), VendorError>,
) -> Result<bool, VendorError> {
    let url = ctx.api_url(path)?;
    let answer = send(ctx, ctx.http.get(url).bearer_auth(access_token)).await?;
    if answer.status.as_u16() == 401 {
        return Ok(false);
    }
    check(&answer)?;
    Ok(true)
}

/// GET `path` on the vendor's API with the user's bearer token, expecting JSON.
pub async fn get_api<T: DeserializeOwned>(
    ctx: &VendorCtx,
    access_token: &str,
    path: &str,
    what: &str,
) -> Result<T, VendorError> {
    get_json(ctx, access_token, ctx.api_url(path)?, what).await
}

/// Maps a non-2xx answer onto the worker's next step.
pub fn check_status(answer: &Answer, what: &str, now: DateTime<Utc>) -> Result<(), VendorError> {
    let status = answer.status;
    if status.is_success() {
        return Ok(());
    }
    Err(match status.as_u16() {
        401 => VendorError::Unauthorized,
        429 => VendorError::RateLimited {
            retry_after_secs: retry_after(&answer.headers, now),
        },
        s if s >= 500 => VendorError::Transient(format!("{what}: vendor answered {s}")),
        s => VendorError::Permanent(format!("{what}: vendor answered {s}")),
    })
}

/// How long a vendor asks us to wait: `Retry-After` (seconds or an HTTP
/// date), else `X-RateLimit-Reset` (seconds to go, or a unix time when it is
/// larger than a day), else a minute. Never less than one second.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> u64 {
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let from_retry_after = value("retry-after").and_then(|v| {
        v.parse::<u64>().ok().or_else(|| {
            DateTime::parse_from_rfc2822(v)
                .ok()
                .map(|t| (t.timestamp() - now.timestamp()).max(0) as u64)
        })
    });
    let from_reset = || {
        value("x-ratelimit-reset")
            .and_then(|v| v.parse::<u64>().ok())
            .map(|n| {
                if n > 86_400 {
                    n.saturating_sub(now.timestamp().max(0) as u64)
                } else {
                    n
                }
            })
    };
    from_retry_after
        .or_else(from_reset)
        .unwrap_or(DEFAULT_RETRY_AFTER_SECS)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn answer(status: u16, headers: &[(&'static str, &str)]) -> Answer {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: h,
            body: br#"{"access_token":"must-not-leak"}"#.to_vec(),
        }
    }

    #[test]
    fn statuses_map_to_next_steps_without_echoing_bodies() {
        let now = Utc::now();
        assert!(check_status(&answer(200, &[]), "x", now).is_ok());
        assert!(matches!(
            check_status(&answer(401, &[]), "x", now),
            Err(VendorError::Unauthorized)
        ));
        assert!(matches!(
            check_status(&answer(503, &[]), "x", now),
            Err(VendorError::Transient(_))
        ));
        let e = check_status(&answer(400, &[]), "sleep", now).unwrap_err();
        assert!(matches!(e, VendorError::Permanent(_)));
        assert!(!e.to_string().contains("must-not-leak"), "{e}");
    }

    #[test]
    fn rate_limit_waits_follow_the_vendor_headers() {
        let now: DateTime<Utc> = "2026-11-23T12:00:00Z".parse().unwrap();
        let wait = |h: &[(&'static str, &str)]| match check_status(&answer(429, h), "x", now) {
            Err(VendorError::RateLimited { retry_after_secs }) => retry_after_secs,
            other => panic!("{:?}", other.err()),
        };
        assert_eq!(wait(&[("retry-after", "17")]), 17);
        assert_eq!(
            wait(&[("retry-after", "Mon, 23 Nov 2026 12:01:30 GMT")]),
            90
        );
        assert_eq!(wait(&[("x-ratelimit-reset", "42")]), 42);
        assert_eq!(
            wait(&[("x-ratelimit-reset", &(now.timestamp() + 300).to_string())]),
            300
        );
        assert_eq!(wait(&[]), DEFAULT_RETRY_AFTER_SECS);
        assert_eq!(wait(&[("retry-after", "0")]), 1);
    }
}
