#![doc = include_str!("../README.md")]

mod messenger;

pub use messenger::*;
