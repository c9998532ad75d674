#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Golden tests of the `umbra` client commands that work offline: identities, contacts, and
//! the one-line errors for bad input (each followed by a check that nothing changed).
//!
//! Every case runs the real binary in a fresh temporary profile. Outputs are compared with
//! the snapshots in `tests/snapshots/` (insta); the parts that differ between runs (temporary
//! paths, a new identity's ID and phrase) are replaced by placeholders first. The only network
//! the tests reach is on 127.0.0.1: a closed port, or a stand-in registry serving a node
//! list signed by the wrong key.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;
use umbra_crypto::{Identity, SeededRandom};
use umbra_nodelist::list::{NodeList, SignedNodeList};

/// A recovery phrase and the Session ID it restores.
const PHRASE: &str =
    "primary foot receive sock virtual wagon desk guide rather scissors assist sleep";
const PHRASE_ID: &str = "052d75c7e6f5e033482f46e88e0733f807c30fcc9a3b936234eb0b88df96b10e58";
/// A valid Session ID of nobody in particular.
const BOB: &str = "05abababababababababababababababababababababababababababababababab";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The golden form: exit code, stdout, stderr.
    fn golden(&self, replace: &[(&str, &str)]) -> String {
        let mut s = format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        for (from, to) in replace {
            s = s.replace(from, to);
        }
        s
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.stdout))
    }
}

/// A temporary directory holding profiles.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn root(&self) -> String {
        self.dir.path().display().to_string()
    }

    /// Runs `umbra ARGS` with `UMBRA_*` cleared, the data directory inside the temporary
    /// directory, `extra` variables set and `stdin` as standard input.
    fn run(&self, args: &[&str], extra: &[(&str, &str)], stdin: &str) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_umbra"));
        cmd.args(args)
            .env_remove("UMBRA_PROFILE")
            .env_remove("UMBRA_NETWORK")
            .env_remove("UMBRA_PASSPHRASE")
            .env("XDG_DATA_HOME", self.path("data"))
            .env("HOME", self.path("home"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// `umbra ARGS --profile DIR/p` (the profile `p`).
    fn p(&self, args: &[&str]) -> Run {
        self.in_profile("p", args, &[], "")
    }

    fn in_profile(&self, profile: &str, args: &[&str], extra: &[(&str, &str)], stdin: &str) -> Run {
        let dir = self.path(profile);
        let mut all: Vec<&str> = args.to_vec();
        all.push("--profile");
        let dir = dir.to_str().unwrap().to_owned();
        all.push(&dir);
        self.run(&all, extra, stdin)
    }

    /// A profile `p` restored from [`PHRASE`].
    fn restored(&self) -> &Env {
        let r = self.in_profile("p", &["id", "restore"], &[], PHRASE);
        assert_eq!(r.code, 0, "{}", r.stderr);
        self
    }

    /// A network file pointing at a registry URL.
    fn network(&self, registry_url: &str, key: &umbra_crypto::Ed25519PublicKey) -> String {
        let path = self.path("network.json");
        let body = serde_json::json!({
            "format": 1,
            "network": "devnet",
            "seed_url": format!("{registry_url}/json_rpc"),
            "registry_url": registry_url,
            "registry_pubkey": hex(key.as_bytes()),
            "nodes": [],
        });
        std::fs::write(&path, body.to_string()).unwrap();
        path.display().to_string()
    }

    /// A network file whose registry does not answer (a port nobody listens on).
    fn dead_network(&self) -> String {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        self.network(
            &format!("http://127.0.0.1:{port}"),
            &umbra_crypto::Ed25519PublicKey::from_bytes([7; 32]),
        )
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Whether the profile `p` still holds no message and an empty outbox.
fn assert_untouched(env: &Env) {
    let out = env.p(&["outbox", "--json"]);
    assert_eq!(out.json(), serde_json::json!([]), "outbox");
    let chats = env.p(&["chats", "--json"]);
    assert_eq!(chats.json(), serde_json::json!([]), "chats");
}

// ----- identities -------------------------------------------------------------------------------

#[test]
fn id_restore_from_a_fixed_phrase_and_show() {
    let env = Env::new();
    let root = env.root();
    let r = env.in_profile("p", &["id", "restore", "--name", "Alice"], &[], PHRASE);
    insta::assert_snapshot!("id_restore", r.golden(&[(&root, "[TMP]")]));
    let show = env.p(&["id", "show"]);
    insta::assert_snapshot!("id_show", show.golden(&[(&root, "[TMP]")]));
    let json = env.p(&["id", "show", "--json"]);
    insta::assert_snapshot!("id_show_json", json.golden(&[(&root, "[TMP]")]));
    assert_eq!(json.json()["session_id"], PHRASE_ID);
    // The global options go before the subcommand as well as after it.
    let before = env.p(&["--json", "id", "show"]);
    assert_eq!(before.code, 0, "{}", before.stderr);
    assert_eq!(before.json(), json.json());
    let err = env.p(&["--json", "history", "nobody"]);
    assert_ne!(err.code, 0);
    assert!(err.json()["error"].is_string(), "{}", err.stdout);
}

#[test]
fn id_new_prints_a_fresh_identity_and_its_phrase() {
    let env = Env::new();
    let root = env.root();
    let r = env.in_profile("a", &["id", "new", "--json"], &[], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    let id = v["session_id"].as_str().unwrap().to_owned();
    let phrase = v["recovery_phrase"].as_str().unwrap().to_owned();
    assert!(id.len() == 66 && id.starts_with("05"), "{id}");
    assert_eq!(phrase.split(' ').count(), 12, "{phrase}");
    assert!(r.stderr.contains("keep it secret"), "{}", r.stderr);

    // The phrase restores the same account elsewhere.
    let back = env.in_profile("b", &["id", "restore", "--json"], &[], &phrase);
    assert_eq!(back.json()["session_id"], id.as_str());

    // The text form, with the random parts replaced.
    let text = env.in_profile("c", &["id", "new", "--name", "Carol"], &[], "");
    let shown = env
        .in_profile("c", &["id", "show", "--json"], &[], "")
        .json();
    let cid = shown["session_id"].as_str().unwrap().to_owned();
    let cphrase = text
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Recovery phrase: "))
        .unwrap()
        .to_owned();
    assert_eq!(cphrase.split(' ').count(), 12);
    insta::assert_snapshot!(
        "id_new",
        text.golden(&[
            (&cid, "[SESSION_ID]"),
            (&cphrase, "[PHRASE]"),
            (&root, "[TMP]")
        ])
    );
    assert_eq!(shown["display_name"], "Carol");
}

#[test]
fn id_new_defaults_to_the_users_data_directory() {
    let env = Env::new();
    let r = env.run(&["id", "new", "--json"], &[], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.json()["profile"],
        env.path("data/umbra/default").display().to_string()
    );
    assert!(env.path("data/umbra/default/profile.json").exists());
    // UMBRA_PROFILE wins over the default.
    let other = env.path("elsewhere");
    let r = env.run(
        &["id", "show"],
        &[("UMBRA_PROFILE", other.to_str().unwrap())],
        "",
    );
    assert_eq!(r.code, 1);
}

#[test]
fn id_errors_change_nothing() {
    let env = Env::new();
    let root = env.root();
    let bad = env.in_profile("p", &["id", "restore"], &[], "one two three");
    insta::assert_snapshot!("id_restore_bad_phrase", bad.golden(&[(&root, "[TMP]")]));
    assert!(!env.path("p/profile.json").exists());

    let empty = env.in_profile("p", &["id", "restore", "--json"], &[], "");
    insta::assert_snapshot!("id_restore_empty_json", empty.golden(&[(&root, "[TMP]")]));

    let none = env.p(&["id", "show"]);
    insta::assert_snapshot!("id_show_no_profile", none.golden(&[(&root, "[TMP]")]));

    env.restored();
    let again = env.p(&["id", "new"]);
    insta::assert_snapshot!("id_new_over_a_profile", again.golden(&[(&root, "[TMP]")]));
    assert_eq!(
        env.p(&["id", "show", "--json"]).json()["session_id"],
        PHRASE_ID
    );
}

#[test]
fn locked_and_newer_profiles_are_refused() {
    let env = Env::new();
    let root = env.root();
    let pass = [("UMBRA_PASSPHRASE", "correct horse")];
    let r = env.in_profile("p", &["id", "restore"], &pass, PHRASE);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ok = env.in_profile("p", &["id", "show", "--json"], &pass, "");
    assert_eq!(ok.json()["session_id"], PHRASE_ID);

    let locked = env.p(&["id", "show"]);
    insta::assert_snapshot!("profile_locked", locked.golden(&[(&root, "[TMP]")]));
    let wrong = env.in_profile(
        "p",
        &["contact", "list", "--json"],
        &[("UMBRA_PASSPHRASE", "wrong")],
        "",
    );
    insta::assert_snapshot!(
        "profile_wrong_passphrase",
        wrong.golden(&[(&root, "[TMP]")])
    );

    // A profile written by a newer Umbra.
    let env = Env::new();
    let root = env.root();
    env.restored();
    let meta = env.path("p/profile.json");
    let text = std::fs::read_to_string(&meta).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["format"] = 99.into();
    std::fs::write(&meta, v.to_string()).unwrap();
    let newer = env.p(&["contact", "list"]);
    insta::assert_snapshot!("profile_too_new", newer.golden(&[(&root, "[TMP]")]));
}

// ----- contacts ---------------------------------------------------------------------------------

#[test]
fn contacts_add_rename_list() {
    let env = Env::new();
    let root = env.root();
    env.restored();
    let empty = env.p(&["contact", "list"]);
    insta::assert_snapshot!("contact_list_empty", empty.golden(&[]));
    let add = env.p(&["contact", "add", BOB, "bob"]);
    insta::assert_snapshot!("contact_add", add.golden(&[]));
    let carol = "0500000000000000000000000000000000000000000000000000000000000000c0";
    let add2 = env.p(&["contact", "add", carol, "--json"]);
    insta::assert_snapshot!("contact_add_json", add2.golden(&[]));
    let ren = env.p(&["contact", "rename", carol, "carol"]);
    insta::assert_snapshot!("contact_rename", ren.golden(&[]));
    let ren2 = env.p(&["contact", "rename", "bob", "robert"]);
    assert_eq!(ren2.code, 0, "{}", ren2.stderr);
    let list = env.p(&["contact", "list"]);
    insta::assert_snapshot!("contact_list", list.golden(&[]));
    let json = env.p(&["contact", "list", "--json"]);
    insta::assert_snapshot!("contact_list_json", json.golden(&[]));

    // Errors: one line, and the list is unchanged.
    let cases: [(&str, &[&str]); 6] = [
        ("contact_add_bad_id", &["contact", "add", "05abc", "x"]),
        (
            "contact_add_not_hex",
            &["contact", "add", &"zz".repeat(33), "x"],
        ),
        ("contact_add_self", &["contact", "add", PHRASE_ID, "me"]),
        ("contact_add_id_as_name", &["contact", "add", BOB, carol]),
        (
            "contact_rename_unknown",
            &["contact", "rename", "dave", "d"],
        ),
        (
            "contact_rename_bad_id_json",
            &["contact", "rename", "05ab", "d", "--json"],
        ),
    ];
    for (name, args) in cases {
        let r = env.p(args);
        insta::assert_snapshot!(name, r.golden(&[(&root, "[TMP]")]));
    }
    assert_eq!(env.p(&["contact", "list", "--json"]).stdout, json.stdout);
}

#[test]
fn block_decline_and_settings_offline() {
    let env = Env::new();
    env.restored();
    env.p(&["contact", "add", BOB, "bob"]);
    let decline = env.p(&["decline", "bob"]);
    insta::assert_snapshot!("decline_not_a_request", decline.golden(&[]));
    let block = env.p(&["block", "bob", "--json"]);
    insta::assert_snapshot!("block_json", block.golden(&[]));
    let list = env.p(&["contact", "list", "--json"]).json();
    assert_eq!(
        list,
        serde_json::json!([]),
        "a blocked account is no contact"
    );
    let unblock = env.p(&["unblock", BOB]);
    assert_eq!(unblock.code, 0, "{}", unblock.stderr);

    let settings = env.p(&["settings", "--read-receipts", "on", "--typing", "off"]);
    insta::assert_snapshot!("settings_set", settings.golden(&[]));
    let json = env.p(&["settings", "--json", "bob"]);
    insta::assert_snapshot!("settings_json", json.golden(&[]));
    let bad = env.p(&["settings", "bob", "--disappearing", "after-lunch:5m"]);
    insta::assert_snapshot!("settings_bad_mode", bad.golden(&[]));
    let no_net = env.p(&["settings", "bob", "--disappearing", "after-send:1h"]);
    insta::assert_snapshot!("settings_disappearing_needs_network", no_net.golden(&[]));
    assert_eq!(env.p(&["settings", "--json"]).json()["read_receipts"], true);
    assert_untouched(&env);
}

#[test]
fn pin_unpin_hide_offline() {
    let env = Env::new();
    env.restored();
    env.p(&["contact", "add", BOB, "bob"]);
    let pin = env.p(&["pin", "bob"]);
    assert_eq!(
        (pin.code, pin.stdout.as_str()),
        (0, "pinned bob\n"),
        "{}",
        pin.stderr
    );
    let json = env.p(&["unpin", "bob", "--json"]).json();
    assert_eq!(json["action"], "unpin");
    assert_eq!(json["session_id"], BOB);
    let hide = env.p(&["hide", BOB]);
    assert_eq!(hide.code, 0, "{}", hide.stderr);
    assert!(
        hide.stdout
            .starts_with("hid bob until a new message arrives")
    );
    // A contact without messages is in no list; `--all` adds hidden ones.
    assert_eq!(
        env.p(&["chats", "--all", "--json"]).json(),
        serde_json::json!([])
    );
    let me = env.p(&["id", "show", "--json"]).json()["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_one_line_error(&env.p(&["pin", &me]), "not a conversation of the chat list");
    assert_one_line_error(&env.p(&["hide", "nobody"]), "unknown contact");
}

// ----- sending: bad input, missing or untrusted networks ------------------------------------------

#[test]
fn send_refuses_bad_input_and_changes_nothing() {
    let env = Env::new();
    let root = env.root();
    env.restored();
    env.p(&["contact", "add", BOB, "bob"]);
    let net = env.dead_network();
    let long = "x".repeat(2001);
    let cases: [(&str, Vec<&str>); 7] = [
        ("send_no_network", vec!["send", "bob", "hi"]),
        (
            "send_network_missing",
            vec![
                "send",
                "bob",
                "hi",
                "--network",
                "/nonexistent/network.json",
            ],
        ),
        (
            "send_unknown_contact",
            vec!["send", "dave", "hi", "--network", &net],
        ),
        (
            "send_invalid_session_id",
            vec![
                "send",
                "05abcdef0123456789abcdef0123",
                "hi",
                "--network",
                &net,
            ],
        ),
        (
            "send_too_long",
            vec!["send", "bob", &long, "--network", &net],
        ),
        ("send_empty", vec!["send", "bob", "  ", "--network", &net]),
        (
            "send_unknown_contact_json",
            vec!["send", "dave", "hi", "--json", "--network", &net],
        ),
    ];
    for (name, args) in cases {
        let r = env.p(&args);
        insta::assert_snapshot!(name, r.golden(&[(&root, "[TMP]")]));
    }
    let bad_file = env.path("bad.json");
    std::fs::write(&bad_file, "{\"registry_url\": 5}").unwrap();
    let r = env.p(&["send", "bob", "hi", "--network", bad_file.to_str().unwrap()]);
    insta::assert_snapshot!("send_network_malformed", r.golden(&[(&root, "[TMP]")]));
    assert_untouched(&env);
}

#[test]
fn send_while_the_network_is_down_queues_the_message() {
    let env = Env::new();
    env.restored();
    let net = env.dead_network();
    let r = env.p(&["send", BOB, "hello", "--json", "--network", &net]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let msg = r.json();
    assert_eq!(msg["status"], "queued");
    assert_eq!(msg["from"], PHRASE_ID);
    assert_eq!(msg["conversation"], BOB);
    assert_eq!(msg["text"], "hello");
    assert!(msg["timestamp"].as_u64().is_some() && msg["hash"].as_str().is_some());
    let outbox = env.p(&["outbox", "--json"]).json();
    let kinds: Vec<&str> = outbox
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["message", "sync copy"]);
    assert_eq!(outbox[0]["to"], BOB);
    assert_eq!(outbox[0]["text"], "hello");
    let history = env.p(&["history", BOB, "--json"]).json();
    assert_eq!(history.as_array().unwrap().len(), 1);
    assert_eq!(history[0]["hash"], msg["hash"]);
    let recv = env.p(&["receive", "--network", &net]);
    assert_eq!(recv.code, 1);
    assert!(
        recv.stderr
            .starts_with("umbra: the network cannot be reached: "),
        "{}",
        recv.stderr
    );
    assert_eq!(recv.stderr.lines().count(), 1);
}

#[test]
fn a_profile_used_on_one_network_is_refused_on_another() {
    let env = Env::new();
    env.restored();
    // Another registry key is another network: nothing of this profile may go there.
    let written = env.network(
        "http://127.0.0.1:9",
        &umbra_crypto::Ed25519PublicKey::from_bytes([9; 32]),
    );
    let other = env.path("other-network.json");
    std::fs::rename(&written, &other).unwrap();
    let other = other.display().to_string();
    let first = env.dead_network();
    let r = env.p(&["send", BOB, "hello", "--network", &first]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = env.p(&["send", BOB, "second", "--network", &other]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("this profile belongs to another network")
            && r.stderr.contains("--profile DIR"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    let history = env.p(&["history", BOB, "--json"]).json();
    assert_eq!(history.as_array().unwrap().len(), 1, "nothing was added");
    // The first network's file still opens it.
    let r = env.p(&["send", BOB, "third", "--network", &first]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// A registry stand-in on 127.0.0.1 answering every request with `body`.
fn serve(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line == "\r\n" {
                    break;
                }
                line.clear();
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{addr}")
}

#[test]
fn a_registry_key_that_does_not_verify_is_refused() {
    let env = Env::new();
    let root = env.root();
    env.restored();
    env.p(&["contact", "add", BOB, "bob"]);
    let signer = Identity::generate(&mut SeededRandom::new(1));
    let pinned = Identity::generate(&mut SeededRandom::new(2));
    let list = SignedNodeList::sign(NodeList::new(1, 0, Vec::new()), &signer);
    let url = serve(serde_json::to_vec(&list).unwrap());
    let net = env.network(&url, &pinned.ed25519_public());
    let r = env.p(&["send", "bob", "hi", "--network", &net]);
    insta::assert_snapshot!(
        "send_registry_key_mismatch",
        r.golden(&[(&root, "[TMP]"), (&url, "[REGISTRY]")])
    );
    let r = env.p(&["receive", "--json", "--network", &net]);
    insta::assert_snapshot!(
        "receive_registry_key_mismatch_json",
        r.golden(&[(&root, "[TMP]"), (&url, "[REGISTRY]")])
    );
    assert_untouched(&env);
}

#[test]
fn the_profile_keeps_its_guards_and_says_when_it_cannot() {
    let env = Env::new();
    let root = env.root();
    env.restored();
    // The transport's state directory is made with the profile, owner-only.
    let state = env.path("p").join("network");
    assert!(state.is_dir());
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    let net = env.dead_network();
    // A corrupt guard file is replaced, and the user is told.
    let file = state.join("onion-guards.json");
    std::fs::write(&file, "{not json").unwrap();
    let r = env.p(&["paths", "--network", &net]);
    assert_eq!(r.code, 1);
    let first = r.stderr.lines().next().unwrap().replace(&root, "[TMP]");
    assert_eq!(
        first,
        "umbra: warning: the guard file [TMP]/p/network/onion-guards.json could not be used (key must be a string at line 1 column 2); it was replaced, and new entry nodes will be chosen"
    );
    let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved["guards"], serde_json::json!([]));
    // Then it is used silently.
    let r = env.p(&["paths", "--network", &net]);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("umbra: the network cannot be reached: "),
        "{}",
        r.stderr
    );
    // A state directory that cannot be made is an error that says what to do, before any
    // message is queued.
    std::fs::remove_dir_all(&state).unwrap();
    std::fs::write(&state, "").unwrap();
    let r = env.p(&["send", BOB, "hi", "--network", &net]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr.replace(&root, "[TMP]").starts_with(
            "umbra: cannot keep the onion guards, so every run would use new entry nodes (make [TMP]/p/network a directory you can write): creating the network state directory [TMP]/p/network"
        ),
        "{}",
        r.stderr
    );
    let r = env.p(&["paths", "--json", "--network", &net]);
    assert_eq!(r.code, 1);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("cannot keep the onion guards"),
        "{}",
        r.stdout
    );
    assert_untouched(&env);
}

// ----- groups: what works offline, and one-line errors ---------------------------------------

/// The `03…` id of a group nobody created (a valid Ed25519 key).
fn unknown_group() -> String {
    let key = Identity::from_seed(&[9; 32]).ed25519_public();
    format!("03{}", hex(key.as_bytes()))
}

/// One line on stderr, exit code 1, nothing on stdout.
fn assert_one_line_error(r: &Run, contains: &str) {
    assert_eq!(r.code, 1, "stdout {:?} stderr {:?}", r.stdout, r.stderr);
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr.lines().count(), 1, "{:?}", r.stderr);
    assert!(r.stderr.contains(contains), "{:?}", r.stderr);
}

#[test]
fn group_commands_refuse_bad_input_in_one_line_and_change_nothing() {
    let env = Env::new();
    env.restored();
    env.p(&["contact", "add", BOB, "bob"]);
    let group = unknown_group();

    assert_eq!(
        env.p(&["group", "list", "--json"]).json(),
        serde_json::json!([])
    );
    let listed = env.p(&["group", "list"]);
    assert!(listed.stdout.contains("no groups"), "{}", listed.stdout);

    assert_one_line_error(
        &env.p(&["group", "info", BOB]),
        "a group id is 66 hex characters starting with 03",
    );
    assert_one_line_error(&env.p(&["group", "info", &group]), "unknown group");
    assert_one_line_error(&env.p(&["history", &group]), "unknown group");
    assert_one_line_error(&env.p(&["decline", &group]), "unknown group");
    let json = env.p(&["group", "info", &group, "--json"]);
    assert_eq!(json.code, 1);
    assert!(
        json.json()["error"]
            .as_str()
            .unwrap()
            .contains("unknown group")
    );

    // Creating needs the network: refused before anything is written.
    let net = env.dead_network();
    let create = env.p(&["group", "create", "Hikers", "bob", "--network", &net]);
    assert_eq!(create.code, 1, "{}", create.stdout);
    assert_eq!(create.stderr.lines().count(), 1, "{:?}", create.stderr);
    let unknown_member = env.p(&["group", "create", "Hikers", "nobody", "--network", &net]);
    assert_one_line_error(&unknown_member, "nobody");
    assert_eq!(
        env.p(&["group", "list", "--json"]).json(),
        serde_json::json!([])
    );
    assert_untouched(&env);
}

#[test]
fn chat_with_an_unknown_group_is_refused_in_one_line() {
    let env = Env::new();
    env.restored();
    let net = env.dead_network();
    let r = env.p(&["chat", &unknown_group(), "--network", &net]);
    assert_one_line_error(&r, "unknown group");
}
