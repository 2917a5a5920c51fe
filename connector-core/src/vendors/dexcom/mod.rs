//! Dexcom API v3 (continuous glucose). Facts and sources: docs/vendors/dexcom.md.
//!
//! - OAuth: `/v2/oauth2/login` with scope `offline_access`, body
//!   credentials; access 2 h; every token response's refresh token is
//!   stored (treated as rotating and single-use). PKCE is not documented;
//!   the challenge our flow sends is ignored by Dexcom.
//! - User id: there is no profile call; every v3 response carries `userId`
//!   (stable per Dexcom account and per client app): `identify` reads it
//!   from `GET /v3/users/self/dataRange`.
//! - **No webhooks**: the connector polls (`quiet_limit`), and every pull
//!   first asks `dataRange` where glucose data exists, then reads
//!   `GET /v3/users/self/egvs?startDate&endDate` (zone-less UTC
//!   `YYYY-MM-DDThh:mm:ss`, at most 30 days a request) over the overlap.
//! - Values: `value` in mg/dL (mmol/L is converted, ×18.0182; a reading of
//!   `unit` `unknown` is skipped), at
//!   `systemTime` (UTC), on the user-local date of `displayTime`.
//! - Disconnect: Dexcom has no revoke endpoint (the user revokes in
//!   Dexcom's account settings); the connector deletes its tokens and says so.

use super::client::{get_api, get_json};
use crate::domain::connection::TokenSet;
use crate::domain::error::{Error, Result};
use crate::domain::health::{MetricType, Sample};
use crate::domain::vendor::{RawRecord, Vendor, VendorError};
use crate::vendors::client::VendorCtx;
use crate::vendors::driver::{FetchRequest, Fetched, VendorDriver, WebhookReply, WebhookRequest};
use crate::vendors::quota::QuotaWindow;
use crate::vendors::spec::{ClientAuth, OAuthSpec, TokenResponseShape, VendorSpec};
use crate::vendors::time;
use crate::vendors::token::Grant;
use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use serde::Deserialize;

/// Dexcom: what the connector knows of the vendor.
pub const SPEC: VendorSpec = VendorSpec {
    vendor: Vendor::Dexcom,
    display_name: "Dexcom",
    oauth: Some(OAuthSpec {
        auth_url: "https://api.dexcom.com/v2/oauth2/login",
        token_url: "https://api.dexcom.com/v2/oauth2/token",
        api_base: "https://api.dexcom.com",
        scopes: &["offline_access"],
        client_auth: ClientAuth::Body,
        extra_auth_params: &[],
        extra_token_params: &[],
        token_response: TokenResponseShape::Standard,
        pkce: true,
    }),
    quota: &[QuotaWindow::app(60_000, 3_600)],
    signature: None,
};

/// The Dexcom driver.
pub struct Dexcom;

const SOURCE: &str = "dexcom";
/// The longest egvs window Dexcom serves in one request.
const MAX_WINDOW_DAYS: i64 = 30;
/// Readings reach Dexcom's API about an hour late; polling more often gains nothing.
pub(crate) const POLL_MINUTES: i64 = 60;
const MG_DL_PER_MMOL_L: f64 = 18.0182;

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Egv {
    pub record_id: String,
    pub system_time: String,
    pub display_time: String,
    #[serde(default)]
    pub value: Option<f64>,
    #[serde(default)]
    pub unit: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Egvs {
    /// Only the golden tests read it (the fixture's owner).
    #[allow(dead_code)]
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub records: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DataRange {
    user_id: String,
    #[serde(default)]
    egvs: Option<Range>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Range {
    start: Moment,
    end: Moment,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Moment {
    system_time: String,
}

/// A Dexcom time: RFC 3339, or zone-less (then UTC, as `systemTime` is).
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(|t| t.and_utc())
        })
}

/// The user-local date of a `displayTime` (its own date part, offset or not).
fn display_date(s: &str) -> Option<NaiveDate> {
    s.get(..10)?.parse().ok()
}

/// Normalizes glucose readings; records without a value (sensor warm-up,
/// errors) are skipped, and so are those whose `unit` is `unknown` (or
/// missing): a value in an unknown unit is not a glucose level.
fn normalize(egvs: &[Egv]) -> Vec<Sample> {
    let unknown = egvs
        .iter()
        .filter(|e| e.value.is_some() && !matches!(e.unit.as_deref(), Some("mg/dL" | "mmol/L")))
        .count();
    if unknown > 0 {
        tracing::warn!(
            vendor = "dexcom",
            readings = unknown,
            "glucose readings of unknown unit skipped"
        );
    }
    egvs.iter()
        .filter_map(|e| {
            let value = e.value?;
            let mg_dl = match e.unit.as_deref() {
                Some("mmol/L") => (value * MG_DL_PER_MMOL_L * 10.0).round() / 10.0,
                Some("mg/dL") => value,
                _ => return None,
            };
            Some(Sample::at(
                MetricType::Glucose,
                display_date(&e.display_time)?,
                parse_time(&e.system_time)?,
                mg_dl,
                SOURCE,
            ))
        })
        .collect()
}

fn dexcom_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

async fn data_range(ctx: &VendorCtx, token: &str) -> Result<DataRange, VendorError> {
    get_api(ctx, token, "/v3/users/self/dataRange", "dataRange").await
}

#[async_trait]
impl VendorDriver for Dexcom {
    fn vendor(&self) -> Vendor {
        Vendor::Dexcom
    }

    async fn identify(&self, ctx: &VendorCtx, grant: &Grant) -> Result<String, VendorError> {
        Ok(data_range(ctx, grant.tokens.access_token.expose())
            .await?
            .user_id)
    }

    async fn webhook(&self, _ctx: &VendorCtx, _req: &WebhookRequest<'_>) -> Result<WebhookReply> {
        Err(Error::NotFound(
            "Dexcom sends no webhooks; its data is polled".into(),
        ))
    }

    async fn fetch(&self, ctx: &VendorCtx, req: FetchRequest<'_>) -> Result<Fetched, VendorError> {
        let token = req.access_token;
        let range = data_range(ctx, token).await?;
        let Some(egvs) = range.egvs else {
            return Ok(Fetched::default());
        };
        let (Some(has_from), Some(has_to)) = (
            parse_time(&egvs.start.system_time),
            parse_time(&egvs.end.system_time),
        ) else {
            return Err(VendorError::Permanent(
                "dataRange: unreadable egvs range".into(),
            ));
        };
        // Local days reach up to 14 h either side of UTC: read a day wider.
        let (want_from, want_to) = time::covering(req.from, req.to);
        let (start, end) = (
            want_from.max(has_from),
            want_to.min(has_to + Duration::seconds(1)),
        );
        let mut readings = Vec::new();
        let mut raw = Vec::new();
        let mut t = start;
        while t < end {
            let chunk_end = (t + Duration::days(MAX_WINDOW_DAYS)).min(end);
            let mut url = ctx.api_url("/v3/users/self/egvs")?;
            url.query_pairs_mut()
                .append_pair("startDate", &dexcom_time(t))
                .append_pair("endDate", &dexcom_time(chunk_end));
            let page: Egvs = get_json(ctx, token, url, "egvs").await?;
            for r in page.records {
                let e: Egv = serde_json::from_value(r.clone()).map_err(|e| {
                    VendorError::Permanent(format!("egvs: unexpected record shape ({e})"))
                })?;
                if let Some(date) = display_date(&e.display_time) {
                    raw.push(RawRecord {
                        kind: "egv".into(),
                        id: e.record_id.clone(),
                        date,
                        json: r.to_string(),
                    });
                }
                readings.push(e);
            }
            t = chunk_end;
        }
        let in_window = |d: NaiveDate| d >= req.from && d <= req.to;
        raw.retain(|r| in_window(r.date));
        Ok(Fetched {
            samples: normalize(&readings)
                .into_iter()
                .filter(|s| in_window(s.date))
                .collect(),
            raw,
        })
    }

    /// Dexcom offers partners no revoke endpoint.
    async fn revoke(
        &self,
        _ctx: &VendorCtx,
        _vendor_user_id: &str,
        _tokens: &TokenSet,
    ) -> Result<bool, VendorError> {
        Ok(false)
    }

    fn quiet_limit(&self) -> Option<Duration> {
        Some(Duration::minutes(POLL_MINUTES))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_glucose_readings_on_the_display_date() {
        let page: Egvs = serde_json::from_str(include_str!(
            "../../../fixtures/vendors/dexcom/v3_egvs_response.json"
        ))
        .unwrap();
        assert!(page.user_id.unwrap().starts_with("fakedexcomuser"));
        let egvs: Vec<Egv> = page
            .records
            .into_iter()
            .map(|r| serde_json::from_value(r).unwrap())
            .collect();
        let got: Vec<(String, String, f64)> = normalize(&egvs)
            .into_iter()
            .map(|s| {
                assert_eq!(s.metric, MetricType::Glucose);
                (s.date.to_string(), s.time.unwrap().to_rfc3339(), s.value)
            })
            .collect();
        assert!(got.contains(&(
            "2026-11-21".into(),
            "2026-11-21T16:05:00+00:00".into(),
            112.0
        )));
        assert!(got.contains(&(
            "2026-11-21".into(),
            "2026-11-21T16:10:00+00:00".into(),
            118.0
        )));
        // 07:55 UTC on the 22nd is 23:55 on the 21st where the user is.
        assert!(got.contains(&(
            "2026-11-21".into(),
            "2026-11-22T07:55:00+00:00".into(),
            131.0
        )));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn mmol_readings_convert_and_empty_ones_are_skipped() {
        let e = |value: Option<f64>, unit: &str| Egv {
            record_id: "r".into(),
            system_time: "2026-11-21T08:00:00".into(),
            display_time: "2026-11-21T09:00:00".into(),
            value,
            unit: Some(unit.into()),
        };
        let s = normalize(&[e(Some(5.5), "mmol/L"), e(None, "mg/dL")]);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].value, 99.1);
        assert_eq!(s[0].time.unwrap().to_rfc3339(), "2026-11-21T08:00:00+00:00");
    }

    #[test]
    fn a_reading_of_unknown_unit_is_not_taken_as_mg_dl() {
        let e = |unit: Option<&str>| Egv {
            record_id: "r".into(),
            system_time: "2026-11-21T08:00:00".into(),
            display_time: "2026-11-21T09:00:00".into(),
            value: Some(6.1),
            unit: unit.map(String::from),
        };
        let s = normalize(&[e(Some("unknown")), e(None), e(Some("mg/dL"))]);
        assert_eq!(s.len(), 1, "only the reading whose unit is known");
        assert_eq!(s[0].value, 6.1);
    }

    #[test]
    fn data_range_fixture_names_the_user() {
        let r: DataRange = serde_json::from_str(include_str!(
            "../../../fixtures/vendors/dexcom/v3_datarange_response.json"
        ))
        .unwrap();
        assert!(r.user_id.starts_with("fakedexcomuser"));
        let egvs = r.egvs.unwrap();
        assert_eq!(
            parse_time(&egvs.end.system_time).unwrap().to_rfc3339(),
            "2026-11-22T07:55:00+00:00"
        );
        let _ = egvs.start;
    }

    /// Every field the normalizer's types read is one the transcription of
    /// Dexcom's reference names, where it names it.
    #[test]
    fn every_field_read_is_in_dexcoms_reference() {
        use crate::vendors::described::{undescribed_reads, vendor_description};
        let Some(doc) = vendor_description("dexcom-v3-from-docs.json") else {
            return;
        };
        let found = [
            ("EGVs", undescribed_reads::<Egvs>(&doc, "EgvsResponse")),
            ("EGV", undescribed_reads::<Egv>(&doc, "EGV")),
            (
                "data range",
                undescribed_reads::<DataRange>(&doc, "DataRangeResponse"),
            ),
        ];
        for (what, reads) in found {
            assert!(reads.is_empty(), "{what}: {reads:?}");
        }
    }
}
