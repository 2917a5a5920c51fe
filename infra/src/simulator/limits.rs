//! A vendor's documented request quota as fixed windows (WHOOP: 100 per
//! minute and 10,000 per day), with the headers the vendor sends, plus a
//! fault knob that answers the next N requests with 429 whatever the count.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Window {
    pub limit: u32,
    pub length: Duration,
    started: Instant,
    used: u32,
}

impl Window {
    pub fn new(limit: u32, length: Duration) -> Self {
        Self {
            limit,
            length,
            started: Instant::now(),
            used: 0,
        }
    }

    fn roll(&mut self, now: Instant) {
        if now.duration_since(self.started) >= self.length {
            self.started = now;
            self.used = 0;
        }
    }

    fn reset_in(&self, now: Instant) -> u64 {
        self.length
            .saturating_sub(now.duration_since(self.started))
            .as_secs()
            .max(1)
    }
}

/// What the limiter decided for one request.
pub struct Verdict {
    pub allowed: bool,
    /// The tightest window: (limit, remaining, seconds to reset).
    pub limit: u32,
    pub remaining: u32,
    pub reset_secs: u64,
}

pub struct Limiter {
    windows: Mutex<Vec<Window>>,
    force_429: AtomicU32,
}

impl Limiter {
    pub fn new(windows: Vec<Window>) -> Self {
        Self {
            windows: Mutex::new(windows),
            force_429: AtomicU32::new(0),
        }
    }

    /// Answers the next `n` requests with 429 (a 429 storm).
    pub fn force_429(&self, n: u32) {
        self.force_429.store(n, SeqCst);
    }

    /// Replaces the windows (tests use small ones).
    pub fn set_windows(&self, windows: Vec<Window>) {
        *self.windows.lock().unwrap() = windows;
    }

    /// Every window as (limit, seconds).
    pub fn describe(&self) -> Vec<(u32, u64)> {
        self.windows
            .lock()
            .unwrap()
            .iter()
            .map(|w| (w.limit, w.length.as_secs()))
            .collect()
    }

    /// Every window as (limit, used so far).
    pub fn usage(&self) -> Vec<(u32, u32)> {
        self.windows
            .lock()
            .unwrap()
            .iter()
            .map(|w| (w.limit, w.used))
            .collect()
    }

    pub fn check(&self) -> Verdict {
        let now = Instant::now();
        let mut ws = self.windows.lock().unwrap();
        for w in ws.iter_mut() {
            w.roll(now);
        }
        let forced = self
            .force_429
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let allowed = !forced && ws.iter().all(|w| w.used < w.limit);
        if allowed {
            for w in ws.iter_mut() {
                w.used += 1;
            }
        }
        let tightest = ws
            .iter()
            .min_by_key(|w| w.limit.saturating_sub(w.used))
            .expect("at least one window");
        Verdict {
            allowed,
            limit: tightest.limit,
            remaining: tightest.limit.saturating_sub(tightest.used),
            reset_secs: tightest.reset_in(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_count_and_forced_storms_refuse() {
        let l = Limiter::new(vec![Window::new(2, Duration::from_secs(60))]);
        assert!(l.check().allowed);
        let v = l.check();
        assert!(v.allowed);
        assert_eq!(v.remaining, 0);
        let v = l.check();
        assert!(!v.allowed);
        assert!(v.reset_secs >= 1 && v.reset_secs <= 60);
        let l = Limiter::new(vec![Window::new(100, Duration::from_secs(60))]);
        l.force_429(2);
        assert!(!l.check().allowed);
        assert!(!l.check().allowed);
        assert!(l.check().allowed);
    }
}
