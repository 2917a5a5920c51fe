//! Every secret the simulated vendors issued or used: app secrets, OAuth
//! codes and tokens, webhook signatures. The tests check that none of them
//! ever reaches a log line (`Simulator::check_logs_on_drop`).

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

fn seen() -> &'static Mutex<HashSet<String>> {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    SEEN.get_or_init(Default::default)
}

/// Remembers a secret value (values shorter than 8 characters are too
/// common to look for).
pub fn record(value: &str) {
    if value.len() >= 8 {
        seen().lock().unwrap().insert(value.to_string());
    }
}

/// How many secrets are on record.
pub fn count() -> usize {
    seen().lock().unwrap().len()
}

/// The recorded secrets that occur in `text`, masked to their first four
/// characters so a failure report does not repeat them.
pub fn leaked_in(text: &str) -> Vec<String> {
    seen()
        .lock()
        .unwrap()
        .iter()
        .filter(|s| text.contains(s.as_str()))
        .map(|s| format!("{}… ({} chars)", &s[..4], s.len()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_recorded_secrets_and_masks_them() {
        record("sim-test-secret-value-1234");
        record("short");
        let leaked = leaked_in("a line with sim-test-secret-value-1234 and short");
        assert_eq!(leaked, vec!["sim-… (26 chars)".to_string()]);
        assert!(leaked_in("nothing here").is_empty());
    }
}
