//! Redis adapters.

mod denylist;
mod rate_limit;

pub use denylist::{RedisDenylist, RedisSettings};
pub use rate_limit::RedisRateLimitStore;
