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
        let runtime = inner.runtime.clone();
        let work = async move {
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
        };
        match runtime {
            Some(runtime) => drop(runtime.spawn(work)),
            None => drop(tokio::spawn(work)),
        }
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

impl AccountService {
    /// At shutdown, once no request comes in any more: waits until the work deferred past
    /// the answers (the mails it queues among it) has finished, for at most `timeout`;
    /// `false` when some was still running then.
    pub async fn settle(&self, timeout: std::time::Duration) -> bool {
        let all = u32::try_from(MAX_DEFERRED).unwrap_or(u32::MAX);
        let semaphore = self.inner.deferred.clone();
        matches!(
            tokio::time::timeout(timeout, semaphore.acquire_many_owned(all)).await,
            Ok(Ok(_))
        )
    }
}
