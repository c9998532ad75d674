//! Profile pictures, contacts' and our own: the messenger knows each contact's picture (URL
//! and key, from their profile) and ours; this task downloads the new ones from the network's attachment server
//! (through onion paths, as the CLI's `umbra profile picture`), decodes them off the
//! runtime's threads and hands them to the UI. A picture that fails is tried again at most
//! every [`RETRY_AFTER`]; the UI shows initials meanwhile.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use umbra_crypto::SessionId;

use super::Update;
use super::worker::{Shared, report};
use crate::client::{
    Clock as _, FileServer, FileServerAddress, OnionFileServer, OnionTransport, SystemClock,
};

/// How often the contacts' pictures are looked at.
const EVERY: Duration = Duration::from_secs(5);
/// How long a picture that failed is left alone.
const RETRY_AFTER: Duration = Duration::from_secs(300);
/// Pictures kept at most (each is 72×72 RGBA, about 20 KiB).
const MAX_PICTURES: usize = 2_000;

/// The network's attachment server, when the network file names one.
pub(super) fn server(network: &std::path::Path, t: &OnionTransport) -> Option<FileServer> {
    let bytes = std::fs::read(network).ok()?;
    let address = FileServerAddress::from_network_json(&bytes).ok()?;
    let link = OnionFileServer::new(t.clone(), &address).ok()?;
    Some(FileServer::new(Arc::new(link), address.url))
}

/// Hands a decoded picture to the UI as `id`'s avatar.
pub(super) async fn show(shared: &Shared, id: SessionId, picture: crate::picture::Picture) {
    shared
        .out
        .send(Update::Picture {
            id,
            picture: Arc::new(picture),
        })
        .await;
}

/// Downloads the pictures of every contact whose picture changed, for as long as the app
/// runs.
pub(super) async fn fetcher(shared: Arc<Shared>, server: FileServer) {
    // Contact → the URL shown (or last tried), and when it failed.
    let mut seen: BTreeMap<SessionId, (String, Option<std::time::Instant>)> = BTreeMap::new();
    loop {
        let chats = shared.m.all_conversations().unwrap_or_default();
        let requests = shared.m.requests().unwrap_or_default();
        let contacts = chats
            .iter()
            .chain(&requests)
            .map(|c| c.contact.session_id)
            .filter_map(|id| Some((id, shared.m.contact_picture(&id).ok()??)));
        // Ours too (set on another device, or before this start): the top bar shows it.
        let own = shared
            .m
            .profile_picture()
            .ok()
            .flatten()
            .map(|p| (shared.m.session_id(), p));
        let people: Vec<_> = own.into_iter().chain(contacts).collect();
        for (id, picture) in people {
            let now = SystemClock.instant();
            let due = match seen.get(&id) {
                Some((url, None)) => *url != picture.url,
                Some((url, Some(failed))) => *url != picture.url || now >= *failed + RETRY_AFTER,
                None => seen.len() < MAX_PICTURES,
            };
            if !due {
                continue;
            }
            let fetched = match shared.m.download_picture(&picture, &server).await {
                Ok(bytes) => tokio::task::spawn_blocking(move || crate::picture::decode(&bytes))
                    .await
                    .unwrap_or_else(|e| Err(format!("the decoding task stopped: {e}"))),
                Err(e) => Err(report(&e)),
            };
            match fetched {
                Ok(p) => {
                    seen.insert(id, (picture.url, None));
                    show(&shared, id, p).await;
                }
                Err(why) => {
                    tracing::debug!(why, "a contact's picture could not be shown");
                    seen.insert(id, (picture.url, Some(now)));
                }
            }
        }
        tokio::time::sleep(EVERY).await;
    }
}
