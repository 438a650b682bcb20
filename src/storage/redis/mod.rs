//! Redis adapters.

mod denylist;
mod rate_limit;
mod sessions;

pub use denylist::{RedisDenylist, RedisSettings};
pub use rate_limit::RedisRateLimitStore;
pub use sessions::RedisSessionStore;

/// A connection to `url` with the configured timeouts. It does not connect: the connection
/// is made on first use and re-made after failures (a Redis slower than the timeout counts
/// as down).
fn connection(
    url: &str,
    settings: &RedisSettings,
) -> Result<redis::aio::ConnectionManager, redis::RedisError> {
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(settings.timeout))
        .set_response_timeout(Some(settings.timeout))
        .set_number_of_retries(1)
        .set_max_delay(std::time::Duration::from_millis(500));
    redis::Client::open(url)?.get_connection_manager_lazy(config)
}
