//! What preflight asks of Toxiproxy: the server answers `GET /version`, and every link's proxy
//! exists or may be created; and the setup that creates those, after preflight passed.

use super::{Error, client_for, link};
use crate::preflight::split_hint;
use firedrill_core::diagnostic::{Problem, Problems};
use firedrill_platform::Platform;

/// Preflight for [`Need::Toxiproxy`](crate::preflight::Need::Toxiproxy): a problem at
/// `toxiproxy.url` unless the server answers with its version. Returns whether it did, so the
/// links are asked about only then (one problem, not one per link).
pub async fn preflight_server(platform: &Platform, problems: &mut Problems) -> bool {
    let version = match client_for(platform, "*") {
        Ok(client) => client.version().await,
        Err(e) => Err(e),
    };
    let Err(e) = version else {
        return true;
    };
    let text = e.to_string();
    let (message, hint) = split_hint(&text);
    problems.push(
        Problem::at(platform.locate("toxiproxy.url"), message).hint(format!(
            "{}; nothing was injected",
            hint.unwrap_or("start Toxiproxy or fix toxiproxy.url")
        )),
    );
    false
}

/// Preflight for [`Need::ToxiproxyLink`](crate::preflight::Need::ToxiproxyLink): a problem at
/// `toxiproxy.links.<name>.proxy` unless its proxy exists, or the link may create it.
pub async fn preflight_link(name: &str, platform: &Platform, problems: &mut Problems) {
    let Some((client, link)) = link(platform, name) else {
        return;
    };
    match client.proxy(&link.proxy).await {
        Ok(_) => {}
        Err(Error::ProxyNotFound { .. }) if link.create => {}
        Err(e) => {
            let text = e.to_string();
            let (message, _) = split_hint(&text);
            problems.push(
                Problem::at(
                    platform.locate(&format!("toxiproxy.links.{name}.proxy")),
                    format!("link \"{name}\": {message}"),
                )
                .hint(
                    "create the proxy, or give the link listen, upstream and `create: true`; nothing was injected",
                ),
            );
        }
    }
}

/// Setup of link `name` before the first scenario, after preflight passed: creates its proxy
/// when the link says `create: true` and it is missing. A created proxy stays (it is the
/// estate's plumbing, not a fault); returns its name.
pub async fn setup_link(
    name: &str,
    platform: &Platform,
    problems: &mut Problems,
) -> Option<String> {
    let (client, link) = link(platform, name)?;
    let (true, Some(listen), Some(upstream)) = (link.create, &link.listen, &link.upstream) else {
        return None;
    };
    let outcome = match client.proxy(&link.proxy).await {
        Ok(_) => return None,
        Err(Error::ProxyNotFound { .. }) => {
            client.create_proxy(&link.proxy, listen, upstream).await
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(_) => Some(link.proxy.clone()),
        // Someone created it meanwhile: it is there, which is all setup wants.
        Err(Error::ProxyAlreadyExists { .. }) => None,
        Err(e) => {
            problems.push(
                Problem::at(
                    platform.locate(&format!("toxiproxy.links.{name}")),
                    format!("link \"{name}\": cannot create its proxy: {e}"),
                )
                .hint("check listen and upstream; nothing was injected"),
            );
            None
        }
    }
}
