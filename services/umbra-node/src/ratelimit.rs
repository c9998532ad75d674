//! Per-client-IP token bucket (`storage-rpc.md` §1.1): each IPv4 client has a bucket of
//! `burst` tokens refilled at `per_second`; a request takes one token or gets `429`. At most
//! `max_clients` buckets are tracked; when the table is full, buckets that have refilled
//! completely are forgotten (they carry no information), and if none has, the new client is
//! refused.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::Instant;

use crate::config::RateLimitConfig;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A token-bucket rate limiter keyed by client IPv4 address.
#[derive(Debug)]
pub struct RateLimiter {
    cfg: RateLimitConfig,
    buckets: Mutex<HashMap<Ipv4Addr, Bucket>>,
}

impl RateLimiter {
    /// A limiter with these settings.
    pub fn new(cfg: RateLimitConfig) -> RateLimiter {
        RateLimiter {
            cfg,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn refill(&self, b: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        (b.tokens + elapsed * f64::from(self.cfg.per_second)).min(f64::from(self.cfg.burst))
    }

    /// Takes one token for `ip` at time `now`; `false` means "reply 429".
    pub fn allow(&self, ip: Ipv4Addr, now: Instant) -> bool {
        if !self.cfg.enabled {
            return true;
        }
        let mut map = match self.buckets.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(b) = map.get_mut(&ip) {
            let tokens = {
                let cur = *b;
                self.refill(&cur, now)
            };
            b.last = now;
            if tokens >= 1.0 {
                b.tokens = tokens - 1.0;
                return true;
            }
            b.tokens = tokens;
            return false;
        }
        if map.len() >= self.cfg.max_clients {
            let burst = f64::from(self.cfg.burst);
            map.retain(|_, b| {
                let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
                b.tokens + elapsed * f64::from(self.cfg.per_second) < burst
            });
            if map.len() >= self.cfg.max_clients {
                return false;
            }
        }
        map.insert(
            ip,
            Bucket {
                tokens: f64::from(self.cfg.burst) - 1.0,
                last: now,
            },
        );
        true
    }

    /// Number of clients currently tracked.
    pub fn tracked(&self) -> usize {
        match self.buckets.lock() {
            Ok(g) => g.len(),
            Err(p) => p.into_inner().len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use umbra_clock::{Clock as _, SystemClock};

    fn cfg(burst: u32, per_second: u32, max_clients: usize) -> RateLimitConfig {
        RateLimitConfig {
            enabled: true,
            burst,
            per_second,
            max_clients,
        }
    }

    #[test]
    fn burst_then_refill() {
        let rl = RateLimiter::new(cfg(3, 2, 10));
        let ip = Ipv4Addr::new(1, 2, 3, 4);
        let t0 = SystemClock.instant();
        assert!(rl.allow(ip, t0));
        assert!(rl.allow(ip, t0));
        assert!(rl.allow(ip, t0));
        assert!(!rl.allow(ip, t0));
        // Another client is unaffected.
        assert!(rl.allow(Ipv4Addr::new(5, 6, 7, 8), t0));
        // 0.5 s at 2/s refills one token.
        let t1 = t0 + Duration::from_millis(500);
        assert!(rl.allow(ip, t1));
        assert!(!rl.allow(ip, t1));
        // Long idle: never more than the burst.
        let t2 = t1 + Duration::from_secs(100);
        for _ in 0..3 {
            assert!(rl.allow(ip, t2));
        }
        assert!(!rl.allow(ip, t2));
    }

    #[test]
    fn table_is_bounded() {
        let rl = RateLimiter::new(cfg(2, 1, 2));
        let t0 = SystemClock.instant();
        assert!(rl.allow(Ipv4Addr::new(1, 0, 0, 1), t0));
        assert!(rl.allow(Ipv4Addr::new(1, 0, 0, 2), t0));
        // Full, and nobody has refilled: refused.
        assert!(!rl.allow(Ipv4Addr::new(1, 0, 0, 3), t0));
        assert_eq!(rl.tracked(), 2);
        // After the others refilled, they are forgotten and the newcomer fits.
        let t1 = t0 + Duration::from_secs(5);
        assert!(rl.allow(Ipv4Addr::new(1, 0, 0, 3), t1));
        assert!(rl.tracked() <= 2);
    }

    #[test]
    fn disabled_allows_everything() {
        let rl = RateLimiter::new(RateLimitConfig {
            enabled: false,
            ..cfg(1, 1, 1)
        });
        let t0 = SystemClock.instant();
        for _ in 0..100 {
            assert!(rl.allow(Ipv4Addr::LOCALHOST, t0));
        }
    }
}
