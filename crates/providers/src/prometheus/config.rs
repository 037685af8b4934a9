//! The provider's configuration, as the platform file gives it, with its credentials read.

use std::time::Duration;

use firedrill_platform::{Platform, Secret};

use super::Error;

/// Where Prometheus is and how to authenticate; prints its credentials as `<redacted>`.
#[derive(Clone, Debug)]
pub struct Config {
    /// Its base URL, without a trailing `/` (validation refuses credentials in it).
    pub url: String,
    /// How to authenticate.
    pub auth: Auth,
    /// Per-request deadline, wall-clock time.
    pub timeout: Duration,
}

/// The credentials, read.
#[derive(Clone, Debug)]
pub enum Auth {
    /// None.
    None,
    /// A bearer token.
    Bearer(Secret),
    /// Basic auth.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: Secret,
    },
}

impl Config {
    /// The platform's Prometheus, its credentials read from the environment or their file.
    ///
    /// # Errors
    ///
    /// [`Error::NotConfigured`], or [`Error::Secret`] naming the variable or file.
    pub fn from_platform(platform: &Platform) -> Result<Self, Error> {
        let prometheus = platform.prometheus.as_ref().ok_or(Error::NotConfigured)?;
        let base = platform.base_dir();
        let auth = match &prometheus.auth {
            None => Auth::None,
            Some(auth) => match (&auth.bearer, &auth.basic) {
                (Some(token), _) => Auth::Bearer(token.resolve(&base)?),
                (None, Some(basic)) => Auth::Basic {
                    user: basic.user.clone(),
                    password: basic.password.resolve(&base)?,
                },
                (None, None) => Auth::None,
            },
        };
        Ok(Self {
            url: prometheus.url.trim_end_matches('/').to_owned(),
            auth,
            timeout: prometheus.timeout,
        })
    }

    /// Every form the credentials could come back in, for scrubbing answers.
    #[must_use]
    pub fn secrets(&self) -> Vec<String> {
        match &self.auth {
            Auth::None => Vec::new(),
            Auth::Bearer(token) => {
                firedrill_core::redact::credential_forms(None, Some(token.expose()))
            }
            Auth::Basic { user, password } => {
                firedrill_core::redact::credential_forms(Some((user, password.expose())), None)
            }
        }
    }
}
