//! Account work run after a request's answer, in bounded places.

use std::sync::Arc;

use tracing::error;

use super::{AccountError, AccountService, Inner};

/// Account work still to do after a request's answer (at most `MAX_DEFERRED` at once).
pub(super) const MAX_DEFERRED: usize = 512;

/// A reserved place for deferred work.
pub(super) struct Deferred {
    inner: Arc<Inner>,
    permit: tokio::sync::OwnedSemaphorePermit,
}

impl Deferred {
    pub(super) fn run<F, Fut>(self, what: &'static str, f: F)
    where
        F: FnOnce(Arc<Inner>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), AccountError>> + Send + 'static,
    {
        let Deferred { inner, permit } = self;
        tokio::spawn(async move {
            match f(inner).await {
                Ok(()) => {}
                // The cause chain, once (no backtrace: a flood of failures stays readable).
                Err(AccountError::Unexpected(cause)) => {
                    error!(
                        error = format!("{cause:#}"),
                        what, "account background step failed"
                    );
                }
                Err(e) => error!(error = %e, what, "account background step failed"),
            }
            drop(permit);
        });
    }
}

impl AccountService {
    /// A place for the account-dependent part of a request, run after its answer (see the
    /// module docs). Places are bounded (`MAX_DEFERRED`): past them the request is refused
    /// with 503 before it changed anything, whatever the address, so that a flood can
    /// neither grow memory without bound nor reveal anything.
    pub(super) fn reserve(&self) -> Result<Deferred, AccountError> {
        let permit = self
            .inner
            .deferred
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                AccountError::Unavailable("too many account requests in progress; retry".into())
            })?;
        Ok(Deferred {
            inner: self.inner.clone(),
            permit,
        })
    }
}
