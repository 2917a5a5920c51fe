//! Each real vendor's OAuth endpoints and scopes (see ../shared/VENDORS.md).
//! Every URL can be overridden with CONNECTOR_<VENDOR>_AUTH_URL, _TOKEN_URL and
//! _API_BASE, which is how tests point a vendor at a local simulator.

use crate::domain::vendor::Vendor;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// client_id + client_secret as HTTP Basic.
    Basic,
    /// client_id + client_secret in the form body.
    Body,
}

/// How the token endpoint shapes its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenResponseShape {
    /// RFC 6749 §5.1 JSON.
    Standard,
    /// `{"status": 0, "body": {…RFC 6749 fields…}}` (Withings).
    StatusBody,
}

#[derive(Clone, Copy, Debug)]
pub struct OAuthDefaults {
    pub auth_url: &'static str,
    pub token_url: &'static str,
    pub api_base: &'static str,
    pub scopes: &'static [&'static str],
    pub client_auth: ClientAuth,
    /// Extra query parameters the authorize URL needs.
    pub extra_auth_params: &'static [(&'static str, &'static str)],
    /// Extra form parameters every token request needs.
    pub extra_token_params: &'static [(&'static str, &'static str)],
    pub token_response: TokenResponseShape,
}

/// OAuth defaults of a real vendor; None for Mock, which connects without OAuth.
pub fn oauth_defaults(vendor: Vendor) -> Option<OAuthDefaults> {
    use ClientAuth::*;
    use TokenResponseShape::*;
    let d = match vendor {
        Vendor::Mock => return None,
        Vendor::Whoop => OAuthDefaults {
            auth_url: "https://api.prod.whoop.com/oauth/oauth2/auth",
            token_url: "https://api.prod.whoop.com/oauth/oauth2/token",
            api_base: "https://api.prod.whoop.com",
            scopes: &[
                "read:recovery",
                "read:sleep",
                "read:workout",
                "read:cycles",
                "read:profile",
                "read:body_measurement",
                "offline",
            ],
            client_auth: Body,
            extra_auth_params: &[],
            extra_token_params: &[],
            token_response: Standard,
        },
        Vendor::Garmin => OAuthDefaults {
            auth_url: "https://connect.garmin.com/oauth2Confirm",
            token_url: "https://diauth.garmin.com/di-oauth2-service/oauth/token",
            api_base: "https://apis.garmin.com",
            scopes: &[],
            client_auth: Body,
            extra_auth_params: &[],
            extra_token_params: &[],
            token_response: Standard,
        },
        Vendor::Fitbit => OAuthDefaults {
            auth_url: "https://accounts.google.com/o/oauth2/v2/auth",
            token_url: "https://oauth2.googleapis.com/token",
            api_base: "https://health.googleapis.com",
            scopes: &[
                "https://www.googleapis.com/auth/googlehealth.activity_and_fitness.readonly",
                "https://www.googleapis.com/auth/googlehealth.health_metrics_and_measurements.readonly",
                "https://www.googleapis.com/auth/googlehealth.sleep.readonly",
                "https://www.googleapis.com/auth/googlehealth.profile.readonly",
            ],
            client_auth: Body,
            extra_auth_params: &[("access_type", "offline"), ("prompt", "consent")],
            extra_token_params: &[],
            token_response: Standard,
        },
        Vendor::Oura => OAuthDefaults {
            auth_url: "https://cloud.ouraring.com/oauth/authorize",
            token_url: "https://api.ouraring.com/oauth/token",
            api_base: "https://api.ouraring.com",
            // `daily`: sleep, readiness, activity; `spo2Daily` is SpO2's current name.
            scopes: &["daily", "heartrate", "workout", "spo2Daily"],
            client_auth: Body,
            extra_auth_params: &[],
            extra_token_params: &[],
            token_response: Standard,
        },
        Vendor::Polar => OAuthDefaults {
            auth_url: "https://flow.polar.com/oauth2/authorization",
            token_url: "https://polarremote.com/v2/oauth2/token",
            api_base: "https://www.polaraccesslink.com",
            scopes: &["accesslink.read_all"],
            client_auth: Basic,
            extra_auth_params: &[],
            extra_token_params: &[],
            token_response: Standard,
        },
        // Strava wants scopes comma-separated: one entry, so the oauth2 crate
        // sends it as is. Data paths (/api/v3/...) and /oauth/deauthorize are
        // both under the origin.
        Vendor::Strava => OAuthDefaults {
            auth_url: "https://www.strava.com/oauth/authorize",
            token_url: "https://www.strava.com/api/v3/oauth/token",
            api_base: "https://www.strava.com",
            scopes: &["read,activity:read_all"],
            client_auth: Body,
            extra_auth_params: &[("approval_prompt", "auto")],
            extra_token_params: &[],
            token_response: Standard,
        },
        Vendor::Dexcom => OAuthDefaults {
            auth_url: "https://api.dexcom.com/v2/oauth2/login",
            token_url: "https://api.dexcom.com/v2/oauth2/token",
            api_base: "https://api.dexcom.com",
            scopes: &["offline_access"],
            client_auth: Body,
            extra_auth_params: &[],
            extra_token_params: &[],
            token_response: Standard,
        },
        Vendor::Withings => OAuthDefaults {
            auth_url: "https://account.withings.com/oauth2_user/authorize2",
            token_url: "https://wbsapi.withings.net/v2/oauth2",
            api_base: "https://wbsapi.withings.net",
            // Comma-separated, one entry (see Strava). `user.info` needs a
            // contract with Withings; bed in/out events are not used.
            scopes: &["user.metrics,user.activity"],
            client_auth: Body,
            extra_auth_params: &[],
            extra_token_params: &[("action", "requesttoken")],
            token_response: StatusBody,
        },
        Vendor::Terra => OAuthDefaults {
            auth_url: "https://api.tryterra.co/v2/auth/authenticateUser",
            token_url: "https://api.tryterra.co/v2/auth/token",
            api_base: "https://api.tryterra.co",
            scopes: &[],
            client_auth: Body,
            extra_auth_params: &[],
            extra_token_params: &[],
            token_response: Standard,
        },
    };
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_real_vendor_has_https_endpoints_and_mock_has_none() {
        assert!(oauth_defaults(Vendor::Mock).is_none());
        for v in Vendor::ALL.into_iter().filter(|v| *v != Vendor::Mock) {
            let d = oauth_defaults(v).unwrap();
            for u in [d.auth_url, d.token_url, d.api_base] {
                assert!(u.starts_with("https://"), "{v}: {u}");
            }
        }
        assert!(oauth_defaults(Vendor::Whoop)
            .unwrap()
            .scopes
            .contains(&"offline"));
        assert_eq!(
            oauth_defaults(Vendor::Polar).unwrap().client_auth,
            ClientAuth::Basic
        );
    }
}
