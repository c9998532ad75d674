#![doc = include_str!("../README.md")]

mod ffi;

pub use ffi::*;
