//! `cargo xtask bench [NAME]`: the benchmarks BENCHMARKS.md cites, each with the command it
//! gives there.

use crate::run::{cargo, run as exec};

/// One benchmark: its name and the cargo arguments that run it.
struct Bench {
    name: &'static str,
    about: &'static str,
    args: &'static [&'static str],
}

const BENCHES: &[Bench] = &[
    Bench {
        name: "crypto",
        about: "umbra-crypto primitives (divan)",
        args: &["bench", "--locked", "-p", "umbra-crypto"],
    },
    Bench {
        name: "peel",
        about: "peeling one onion layer vs one X25519 (divan)",
        args: &["bench", "--locked", "-p", "umbra-onion", "--bench", "peel"],
    },
    Bench {
        name: "onion",
        about: "3-hop onion retrieves through in-process nodes",
        args: &["bench", "--locked", "-p", "umbra-node", "--bench", "onion"],
    },
    Bench {
        name: "node",
        about: "signed stores and retrieves against one node over HTTPS (umbra-bench)",
        args: &[
            "run",
            "--release",
            "--locked",
            "-p",
            "umbra-bench",
            "--",
            "--json",
        ],
    },
    Bench {
        name: "store",
        about: "the node's message store alone",
        args: &[
            "run",
            "--release",
            "--locked",
            "-p",
            "umbra-store",
            "--example",
            "store_bench",
            "200000",
            "500",
        ],
    },
];

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Which benchmark (all when none): crypto, peel, onion, node, store.
    name: Option<String>,
}

pub(crate) fn run(a: &Args) -> anyhow::Result<()> {
    let chosen: Vec<&Bench> = match &a.name {
        None => BENCHES.iter().collect(),
        Some(n) => match BENCHES.iter().find(|b| b.name == n) {
            Some(b) => vec![b],
            None => {
                let names: Vec<String> = BENCHES
                    .iter()
                    .map(|b| format!("{} ({})", b.name, b.about))
                    .collect();
                anyhow::bail!(
                    "no benchmark named {n:?}; choose one of: {}",
                    names.join(", ")
                );
            }
        },
    };
    for b in chosen {
        eprintln!("xtask: benchmark {}: {}", b.name, b.about);
        exec(&mut cargo(b.args))?;
    }
    Ok(())
}
