//! Attachments end to end against the real attachment server (in-process, on loopback),
//! with faults injected in the link: interrupted uploads and downloads resume, tampered and
//! truncated downloads are refused.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest as _, Sha256};
use umbra_net::{BoxFuture, V4Request};

use super::Net;
use crate::messenger::files::{FileServer, FileServerError, FileServerLink};
use crate::messenger::*;

/// The server's onion-free HTTP API, for tests only: a client reaches it through onion paths.
struct TestLink {
    http: reqwest::Client,
    base: String,
    /// Requests answered before the link "breaks" (`usize::MAX`: never).
    budget: AtomicUsize,
    /// Flip a byte of every downloaded chunk.
    tamper: AtomicBool,
    /// Drop the last byte of every downloaded chunk.
    truncate: AtomicBool,
    /// Chunk uploads and downloads seen.
    chunk_puts: AtomicU64,
    chunk_gets: AtomicU64,
    single_posts: AtomicU64,
}

impl FileServerLink for TestLink {
    fn send(&self, r: V4Request) -> BoxFuture<'_, Result<(u16, Vec<u8>), FileServerError>> {
        Box::pin(async move {
            if self
                .budget
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1))
                .is_err()
            {
                return Err(FileServerError::Unreachable("link cut by the test".into()));
            }
            let chunk_get = r.method == "GET" && r.endpoint.contains("/chunk/");
            if chunk_get {
                self.chunk_gets.fetch_add(1, Ordering::SeqCst);
            }
            if r.method == "PUT" {
                self.chunk_puts.fetch_add(1, Ordering::SeqCst);
            }
            if r.method == "POST" && r.endpoint == "/file" {
                self.single_posts.fetch_add(1, Ordering::SeqCst);
            }
            let method = reqwest::Method::from_bytes(r.method.as_bytes()).unwrap();
            let mut req = self
                .http
                .request(method, format!("{}{}", self.base, r.endpoint));
            for (k, v) in &r.headers {
                req = req.header(k, v);
            }
            if let Some(b) = r.body {
                req = req.body(b);
            }
            let resp = req
                .send()
                .await
                .map_err(|e| FileServerError::Unreachable(e.to_string()))?;
            let status = resp.status().as_u16();
            let mut body = resp.bytes().await.unwrap().to_vec();
            if chunk_get && status == 200 {
                if self.tamper.load(Ordering::SeqCst) {
                    body[0] ^= 1;
                }
                if self.truncate.load(Ordering::SeqCst) {
                    body.pop();
                }
            }
            Ok((status, body))
        })
    }
}

struct Server {
    link: Arc<TestLink>,
    files: FileServer,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = umbra_attachments::store::Store::open(dir.path(), 1 << 30).unwrap();
        let state = umbra_attachments::server::AppState::new(
            store,
            Arc::new(umbra_clock::SystemClock),
            umbra_attachments::server::Limits::default(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(umbra_attachments::server::serve(
            listener,
            state,
            std::future::pending(),
        ));
        let link = Arc::new(TestLink {
            http: reqwest::Client::builder().build().unwrap(),
            base: base.clone(),
            budget: AtomicUsize::new(usize::MAX),
            tamper: AtomicBool::new(false),
            truncate: AtomicBool::new(false),
            chunk_puts: AtomicU64::new(0),
            chunk_gets: AtomicU64::new(0),
            single_posts: AtomicU64::new(0),
        });
        let files = FileServer::new(link.clone(), base);
        Server {
            link,
            files,
            _dir: dir,
        }
    }

    fn cut_after(&self, requests: usize) {
        self.link.budget.store(requests, Ordering::SeqCst);
    }

    fn mend(&self) {
        self.link.budget.store(usize::MAX, Ordering::SeqCst);
    }
}

/// A file of `len` bytes that does not repeat within a chunk.
fn file_of(dir: &std::path::Path, name: &str, len: usize) -> (std::path::PathBuf, Vec<u8>) {
    let mut data = Vec::with_capacity(len);
    let mut x: u32 = 0x1234_5678;
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    let path = dir.join(name);
    std::fs::write(&path, &data).unwrap();
    (path, data)
}

fn quiet() -> ProgressFn {
    Arc::new(|_| {})
}

fn recording() -> (ProgressFn, Arc<Mutex<Vec<Progress>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    (Arc::new(move |p| s.lock().unwrap().push(p)), seen)
}

fn sha(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

#[tokio::test]
async fn a_small_file_goes_in_one_request_and_arrives_intact() {
    let net = Net::new();
    let server = Server::start().await;
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let (a, b) = (alice.session_id(), bob.session_id());
    let (path, data) = file_of(net.root.path(), "note.txt", 10_000);

    let (progress, seen) = recording();
    let (msg, _) = alice
        .send_file(&b, &path, Some("read this"), &server.files, progress)
        .await
        .unwrap();
    assert_eq!(msg.status, MessageStatus::Sent);
    assert_eq!(msg.body, "read this");
    assert_eq!(server.link.single_posts.load(Ordering::SeqCst), 1);
    assert_eq!(server.link.chunk_puts.load(Ordering::SeqCst), 0);
    let last = *seen.lock().unwrap().last().unwrap();
    assert_eq!(last.phase, TransferPhase::Uploading);
    assert_eq!(last.done, last.total);
    let mine = alice.attachments(&b).unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].state, AttachmentState::Sent);

    bob.receive().await.unwrap();
    let list = bob.attachments(&a).unwrap();
    assert_eq!(list.len(), 1);
    let got = &list[0];
    assert_eq!(got.file_name.as_deref(), Some("note.txt"));
    assert_eq!(got.content_type.as_deref(), Some("text/plain"));
    assert_eq!(got.size, 10_000);
    assert_eq!(got.state, AttachmentState::Available);
    assert_eq!(got.caption.as_deref(), Some("read this"));

    let out = net.root.path().join("got.txt");
    let saved = bob
        .download_attachment(got.message_id, 0, Some(&out), &server.files, quiet())
        .await
        .unwrap();
    assert_eq!(sha(&std::fs::read(&saved).unwrap()), sha(&data));
    let list = bob.attachments(&a).unwrap();
    assert_eq!(list[0].state, AttachmentState::Downloaded);
    assert_eq!(list[0].path.as_deref(), Some(saved.as_path()));
}

#[tokio::test]
async fn interrupted_uploads_and_downloads_resume_where_they_stopped() {
    let net = Net::new();
    let server = Server::start().await;
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let (a, b) = (alice.session_id(), bob.session_id());
    // 3.5 MB: a blob of 4 chunks.
    let (path, data) = file_of(net.root.path(), "clip.bin", 3_500_000);

    // The link breaks after opening the upload and two chunks.
    server.cut_after(3);
    let e = alice
        .send_file(&b, &path, None, &server.files, quiet())
        .await
        .unwrap_err();
    assert!(matches!(e, MessengerError::FileServer { .. }), "{e:?}");
    assert!(e.to_string().contains("run the same command again"), "{e}");
    assert_eq!(server.link.chunk_puts.load(Ordering::SeqCst), 2);
    assert!(alice.history(&b).unwrap().is_empty(), "nothing sent yet");

    // Again: only the two missing chunks travel.
    server.mend();
    let (progress, seen) = recording();
    alice
        .send_file(&b, &path, None, &server.files, progress)
        .await
        .unwrap();
    assert_eq!(server.link.chunk_puts.load(Ordering::SeqCst), 4);
    let first_upload = seen
        .lock()
        .unwrap()
        .iter()
        .copied()
        .find(|p| p.phase == TransferPhase::Uploading)
        .unwrap();
    assert_eq!(
        first_upload.done,
        2 * (1 << 20),
        "the resume starts at 2 MiB"
    );

    bob.receive().await.unwrap();
    let id = bob.attachments(&a).unwrap()[0].message_id;
    // The download breaks after two chunks …
    server.cut_after(2);
    let e = bob
        .download_attachment(id, 0, None, &server.files, quiet())
        .await
        .unwrap_err();
    assert!(matches!(e, MessengerError::FileServer { .. }), "{e:?}");
    assert_eq!(server.link.chunk_gets.load(Ordering::SeqCst), 2);
    // … and continues with the other two.
    server.mend();
    let saved = bob
        .download_attachment(id, 0, None, &server.files, quiet())
        .await
        .unwrap();
    assert_eq!(server.link.chunk_gets.load(Ordering::SeqCst), 4);
    assert!(saved.ends_with(format!("{id}-clip.bin")), "{saved:?}");
    assert_eq!(sha(&std::fs::read(&saved).unwrap()), sha(&data));
}

#[tokio::test]
async fn tampered_and_truncated_downloads_are_refused_then_succeed_on_retry() {
    let net = Net::new();
    let server = Server::start().await;
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let (a, b) = (alice.session_id(), bob.session_id());
    let (path, data) = file_of(net.root.path(), "photo.bin", 1_500_000);
    alice
        .send_file(&b, &path, None, &server.files, quiet())
        .await
        .unwrap();
    bob.receive().await.unwrap();
    let id = bob.attachments(&a).unwrap()[0].message_id;
    let out = net.root.path().join("photo-out.bin");

    server.link.tamper.store(true, Ordering::SeqCst);
    let e = bob
        .download_attachment(id, 0, Some(&out), &server.files, quiet())
        .await
        .unwrap_err();
    assert!(matches!(e, MessengerError::DownloadRefused(_)), "{e:?}");
    assert!(e.to_string().contains("digest"), "{e}");
    assert!(!out.exists(), "a refused file is never exposed");
    assert_eq!(
        bob.attachments(&a).unwrap()[0].state,
        AttachmentState::Failed
    );
    server.link.tamper.store(false, Ordering::SeqCst);

    server.link.truncate.store(true, Ordering::SeqCst);
    let e = bob
        .download_attachment(id, 0, Some(&out), &server.files, quiet())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("truncated"), "{e}");
    assert!(!out.exists());
    server.link.truncate.store(false, Ordering::SeqCst);

    let saved = bob
        .download_attachment(id, 0, Some(&out), &server.files, quiet())
        .await
        .unwrap();
    assert_eq!(sha(&std::fs::read(saved).unwrap()), sha(&data));
}

#[tokio::test]
async fn files_that_cannot_be_sent_are_refused_before_any_work() {
    let net = Net::new();
    let server = Server::start().await;
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let b = bob.session_id();
    let e = alice
        .send_file(&b, net.root.path(), None, &server.files, quiet())
        .await
        .unwrap_err();
    assert!(matches!(e, MessengerError::NotAFile(_)), "{e:?}");
    let e = alice
        .send_file(
            &b,
            &net.root.path().join("missing"),
            None,
            &server.files,
            quiet(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, MessengerError::ProfileIo { .. }), "{e:?}");
    let e = alice
        .download_attachment(MessageId::Direct(4242), 0, None, &server.files, quiet())
        .await;
    assert!(matches!(
        e,
        Err(MessengerError::NoAttachment(MessageId::Direct(4242)))
    ));
    assert_eq!(server.link.single_posts.load(Ordering::SeqCst), 0);
}

/// A message with two files (as Session clients send): each downloads by its index.
#[tokio::test]
async fn every_file_of_a_message_downloads() {
    use super::T0;
    use umbra_crypto::SeededRandom;
    use umbra_wire::{Content, DataMessage, encode_one_to_one};
    let net = Net::new();
    let server = Server::start().await;
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let (a, b) = (alice.session_id(), bob.session_id());
    // Alice uploads two files (sending them to herself), then writes one message naming both.
    let mut pointers = Vec::new();
    let mut contents = Vec::new();
    for (name, len) in [("one.txt", 3_000), ("two.txt", 5_000)] {
        let (path, data) = file_of(net.root.path(), name, len);
        let (msg, _) = alice
            .send_file(&a, &path, None, &server.files, quiet())
            .await
            .unwrap();
        let row = alice
            .attachments(&a)
            .unwrap()
            .into_iter()
            .find(|f| f.sent_ms == msg.sent_ms)
            .unwrap();
        let stored = db::message_attachments(&alice.db(), row.message_id).unwrap();
        pointers.push(stored[0].attachment.to_pointer());
        contents.push(data);
        net.clock.advance(10);
    }
    let content = Content {
        data_message: Some(DataMessage {
            body: Some("two files".into()),
            attachments: pointers,
            ..DataMessage::default()
        }),
        ..Content::default()
    };
    let data = encode_one_to_one(
        &alice.identity,
        &b,
        &content,
        T0 + 100,
        &mut SeededRandom::new(9),
    )
    .unwrap();
    net.swarms
        .store(&b, 0, &data, T0 + 100, DEFAULT_TTL_MS)
        .await
        .unwrap();
    bob.receive().await.unwrap();
    let files = bob.attachments(&a).unwrap();
    assert_eq!(files.len(), 2);
    let id = files[0].message_id;
    assert_eq!(files[1].message_id, id, "one message");
    for (index, want) in (0u32..).zip(&contents) {
        let saved = bob
            .download_attachment(id, index, None, &server.files, quiet())
            .await
            .unwrap();
        assert_eq!(
            sha(&std::fs::read(&saved).unwrap()),
            sha(want),
            "file {index}"
        );
    }
    assert!(matches!(
        bob.download_attachment(id, 2, None, &server.files, quiet())
            .await,
        Err(MessengerError::NoAttachment(_))
    ));
}

#[tokio::test]
async fn a_profile_picture_is_uploaded_and_named_in_the_profile() {
    let net = Net::new();
    let server = Server::start().await;
    let (alice, _) = net.user("alice", 1);
    let (path, data) = file_of(net.root.path(), "me.jpg", 50_000);

    let picture = alice
        .upload_profile_picture(&path, &server.files)
        .await
        .unwrap();
    assert_eq!(alice.profile_picture().unwrap().as_ref(), Some(&picture));
    assert_eq!(server.link.single_posts.load(Ordering::SeqCst), 1);
    let url = umbra_wire::FileUrl::parse(&picture.url).unwrap();
    assert!(url.stream_format, "{}", picture.url);
    // What a contact does with the URL and key: fetch the blob, decrypt it.
    let blob = server.files.get_chunk(&url.file_id, 0).await.unwrap();
    let key = umbra_attachment_crypto::AttachmentKey::from_bytes(picture.key);
    assert_eq!(
        umbra_attachment_crypto::decrypt_to_vec(&key, &blob).unwrap(),
        data
    );
}

#[tokio::test]
async fn a_contacts_picture_arrives_with_its_messages_and_downloads() {
    let net = Net::new();
    let server = Server::start().await;
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let (a, b) = (alice.session_id(), bob.session_id());
    alice.set_display_name("alice").unwrap();
    let (path, data) = file_of(net.root.path(), "me.jpg", 30_000);
    let picture = alice
        .upload_profile_picture(&path, &server.files)
        .await
        .unwrap();
    assert_eq!(bob.contact_picture(&a).unwrap(), None);

    alice.send_text(&b, "hi, this is me").await.unwrap();
    bob.receive().await.unwrap();
    assert_eq!(bob.contact_picture(&a).unwrap().as_ref(), Some(&picture));
    let got = bob.download_picture(&picture, &server.files).await.unwrap();
    assert_eq!(&got[..], &data[..]);

    // A picture named on another server is not fetched; a wrong key does not decrypt.
    let mut foreign = picture.clone();
    foreign.url = foreign
        .url
        .replace(server.files.url(), "http://elsewhere.example");
    assert!(matches!(
        bob.download_picture(&foreign, &server.files).await,
        Err(MessengerError::ForeignFileServer(_))
    ));
    let mut wrong = picture.clone();
    wrong.key[0] ^= 1;
    assert!(matches!(
        bob.download_picture(&wrong, &server.files).await,
        Err(MessengerError::DownloadRefused(_))
    ));

    // A newer profile without a picture removes it.
    net.clock.advance(2_000);
    alice.set_profile_picture(None).unwrap();
    alice.set_display_name("alice, no picture").unwrap();
    alice.send_text(&b, "picture gone").await.unwrap();
    bob.receive().await.unwrap();
    assert_eq!(bob.contact_picture(&a).unwrap(), None);
}

#[tokio::test]
async fn a_picture_that_cannot_be_set_changes_nothing() {
    let net = Net::new();
    let server = Server::start().await;
    let (alice, _) = net.user("alice", 1);
    let (big, _) = file_of(net.root.path(), "big.png", 1_000_001);
    let err = alice
        .upload_profile_picture(&big, &server.files)
        .await
        .unwrap_err();
    assert!(matches!(err, MessengerError::FileTooLarge { .. }), "{err}");
    let (empty, _) = file_of(net.root.path(), "empty.png", 0);
    assert!(
        alice
            .upload_profile_picture(&empty, &server.files)
            .await
            .is_err()
    );
    assert!(
        alice
            .upload_profile_picture(net.root.path(), &server.files)
            .await
            .is_err()
    );
    let (ok, _) = file_of(net.root.path(), "ok.png", 1_000_000);
    server.cut_after(0);
    assert!(
        alice
            .upload_profile_picture(&ok, &server.files)
            .await
            .is_err()
    );
    assert_eq!(alice.profile_picture().unwrap(), None);
    assert_eq!(server.link.single_posts.load(Ordering::SeqCst), 0);
    server.mend();
    alice
        .upload_profile_picture(&ok, &server.files)
        .await
        .unwrap();
    assert!(alice.profile_picture().unwrap().is_some());
}

#[tokio::test]
async fn a_file_sent_to_a_group_reaches_every_member_and_goes_with_its_message() {
    let (net, alice, bob, view) = super::group_tests::alice_and_bob_in_a_group().await;
    let server = Server::start().await;
    // Above one request: chunked, as any big file.
    let (path, data) = file_of(net.root.path(), "map.pdf", 2_500_000);

    let (sent, id) = alice
        .send_group_file(&view.id, &path, Some("the route"), &server.files, quiet())
        .await
        .unwrap();
    assert!(matches!(id, MessageId::Group(_)));
    assert_eq!(id.to_string().parse::<MessageId>(), Ok(id));
    assert_eq!(sent.status, MessageStatus::Sent);
    assert_eq!(sent.body, "the route");
    assert!(server.link.chunk_puts.load(Ordering::SeqCst) >= 3);
    let mine = alice.group_attachments(&view.id).unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(
        (mine[0].message_id, mine[0].state),
        (id, AttachmentState::Sent)
    );
    assert!(mine[0].path.is_some(), "the sender keeps its local copy");
    // One-to-one lists do not see group files, and the other way round.
    assert!(alice.attachments(&bob.session_id()).unwrap().is_empty());

    net.clock.advance(1_000);
    bob.receive().await.unwrap();
    let list = bob.group_attachments(&view.id).unwrap();
    assert_eq!(list.len(), 1);
    let got = &list[0];
    assert!(matches!(got.message_id, MessageId::Group(_)));
    assert_eq!(got.author, alice.session_id());
    assert!(!got.outgoing);
    assert_eq!(got.file_name.as_deref(), Some("map.pdf"));
    assert_eq!(got.content_type.as_deref(), Some("application/pdf"));
    assert_eq!(got.size, 2_500_000);
    assert_eq!(got.caption.as_deref(), Some("the route"));
    assert_eq!(got.state, AttachmentState::Available);
    let history = bob.group_history(&view.id).unwrap();
    assert_eq!(history.last().map(|m| m.body.as_str()), Some("the route"));

    let out = net.root.path().join("route.pdf");
    let saved = bob
        .download_attachment(got.message_id, 0, Some(&out), &server.files, quiet())
        .await
        .unwrap();
    assert_eq!(sha(&std::fs::read(&saved).unwrap()), sha(&data));
    let after = bob.group_attachments(&view.id).unwrap();
    assert_eq!(after[0].state, AttachmentState::Downloaded);

    // Unsent by Alice: gone from Bob's list with its message.
    let hash = sent.hash.unwrap();
    alice.unsend_group_message(&view.id, &hash).await.unwrap();
    assert!(alice.group_attachments(&view.id).unwrap().is_empty());
    net.clock.advance(1_000);
    bob.receive().await.unwrap();
    assert!(bob.group_attachments(&view.id).unwrap().is_empty());
    assert!(bob.message_attachments(got.message_id).unwrap().is_empty());
}

#[tokio::test]
async fn a_file_without_a_caption_shows_in_the_group_and_outsiders_upload_nothing() {
    let (net, alice, bob, view) = super::group_tests::alice_and_bob_in_a_group().await;
    let server = Server::start().await;
    let (path, _) = file_of(net.root.path(), "a.png", 3_000);

    let (sent, _) = alice
        .send_group_file(&view.id, &path, None, &server.files, quiet())
        .await
        .unwrap();
    assert_eq!(sent.body, "");
    net.clock.advance(1_000);
    bob.receive().await.unwrap();
    // A message with a file only is a message (as one-to-one).
    let history = bob.group_history(&view.id).unwrap();
    assert_eq!(history.last().map(|m| m.body.as_str()), Some(""));
    assert_eq!(bob.group_attachments(&view.id).unwrap().len(), 1);

    // Someone who is not in the group is refused before anything is uploaded.
    let (carol, _) = net.user("carol", 3);
    let posts = server.link.single_posts.load(Ordering::SeqCst);
    let refused = carol
        .send_group_file(&view.id, &path, None, &server.files, quiet())
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(server.link.single_posts.load(Ordering::SeqCst), posts);
}

#[test]
fn message_ids_read_back_as_written_and_refuse_anything_else() {
    for id in [
        MessageId::Direct(0),
        MessageId::Direct(12),
        MessageId::Group(7),
    ] {
        assert_eq!(id.to_string().parse::<MessageId>(), Ok(id));
    }
    assert_eq!("G7".parse::<MessageId>(), Ok(MessageId::Group(7)));
    assert_eq!(MessageId::Group(7).to_string(), "g7");
    for bad in [
        "",
        "g",
        "-1",
        "g-1",
        "+3",
        "12a",
        "x12",
        "99999999999999999999",
    ] {
        let e = bad.parse::<MessageId>().unwrap_err();
        assert!(e.to_string().contains("not a message id"), "{bad}: {e}");
    }
}
