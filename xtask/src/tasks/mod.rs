//! One file per task.

pub(crate) mod bench;
pub(crate) mod build;
pub(crate) mod ci;
pub(crate) mod demo;
pub(crate) mod fuzz;
pub(crate) mod integration;
pub(crate) mod test;
