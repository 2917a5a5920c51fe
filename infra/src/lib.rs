//! The connector's local stack and developer tools: template.yaml-driven
//! provisioning on an AWS emulator, an API-Gateway-shaped local gateway, the
//! SQS pump, the refresher tick, dev JWTs, signed Mock webhooks, and a
//! simulator of the real vendors' clouds.

pub mod aws_calls;
pub mod conformance;
pub mod dev_jwt;
pub mod events_tail;
pub mod gateway;
pub mod lambda;
pub mod mock_webhook;
pub mod openapi;
pub mod outage;
pub mod provision;
pub mod pump;
pub mod push_signer;
pub mod redrive;
pub mod roles;
pub mod simulator;
pub mod stack;
pub mod template;
pub mod tick;
