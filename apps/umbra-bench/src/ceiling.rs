//! The machine's own ceiling, measured in the same run as the load: how many Ed25519
//! signatures one core verifies per second (`umbra_crypto::sign::verify`, the function the
//! node calls for every signed request), and what the whole per-store crypto of the node costs
//! on one core (`pubkey_ed25519` → X25519 conversion, verification, and the node's own
//! signature over the message hash that goes into the reply).

use std::hint::black_box;
use std::time::Duration;
use umbra_clock::{Clock as _, SystemClock};

use anyhow::{Context as _, bail};
use umbra_crypto::keys::ed25519_pk_to_x25519;
use umbra_crypto::sign::verify;
use umbra_crypto::{Ed25519PublicKey, Identity, Signature};

use crate::sys::thread_cpu_seconds;

/// Distinct (key, message, signature) triples cycled through by the loops.
const SAMPLES: usize = 256;

/// One-core crypto rates. "Per second" is per wall-clock second of the measuring thread (what
/// one core delivered while the machine was as busy as it was); "per CPU second" divides by
/// the thread's own CPU time instead, which is what one core delivers when nothing else
/// competes for it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ceiling {
    /// Ed25519 verifications per wall-clock second on one thread.
    pub(crate) verify_per_sec: f64,
    /// Ed25519 verifications per CPU second of that thread.
    pub(crate) verify_per_cpu_sec: f64,
    /// Per-store crypto (key conversion + verification + node signature) per wall-clock second.
    pub(crate) store_crypto_per_sec: f64,
    /// The same per CPU second.
    pub(crate) store_crypto_per_cpu_sec: f64,
    /// CPU µs of one `pubkey_ed25519` → X25519 conversion (done for every `05` request).
    pub(crate) convert_us: f64,
    /// CPU µs of one Ed25519 signature by the node (the `signature` in each store reply).
    pub(crate) sign_us: f64,
}

struct Sample {
    key: Ed25519PublicKey,
    msg: Vec<u8>,
    sig: Signature,
}

fn samples() -> Vec<Sample> {
    (0..SAMPLES)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            seed[8..16].copy_from_slice(b"ceiling!");
            let id = Identity::from_seed(&seed);
            let msg = format!("store3{}", 1_700_000_000_000u64 + i as u64).into_bytes();
            let sig = id.sign(&msg);
            Sample {
                key: id.ed25519_public(),
                msg,
                sig,
            }
        })
        .collect()
}

/// Runs `op` over the samples for about `secs` seconds on this thread; returns ops per
/// wall-clock second and ops per CPU second of this thread.
fn rate(
    secs: f64,
    samples: &[Sample],
    mut op: impl FnMut(&Sample) -> bool,
) -> anyhow::Result<(f64, f64)> {
    let budget = Duration::from_secs_f64(secs.max(0.01));
    let cpu_start = thread_cpu_seconds();
    let start = SystemClock.instant();
    let mut done: u64 = 0;
    loop {
        for s in samples {
            if !op(s) {
                bail!("a known-good signature failed to verify");
            }
        }
        done += samples.len() as u64;
        let elapsed = SystemClock.since(start);
        if elapsed >= budget {
            let wall = elapsed.as_secs_f64();
            // CPU time has 10 ms resolution; without it (no /proc) assume a whole core.
            let cpu = match (cpu_start, thread_cpu_seconds()) {
                (Some(a), Some(b)) if b > a => b - a,
                _ => wall,
            };
            return Ok((done as f64 / wall, done as f64 / cpu));
        }
    }
}

/// Measures both rates on one thread (blocking; call from `spawn_blocking`). Each loop runs
/// for `secs` seconds.
pub(crate) fn measure(secs: f64) -> anyhow::Result<Ceiling> {
    let samples = samples();
    let node = Identity::from_seed(&[7u8; 32]);
    let (verify_per_sec, verify_per_cpu_sec) = rate(secs, &samples, |s| {
        verify(black_box(&s.key), black_box(&s.msg), black_box(&s.sig)).is_ok()
    })
    .context("verification loop")?;
    let (store_crypto_per_sec, store_crypto_per_cpu_sec) = rate(secs, &samples, |s| {
        let converted = ed25519_pk_to_x25519(black_box(&s.key)).is_ok();
        let ok = verify(black_box(&s.key), black_box(&s.msg), black_box(&s.sig)).is_ok();
        let reply_sig = node.sign(black_box(&s.sig.as_bytes()[..43]));
        black_box(reply_sig);
        converted && ok
    })
    .context("per-store crypto loop")?;
    let part = (secs / 2.0).max(0.05);
    let (_, convert_per_cpu) = rate(part, &samples, |s| {
        ed25519_pk_to_x25519(black_box(&s.key)).is_ok()
    })
    .context("key conversion loop")?;
    let (_, sign_per_cpu) = rate(part, &samples, |s| {
        black_box(node.sign(black_box(&s.sig.as_bytes()[..43])));
        true
    })
    .context("signing loop")?;
    Ok(Ceiling {
        verify_per_sec,
        verify_per_cpu_sec,
        store_crypto_per_sec,
        store_crypto_per_cpu_sec,
        convert_us: 1e6 / convert_per_cpu.max(1.0),
        sign_us: 1e6 / sign_per_cpu.max(1.0),
    })
}
