//! `cargo xtask integration`: the scenarios that run a devnet of real processes (registry,
//! nodes, CLI clients) on loopback and inject faults. Each scenario is a test in one of the
//! scenario binaries below; nextest runs each in its own process, one at a time (the `devnet`
//! test group), prints one line per scenario and a summary, and the scenarios tear their
//! processes down on failure too.

/// The test binaries (of the `umbra` package) whose tests are integration scenarios. Keep in
/// step with the `devnet` group in `.config/nextest.toml`.
pub(crate) const SCENARIO_BINARIES: &[&str] = &[
    "devnet",
    "devnet_onion",
    "devnet_guards",
    "client_e2e",
    "client_faults",
];

/// Options of `cargo xtask integration`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// nextest profile from `.config/nextest.toml`.
    #[arg(long, default_value = "default")]
    profile: String,
    /// Scenario names (substrings of test names); all scenarios when none.
    scenarios: Vec<String>,
}

/// The nextest filter expression that selects every scenario.
pub(crate) fn filter() -> String {
    let names = SCENARIO_BINARIES.join("|");
    format!("package(umbra) & kind(test) & binary(/^({names})$/)")
}

pub(crate) fn run(a: &Args) -> anyhow::Result<()> {
    let filter = filter();
    super::test::nextest(&a.profile, &["-E", &filter], &a.scenarios)
}
