//! The pieces of the app-facing OpenAPI description that every route shares:
//! the security schemes and the error answers. The routes themselves are
//! described on the handlers that serve them (`#[utoipa::path]` in each
//! function's `lib.rs`), with the types those handlers serialize.

use crate::http::api::{GatewayRefusal, Problem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi;

/// The signed-in user's bearer JWT, checked by API Gateway's authorizer.
pub const USER_JWT: &str = "user_jwt";
/// The phone's HMAC signature of a HealthKit push (with [`PUSH_TIMESTAMP`]).
pub const PUSH_SIGNATURE: &str = "push_signature";
/// The time the phone signed a push, checked for freshness.
pub const PUSH_TIMESTAMP: &str = "push_timestamp";

/// Adds the security schemes the routes name.
pub struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            USER_JWT,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "The app's signed-in user: a JWT of the configured issuer and \
                         audience, whose `sub` is the user id.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            PUSH_SIGNATURE,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-sync-signature",
                "Lowercase hex HMAC-SHA256, with the push secret, of `<x-sync-timestamp>.<raw body>`.",
            ))),
        );
        components.add_security_scheme(
            PUSH_TIMESTAMP,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-sync-timestamp",
                "Unix seconds when the phone signed the push; refused outside the freshness window.",
            ))),
        );
    }
}

/// The request is malformed (see `detail`).
#[derive(utoipa::ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct BadRequest(#[to_schema] pub Problem);

/// The bearer JWT is missing or invalid (API Gateway's own answer).
#[derive(utoipa::ToResponse)]
pub struct Unauthorized(#[to_schema] pub GatewayRefusal);

/// The signature, secret or token a public route checks is missing or wrong.
#[derive(utoipa::ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Unauthenticated(#[to_schema] pub Problem);

/// No such thing (see `detail`).
#[derive(utoipa::ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct NotFound(#[to_schema] pub Problem);

/// The request clashes with the current state, or the vendor is not
/// configured in this deployment (see `detail`).
#[derive(utoipa::ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Conflict(#[to_schema] pub Problem);

/// The body is larger than the route accepts.
#[derive(utoipa::ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct PayloadTooLarge(#[to_schema] pub Problem);

/// A field has a bad value (`field` names it), or the request cannot be acted on.
#[derive(utoipa::ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Unprocessable(#[to_schema] pub Problem);

/// Too many requests: retry after the number of seconds given.
#[derive(utoipa::ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("retry-after" = u64, description = "Seconds to wait before retrying."))
)]
pub struct TooManyRequests(#[to_schema] pub Problem);

/// The vendor could not be reached or refused the call; retry later.
#[derive(utoipa::ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct BadGateway(#[to_schema] pub Problem);

/// A backing service (storage, queue) is unavailable: retry shortly.
#[derive(utoipa::ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("retry-after" = u64, description = "Seconds to wait before retrying."))
)]
pub struct Unavailable(#[to_schema] pub Problem);
