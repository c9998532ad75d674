#![doc = include_str!("../README.md")]

pub mod bt;
pub mod crypt;
pub mod data;
pub mod diff;
mod error;
pub mod message;

pub use data::{Dict, Scalar, Set, Value};
pub use error::ConfigError;
pub use message::{ConfigHash, ConfigMessage, MergeOutcome, Parsed};
