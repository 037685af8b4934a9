//! What the http provider reads from the platform file: the probes are used as the platform
//! defines them; resolved here is only which one watches the traffic switch.

use firedrill_platform::{Platform, Probe};

/// The probe `traffic.probe` names, when the platform has a traffic switch and that probe.
#[must_use]
pub fn traffic_probe(platform: &Platform) -> Option<&Probe> {
    platform
        .traffic
        .as_ref()
        .and_then(|t| platform.probes.get(&t.probe))
}
