//! In-process adapters.

mod denylist;

pub use denylist::EmbeddedDenylist;
