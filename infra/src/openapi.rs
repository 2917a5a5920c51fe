//! The app-facing OpenAPI 3.1 description, put together from the handlers'
//! own annotations and types. `make openapi` writes it to
//! `docs/openapi.json`, which the api-docs function serves; a test fails
//! when the two differ, or when a route of template.yaml is not described.

use connector_core::http::openapi::{
    BadGateway, BadRequest, Conflict, NotFound, PayloadTooLarge, SecuritySchemes, TooManyRequests,
    Unauthenticated, Unauthorized, Unavailable, Unprocessable,
};
use utoipa::OpenApi;

/// Where the description is checked in, from the repository's root.
pub const CHECKED_IN: &str = "docs/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Wearable cloud connector",
        description = "One small REST API for an app's users' wearable data: connect WHOOP, \
            Garmin, Fitbit (Google Health), Oura, Polar, Strava, Dexcom, Withings and Terra \
            accounts, push Apple Health summaries from the phone, and read sleep, recovery, \
            HRV, heart rate, activity and glucose back, normalized. Errors are RFC 9457 \
            problem documents. The vendor webhook routes are for the vendors, not apps.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        providers::list,
        providers::list_connections,
        connect::start,
        connect::complete,
        connect::disconnect,
        oauth_callback::callback,
        data::sync,
        data::reports,
        data::metrics,
        data::changes,
        data::latest,
        data::workouts,
        health_push::accept,
        account::delete_me,
        account::erasure_status,
        webhook::deliver,
        webhook::handshake,
        webhook::probe,
        api_docs::openapi_json,
        api_docs::docs,
        api_docs::docs_file,
        pages::connect_page,
        pages::dashboard_page,
        pages::page_file,
        status::health,
    ),
    components(responses(
        BadRequest,
        Unauthorized,
        Unauthenticated,
        NotFound,
        Conflict,
        PayloadTooLarge,
        Unprocessable,
        TooManyRequests,
        BadGateway,
        Unavailable,
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "connections", description = "Connecting a user's vendor accounts."),
        (name = "data", description = "The user's normalized data."),
        (name = "phone push", description = "Apple Health summaries the phone app pushes."),
        (name = "account", description = "Deleting a user and everything kept of them."),
        (name = "pages", description = "The connect and data pages for the app's users, opened with the user's JWT in the URL fragment."),
        (name = "service", description = "The connector's health, this description and the reference over it."),
        (name = "vendor webhooks", description = "Deliveries from the vendors; not for apps."),
    )
)]
struct Description;

/// The description, as `docs/openapi.json` holds it (pretty JSON, one
/// newline at the end).
pub fn description() -> String {
    let mut doc = Description::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    let mut text = doc.to_pretty_json().expect("the description serializes");
    text.push('\n');
    text
}
