//! lambda_http glue for the HTTP functions, beside the flows: how a request
//! is read (user, path, query, bounded body) and an answer written
//! (problem+json for errors), and how every HTTP function starts. Behind the
//! `http` feature, so the SQS and schedule functions do not link it.

pub mod api;
pub mod openapi;
pub mod runtime;
