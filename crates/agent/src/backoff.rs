//! The kubelet's back-off schedule, shared by image pulls and container restarts.
//!
//! Each key (a pod's image, a pod's container) has a delay that starts at 10 s and doubles
//! on each failure up to 300 s. As in the kubelet's `flowcontrol.Backoff`, the first
//! failure is retried at once and records the first delay; a key whose last failure is
//! older than twice the longest delay (10 minutes) starts over.

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const INITIAL: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy)]
struct Entry {
    delay: Duration,
    last: Instant,
}

/// Delays by key.
#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, Entry>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(INITIAL, MAX)
    }
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            entries: HashMap::new(),
        }
    }

    /// Records a failure at `now`: the first (or the first after a long quiet) gets the
    /// initial delay, each next one double the last, up to the maximum.
    pub fn next(&mut self, key: &str, now: Instant) {
        let delay = match self.entries.get(key) {
            Some(e) if !self.expired(e, now) => (e.delay * 2).min(self.max),
            _ => self.initial,
        };
        self.entries
            .insert(key.to_string(), Entry { delay, last: now });
    }

    /// Whether a retry at `now` of what failed at `since` must still wait.
    pub fn in_backoff_since(&self, key: &str, since: Instant, now: Instant) -> bool {
        match self.entries.get(key) {
            Some(e) if !self.expired(e, now) => now.saturating_duration_since(since) < e.delay,
            _ => false,
        }
    }

    /// When a retry of what failed at `since` may go, if it must wait.
    pub fn retry_at(&self, key: &str, since: Instant, now: Instant) -> Option<Instant> {
        let e = self.entries.get(key)?;
        self.in_backoff_since(key, since, now)
            .then_some(since + e.delay)
    }

    /// The current delay of a key.
    pub fn delay(&self, key: &str) -> Option<Duration> {
        self.entries.get(key).map(|e| e.delay)
    }

    /// Forgets a key (a container that ran long enough, a pull that succeeded).
    pub fn reset(&mut self, key: &str) {
        self.entries.remove(key);
    }

    fn expired(&self, e: &Entry, now: Instant) -> bool {
        now.saturating_duration_since(e.last) > self.max * 2
    }
}

/// Go's `time.Duration` text for a duration truncated to milliseconds, as the kubelet's
/// events print it: `850ms`, `1.234s`, `2m3.5s`, `0s`.
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, frac) = (rest / 1000, rest % 1000);
    let mut secs = s.to_string();
    if frac > 0 {
        let f = format!("{frac:03}");
        secs.push('.');
        secs.push_str(f.trim_end_matches('0'));
    }
    match (h, m) {
        (0, 0) => format!("{secs}s"),
        (0, m) => format!("{m}m{secs}s"),
        (h, m) => format!("{h}h{m}m{secs}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_10s_to_300s() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        let mut delays = Vec::new();
        for i in 0..8 {
            b.next("k", t0 + Duration::from_secs(i));
            delays.push(b.delay("k").unwrap().as_secs());
        }
        assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn first_failure_retries_at_once_then_waits() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        assert!(!b.in_backoff_since("k", t0, t0));
        b.next("k", t0);
        assert!(b.in_backoff_since("k", t0, t0 + Duration::from_secs(9)));
        assert!(!b.in_backoff_since("k", t0, t0 + Duration::from_secs(10)));
        assert_eq!(
            b.retry_at("k", t0, t0 + Duration::from_secs(1)),
            Some(t0 + INITIAL)
        );
        assert!(!b.in_backoff_since("other", t0, t0));
    }

    #[test]
    fn long_quiet_starts_over() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        b.next("k", t0);
        b.next("k", t0 + Duration::from_secs(1));
        assert_eq!(b.delay("k"), Some(Duration::from_secs(20)));
        b.next("k", t0 + Duration::from_secs(700));
        assert_eq!(b.delay("k"), Some(INITIAL));
        b.reset("k");
        assert_eq!(b.delay("k"), None);
    }

    #[test]
    fn durations_read_as_go_prints_them() {
        assert_eq!(go_duration(Duration::from_micros(300)), "0s");
        assert_eq!(go_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(go_duration(Duration::from_millis(1234)), "1.234s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(2)), "2s");
        assert_eq!(go_duration(Duration::from_millis(123_500)), "2m3.5s");
        assert_eq!(go_duration(Duration::from_secs(3660)), "1h1m0s");
    }
}
