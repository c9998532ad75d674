//! Free TCP ports on 127.0.0.1, found by binding port 0 and letting go.
//!
//! Between letting go and the daemon binding it, another program may take the port; the
//! launcher notices the daemon failing to bind and starts it again on new ports.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};

use anyhow::Context as _;

/// Hands out ports, never the same one twice in one run (the kernel may offer a port again
/// once it has been released).
#[derive(Debug, Default)]
pub(crate) struct PortPicker {
    given: HashSet<u16>,
}

impl PortPicker {
    /// A picker that also avoids `in_use` (ports the devnet already uses).
    pub(crate) fn avoiding(in_use: impl IntoIterator<Item = u16>) -> PortPicker {
        PortPicker {
            given: in_use.into_iter().filter(|p| *p != 0).collect(),
        }
    }

    /// A port that was free a moment ago.
    pub(crate) fn pick(&mut self) -> anyhow::Result<u16> {
        for _ in 0..64 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .context("finding a free port on 127.0.0.1")?;
            if self.given.insert(port) {
                return Ok(port);
            }
        }
        anyhow::bail!("no new free port on 127.0.0.1 after 64 tries: free some ports and retry")
    }

    /// Keeps `port` (a port the same daemon had before) if it is free now, else picks another.
    pub(crate) fn reuse_or_pick(&mut self, port: u16) -> anyhow::Result<u16> {
        if port != 0 && is_free(port) {
            self.given.insert(port);
            return Ok(port);
        }
        self.pick()
    }
}

/// Whether `port` can be bound on 127.0.0.1 right now.
pub(crate) fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_distinct_free_ports_and_skips_taken_ones() {
        let mut p = PortPicker::default();
        let a = p.pick().unwrap();
        let b = p.pick().unwrap();
        assert_ne!(a, b);
        assert!(is_free(a));
        let held = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let taken = held.local_addr().unwrap().port();
        assert!(!is_free(taken));
        let c = p.reuse_or_pick(taken).unwrap();
        assert_ne!(c, taken);
        assert_eq!(p.reuse_or_pick(a).unwrap(), a);
    }
}
