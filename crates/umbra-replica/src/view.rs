//! The node's current [`SwarmView`], shared: a [`ViewHandle`] hands out the newest snapshot and
//! tells subscribers when it changes. The view only moves forward: [`ViewHandle::set`] refuses
//! a view with an older epoch than the current one.

use std::sync::Arc;

use tokio::sync::watch;
use umbra_nodelist::SwarmView;

/// A shared, replaceable [`SwarmView`] that only moves forward in epochs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ViewHandle {
    tx: Arc<watch::Sender<Arc<SwarmView>>>,
}

impl ViewHandle {
    /// A handle holding `view`.
    pub fn new(view: SwarmView) -> Self {
        let (tx, _rx) = watch::channel(Arc::new(view));
        ViewHandle { tx: Arc::new(tx) }
    }

    /// The current view.
    pub fn get(&self) -> Arc<SwarmView> {
        self.tx.borrow().clone()
    }

    /// Replaces the view unless `view` is older (lower epoch) than the current one. Returns
    /// whether it was replaced. Subscribers are told about the change.
    pub fn set(&self, view: SwarmView) -> bool {
        let view = Arc::new(view);
        self.tx.send_if_modified(|cur| {
            if view.epoch() < cur.epoch() {
                return false;
            }
            *cur = view;
            true
        })
    }

    /// A receiver that wakes up whenever the view is replaced.
    pub fn subscribe(&self) -> watch::Receiver<Arc<SwarmView>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use umbra_crypto::Ed25519PublicKey;

    use super::*;

    fn view(epoch: u64) -> SwarmView {
        SwarmView::new(epoch, Ed25519PublicKey::from_bytes([1; 32]), [])
    }

    #[test]
    fn handle_never_goes_back() {
        let h = ViewHandle::new(view(5));
        let rx = h.subscribe();
        assert!(!h.set(view(4)));
        assert_eq!(h.get().epoch(), 5);
        assert!(!rx.has_changed().unwrap_or(true));
        assert!(h.set(view(6)));
        assert_eq!(h.get().epoch(), 6);
        assert!(rx.has_changed().unwrap_or(false));
    }
}
