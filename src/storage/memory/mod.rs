//! In-process adapters.

mod denylist;
mod expiring;
mod rate_limit;

pub use denylist::EmbeddedDenylist;
pub use rate_limit::MemoryRateLimitStore;
