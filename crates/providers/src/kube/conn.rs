//! [`Conn`]: a connection to one allowed kube context, built from the platform's kubeconfig.
//! The faults, watches, switches and snapshots are `impl Conn` blocks in their own files.

use std::time::Duration;

use ::kube::config::{KubeConfigOptions, Kubeconfig};

use super::{Backoff, Call, KubeError, check_allowed, kubeconfig_path};
use firedrill_core::clock::Clock;
use firedrill_platform::Platform;

/// A connection to one allowed kube context: its client, and the clock and backoff its calls
/// retry with. Cheap to clone.
#[derive(Clone)]
pub struct Conn {
    pub(super) client: ::kube::Client,
    pub(super) context: String,
    pub(super) clock: Clock,
    pub(super) backoff: Backoff,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// Connects to `context` (allowed contexts only). Client-side retries are off, so a refusal
    /// (a PodDisruptionBudget's 429) surfaces at once; transport errors are retried by
    /// [`Backoff`] in platform time (the clock runs at the platform's time scale).
    ///
    /// # Errors
    ///
    /// [`KubeError::NotAllowed`], [`KubeError::Kubeconfig`] or [`KubeError::Context`].
    pub async fn connect(platform: &Platform, context: &str) -> Result<Self, KubeError> {
        check_allowed(platform, context)?;
        let clock = Clock::scaled(platform.time_scale).unwrap_or_else(|_| Clock::real());
        Self::open(&kubeconfig_path(platform), context, clock).await
    }

    /// Connects to `context` of the kubeconfig at `path`, unchecked against any allow-list:
    /// for [`Conn::connect`], and for reading an estate before it has a platform file
    /// ([`super::discover`]).
    pub(super) async fn open(
        path: &std::path::Path,
        context: &str,
        clock: Clock,
    ) -> Result<Self, KubeError> {
        let path = path.to_path_buf();
        let kubeconfig = Kubeconfig::read_from(&path).map_err(|e| KubeError::Kubeconfig {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let context_error = |message: String| KubeError::Context {
            context: context.to_owned(),
            path: path.clone(),
            message,
        };
        if !kubeconfig.contexts.iter().any(|c| c.name == context) {
            return Err(context_error(
                "no such context in the kubeconfig".to_owned(),
            ));
        }
        let options = KubeConfigOptions {
            context: Some(context.to_owned()),
            ..Default::default()
        };
        let mut config = ::kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| context_error(e.to_string()))?;
        config.default_retry = false;
        config.connect_timeout = Some(Duration::from_secs(10));
        config.read_timeout = Some(Duration::from_secs(30));
        let client = ::kube::Client::try_from(config).map_err(|e| context_error(e.to_string()))?;
        Ok(Self {
            client,
            context: context.to_owned(),
            clock,
            backoff: Backoff::default(),
        })
    }

    /// The same connection, retrying on `clock` (the run's clock, so backoff is platform time).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The same connection with another retry policy.
    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The kube context.
    #[must_use]
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The kube-rs client.
    #[must_use]
    pub fn client(&self) -> &::kube::Client {
        &self.client
    }

    /// The clock backoff sleeps on.
    #[must_use]
    pub fn clock(&self) -> Clock {
        self.clock
    }

    pub(super) fn call<'a>(
        &'a self,
        namespace: &'a str,
        kind: &'a str,
        object: &'a str,
        verb: &'a str,
    ) -> Call<'a> {
        Call {
            context: &self.context,
            namespace,
            kind,
            object,
            verb,
        }
    }
}
