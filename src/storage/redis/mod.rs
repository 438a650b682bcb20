//! Redis adapters.

mod denylist;

pub use denylist::{RedisDenylist, RedisSettings};
