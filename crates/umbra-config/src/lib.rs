#![doc = include_str!("../README.md")]

pub mod bt;
pub mod crypt;
pub mod data;
pub mod diff;
mod error;
pub mod message;
mod state;

pub use data::{Dict, Scalar, Set, Value};
pub use error::ConfigError;
pub use message::{ConfigHash, ConfigMessage, MergeOutcome, Parsed};
pub use state::{ConfigState, MergeReport, Push, SwarmHash};
