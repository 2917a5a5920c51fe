#![no_main]
use connector_fuzz::{webhook, Target};
libfuzzer_sys::fuzz_target!(|data: &[u8]| webhook(Target::Oura, data));
