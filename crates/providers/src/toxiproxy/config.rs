//! What the Toxiproxy provider reads from the platform file, resolved: the client of the
//! platform's server (its URL may come from `${ENV}`, so it is resolved at use, never stored in
//! the ledger) and the definition of a link.

use super::{Error, ToxiproxyClient};
use firedrill_platform::{Link, Platform};

/// The client of the platform's Toxiproxy, asked for on behalf of `link` (`*` for the server
/// itself), which the error names.
///
/// # Errors
///
/// [`Error::NotConfigured`] when the platform has no `toxiproxy` section; [`Error::InvalidUrl`].
pub fn client_for(platform: &Platform, link: &str) -> Result<ToxiproxyClient, Error> {
    let toxiproxy = platform
        .toxiproxy
        .as_ref()
        .ok_or_else(|| Error::NotConfigured {
            link: link.to_owned(),
        })?;
    ToxiproxyClient::new(&toxiproxy.url)
}

/// The client and definition of link `name`, when the platform has both.
#[must_use]
pub fn link<'p>(platform: &'p Platform, name: &str) -> Option<(ToxiproxyClient, &'p Link)> {
    let link = platform.toxiproxy.as_ref()?.links.get(name)?;
    Some((client_for(platform, name).ok()?, link))
}
