//! The admin-API limit: failed authentications per network (`check_admin`, then
//! `admin_succeeded` when the token was right).

use std::net::IpAddr;

use super::{key, Throttle, Throttled};
use crate::clock::UnixTime;
use crate::domain::client_network;
use crate::storage::RateWindow;

/// An admin-API request admitted by `check_admin`: counted against its network until its
/// token proves right (`admin_succeeded`).
#[must_use = "report a right token with admin_succeeded"]
#[derive(Debug)]
pub struct AdminAttempt {
    key: String,
    counted_at: Option<UnixTime>,
}

impl Throttle {
    /// Before an admin-API token is checked: counts the request against its network's
    /// allowance of failures (atomically, so parallel guesses cannot pass together), or
    /// refuses it once `admin_max_failures` have failed within `ip_window_secs`.
    pub async fn check_admin(&self, ip: IpAddr) -> Result<AdminAttempt, Throttled> {
        let key = key("ad", &[&client_network(ip)]);
        if !self.policy.enabled {
            return Ok(AdminAttempt {
                key,
                counted_at: None,
            });
        }
        let now = self.clock.now();
        self.admit_one(&key, self.ip_window(), self.policy.admin_max_failures, now)
            .await?;
        Ok(AdminAttempt {
            key,
            counted_at: Some(now),
        })
    }

    /// The admin token was right: the request's count is taken back.
    pub async fn admin_succeeded(&self, attempt: AdminAttempt) {
        if let Some(counted_at) = attempt.counted_at {
            let now = self.clock.now();
            let window = RateWindow {
                key: &attempt.key,
                window: self.ip_window(),
            };
            if let Err(e) = self.refund(window, counted_at, now).await {
                tracing::error!(error = %e, "throttle: an admin request could not be refunded");
            }
        }
    }
}
