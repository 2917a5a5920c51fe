//! The connector's local stack and developer tools: template.yaml-driven
//! provisioning on an AWS emulator, an API-Gateway-shaped local gateway, the
//! SQS pump, the refresher tick, dev JWTs and signed Mock webhooks.

pub mod dev_jwt;
pub mod gateway;
pub mod mock_webhook;
pub mod provision;
pub mod pump;
pub mod push_signer;
pub mod stack;
pub mod template;
pub mod tick;
