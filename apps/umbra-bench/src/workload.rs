//! The requests: many Session accounts, 500-byte messages, signed `store` requests to private
//! namespaces (optionally a share of unsigned stores to the public inbox namespace 0), and
//! authenticated `retrieve` requests that page with `last_hash` as a polling client does.
//!
//! Everything is generated (and signed) **before** a timed phase, in parallel on all cores
//! while the node is idle, so that the load generator's own Ed25519 signing does not take CPU
//! from the node during the measurement. Bodies are complete `{"method","params"}` JSON texts.
//!
//! Signature times: the node accepts a signature time within ±60 s of its clock
//! (`storage-rpc.md` §3.2). Pre-signed requests use `now + SIG_LEAD_MS` (plus a per-account
//! sequence number so that no two requests carry the same signature), which keeps them
//! valid from 30 s before to 90 s after signing — a client whose clock is 30 s fast does the
//! same. Message `timestamp`s are the signing time (the node only requires them to be at most
//! 10 s in the future). A round larger than the node can take in ~90 s gets 406 replies,
//! which the report counts as errors; `--round` bounds it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use umbra_crypto::hash::message_hash;
use umbra_crypto::{AccountId, Identity};

/// How far ahead of the signing time the signature times are set (ms).
const SIG_LEAD_MS: i64 = 30_000;
/// TTL of the stored messages: 7 days (allowed in every namespace).
const TTL_MS: i64 = 7 * 24 * 3600 * 1000;
/// Private namespaces the signed stores go to (user-config namespaces in Session).
const PRIVATE_NS: [i16; 4] = [2, 3, 4, 5];

/// A benchmark account.
struct Account {
    id: Identity,
    owner: AccountId,
    pubkey_hex: String,
    ed25519_hex: String,
}

impl Account {
    fn new(index: usize) -> Account {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(index as u64).to_le_bytes());
        seed[8..24].copy_from_slice(b"umbra-bench-acct");
        let id = Identity::from_seed(&seed);
        let owner = AccountId::from(id.session_id());
        Account {
            owner,
            pubkey_hex: hex::encode(owner),
            ed25519_hex: hex::encode(id.ed25519_public()),
            id,
        }
    }
}

/// One store of the plan, before it is rendered.
struct PlannedStore {
    account: usize,
    ns: i16,
    seq: u64,
    data: Vec<u8>,
}

/// Generates requests and remembers what was stored (for retrieves and the final check).
pub(crate) struct Workload {
    accounts: Vec<Account>,
    data_bytes: usize,
    inbox_percent: u8,
    retrieve_tail: usize,
    /// Stores generated so far (over all rounds).
    generated: u64,
    /// Hashes stored per (account, namespace), in the order they were generated.
    stored: BTreeMap<(usize, i16), Vec<String>>,
    /// The account of the propagation probes (no timed request uses it).
    probe: Account,
    /// Probes rendered so far, and the last one's hash.
    probes: u64,
    probe_last: Option<String>,
}

/// One propagation probe: a store and a retrieve that lists the probe account's messages after
/// the previous probe (so that a reply stays one message long).
pub(crate) struct Probe {
    pub(crate) store: Bytes,
    pub(crate) hash: String,
    pub(crate) retrieve: Bytes,
}

/// A round of pre-rendered request bodies.
pub(crate) struct Round {
    /// `{"method","params"}` bodies.
    pub(crate) bodies: Vec<Bytes>,
    /// For retrieves: how many messages the replies should carry in total (`None` for stores).
    pub(crate) expected_messages: Option<u64>,
}

/// A signed request that lists everything one (account, namespace) holds, with the hashes it
/// must return.
pub(crate) struct Check {
    pub(crate) body: Bytes,
    pub(crate) expected: Vec<String>,
}

fn ns_str(ns: i16) -> String {
    if ns == 0 {
        String::new()
    } else {
        ns.to_string()
    }
}

/// SplitMix64: a small deterministic generator for message contents.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
) -> anyhow::Result<Vec<R>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .max(1);
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            out.extend(
                h.join()
                    .map_err(|_| anyhow::anyhow!("a request-generation thread panicked"))?,
            );
        }
        Ok(out)
    })
}

impl Workload {
    /// Creates `accounts` deterministic accounts (in parallel).
    pub(crate) fn new(
        accounts: usize,
        data_bytes: usize,
        inbox_percent: u8,
        retrieve_tail: usize,
    ) -> anyhow::Result<Workload> {
        let indices: Vec<usize> = (0..accounts).collect();
        Ok(Workload {
            accounts: parallel_map(&indices, |&i| Account::new(i))?,
            data_bytes,
            inbox_percent,
            retrieve_tail,
            generated: 0,
            stored: BTreeMap::new(),
            probe: Account::new(usize::MAX),
            probes: 0,
            probe_last: None,
        })
    }

    /// The next propagation probe, signed for `now_ms` (to the private namespace 2 of the
    /// probe account).
    pub(crate) fn probe(&mut self, now_ms: i64) -> Probe {
        const NS: i16 = 2;
        let mut rng = self.probes ^ 0x0050_0BE5;
        let mut data = Vec::with_capacity(self.data_bytes + 8);
        while data.len() < self.data_bytes {
            data.extend_from_slice(&splitmix(&mut rng).to_le_bytes());
        }
        data.truncate(self.data_bytes);
        let acct = &self.probe;
        let hash = message_hash(&acct.owner, i32::from(NS), &data).to_string();
        // Distinct signature times: two probes within a millisecond must not sign alike.
        let sig_ts = now_ms + self.probes as i64;
        let sig = acct.id.sign(format!("store{NS}{sig_ts}").as_bytes());
        let store = format!(
            r#"{{"method":"store","params":{{"pubkey":"{}","namespace":{NS},"timestamp":{now_ms},"ttl":{TTL_MS},"data":"{}","pubkey_ed25519":"{}","sig_timestamp":{sig_ts},"signature":"{}"}}}}"#,
            acct.pubkey_hex,
            STANDARD.encode(&data),
            acct.ed25519_hex,
            STANDARD.encode(sig),
        );
        let retrieve = Self::render_retrieve(acct, NS, now_ms, self.probe_last.as_deref());
        self.probes += 1;
        self.probe_last = Some(hash.clone());
        Probe {
            store: Bytes::from(store),
            hash,
            retrieve,
        }
    }

    /// Messages generated so far.
    pub(crate) fn generated(&self) -> u64 {
        self.generated
    }

    /// Renders the next `n` stores, signed for a node clock near `now_ms`.
    pub(crate) fn store_round(&mut self, n: usize, now_ms: i64) -> anyhow::Result<Round> {
        let a = self.accounts.len() as u64;
        let plan: Vec<PlannedStore> = (0..n as u64)
            .map(|k| {
                let g = self.generated + k;
                let account = (g % a) as usize;
                let seq = g / a;
                let mut rng = g ^ 0x005E_ED0F_B0A7;
                let inbox = (splitmix(&mut rng) % 100) < u64::from(self.inbox_percent);
                let ns = if inbox {
                    0
                } else {
                    PRIVATE_NS[(seq % PRIVATE_NS.len() as u64) as usize]
                };
                let mut data = Vec::with_capacity(self.data_bytes + 8);
                while data.len() < self.data_bytes {
                    data.extend_from_slice(&splitmix(&mut rng).to_le_bytes());
                }
                data.truncate(self.data_bytes);
                PlannedStore {
                    account,
                    ns,
                    seq,
                    data,
                }
            })
            .collect();
        self.generated += n as u64;

        let accounts = &self.accounts;
        let rendered = parallel_map(&plan, |p| {
            let acct = &accounts[p.account];
            let hash = message_hash(&acct.owner, i32::from(p.ns), &p.data).to_string();
            let mut body = String::with_capacity(self.data_bytes * 4 / 3 + 400);
            let _ = write!(
                body,
                r#"{{"method":"store","params":{{"pubkey":"{}","namespace":{},"timestamp":{},"ttl":{},"data":"{}""#,
                acct.pubkey_hex,
                p.ns,
                now_ms,
                TTL_MS,
                STANDARD.encode(&p.data),
            );
            if p.ns != 0 {
                let sig_ts = now_ms + SIG_LEAD_MS + p.seq as i64;
                let sig = acct
                    .id
                    .sign(format!("store{}{}", ns_str(p.ns), sig_ts).as_bytes());
                let _ = write!(
                    body,
                    r#","pubkey_ed25519":"{}","sig_timestamp":{},"signature":"{}""#,
                    acct.ed25519_hex,
                    sig_ts,
                    STANDARD.encode(sig),
                );
            }
            body.push_str("}}");
            (Bytes::from(body), hash)
        })?;
        let mut bodies = Vec::with_capacity(n);
        for (p, (body, hash)) in plan.iter().zip(rendered) {
            self.stored.entry((p.account, p.ns)).or_default().push(hash);
            bodies.push(body);
        }
        Ok(Round {
            bodies,
            expected_messages: None,
        })
    }

    fn retrieve_body(&self, account: usize, ns: i16, ts: i64, last_hash: Option<&str>) -> Bytes {
        Self::render_retrieve(&self.accounts[account], ns, ts, last_hash)
    }

    /// A signed `retrieve` of `acct`'s namespace `ns` (after `last_hash` if given).
    fn render_retrieve(acct: &Account, ns: i16, ts: i64, last_hash: Option<&str>) -> Bytes {
        let sig = acct
            .id
            .sign(format!("retrieve{}{}", ns_str(ns), ts).as_bytes());
        let mut body = String::with_capacity(400);
        let _ = write!(
            body,
            r#"{{"method":"retrieve","params":{{"pubkey":"{}","pubkey_ed25519":"{}","namespace":{},"timestamp":{},"signature":"{}""#,
            acct.pubkey_hex,
            acct.ed25519_hex,
            ns,
            ts,
            STANDARD.encode(sig),
        );
        if let Some(h) = last_hash {
            let _ = write!(body, r#","last_hash":"{h}""#);
        }
        body.push_str("}}");
        Bytes::from(body)
    }

    /// Renders `n` retrieves over the stored (account, namespace) pairs in turn, each with
    /// `last_hash` set `retrieve_tail` messages before the newest, signed for `now_ms`.
    pub(crate) fn retrieve_round(&self, n: usize, now_ms: i64) -> anyhow::Result<Round> {
        let keys: Vec<(&(usize, i16), &Vec<String>)> = self.stored.iter().collect();
        if keys.is_empty() {
            return Ok(Round {
                bodies: Vec::new(),
                expected_messages: Some(0),
            });
        }
        let tail = self.retrieve_tail;
        let items: Vec<(usize, i16, i64, Option<&str>, u64)> = (0..n)
            .map(|i| {
                let ((account, ns), hashes) = keys[i % keys.len()];
                let rep = (i / keys.len()) as i64;
                let (last, expect) = if hashes.len() > tail {
                    (Some(hashes[hashes.len() - 1 - tail].as_str()), tail)
                } else {
                    (None, hashes.len())
                };
                (
                    *account,
                    *ns,
                    now_ms + SIG_LEAD_MS + rep,
                    last,
                    expect as u64,
                )
            })
            .collect();
        let expected = items.iter().map(|it| it.4).sum();
        let bodies = parallel_map(&items, |&(account, ns, ts, last, _)| {
            self.retrieve_body(account, ns, ts, last)
        })?;
        Ok(Round {
            bodies,
            expected_messages: Some(expected),
        })
    }

    /// Up to `n` checks spread over the stored (account, namespace) pairs: a retrieve of
    /// everything and the hashes it must return.
    pub(crate) fn checks(&self, n: usize, now_ms: i64) -> Vec<Check> {
        let len = self.stored.len();
        let step = (len / n.max(1)).max(1);
        self.stored
            .iter()
            .step_by(step)
            .take(n)
            .map(|((account, ns), hashes)| Check {
                body: self.retrieve_body(*account, *ns, now_ms, None),
                expected: hashes.clone(),
            })
            .collect()
    }
}
