#![doc = include_str!("../README.md")]

pub mod api;
mod error;
pub mod height;
mod hexser;
pub mod list;
pub mod proto;
pub mod view;

pub use error::NodeListError;
pub use height::chain_height;
pub use view::SwarmView;
