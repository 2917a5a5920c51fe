//! `connector-dev events-tail`: a user's events to the app as they come,
//! read from the change feed (`GET /v1/changes`) of a running stack with a
//! dev JWT, one JSON line each.

use crate::dev_jwt;
use std::time::Duration;

/// How long the tail waits after an empty page.
pub const POLL: Duration = Duration::from_secs(2);

/// One page of `sub`'s feed at `base` after `cursor` (from the oldest kept
/// when None): the events and the cursor to resume from.
pub async fn page(
    http: &reqwest::Client,
    base: &str,
    sub: &str,
    cursor: Option<&str>,
) -> Result<(Vec<serde_json::Value>, String), String> {
    let token = dev_jwt::mint(&dev_jwt::secret_from_env(), sub, 300);
    let mut request = http
        .get(format!("{}/v1/changes", base.trim_end_matches('/')))
        .bearer_auth(token);
    if let Some(cursor) = cursor {
        request = request.query(&[("cursor", cursor)]);
    }
    let answer = request.send().await.map_err(|e| e.to_string())?;
    let status = answer.status();
    let body: serde_json::Value = answer.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("GET /v1/changes answered {status}: {body}"));
    }
    let events = body["events"].as_array().cloned().unwrap_or_default();
    let next = body["cursor"]
        .as_str()
        .ok_or("the feed's answer has no cursor")?
        .to_string();
    Ok((events, next))
}

/// Prints `sub`'s events from now on (with `from_start`, those kept before
/// too) until the process is stopped.
pub async fn tail(base: &str, sub: &str, from_start: bool) -> Result<(), String> {
    let http = reqwest::Client::new();
    let mut cursor: Option<String> = None;
    if !from_start {
        // Skip what is already kept: the tail shows what comes next.
        loop {
            let (events, next) = page(&http, base, sub, cursor.as_deref()).await?;
            cursor = Some(next);
            if events.is_empty() {
                break;
            }
        }
    }
    loop {
        let (events, next) = page(&http, base, sub, cursor.as_deref()).await?;
        cursor = Some(next);
        for event in &events {
            println!("{event}");
        }
        if events.is_empty() {
            tokio::time::sleep(POLL).await;
        }
    }
}
