//! The consumers of a run's event stream, each independent of the others: what an SRE watching
//! the drill sees ([`console`]), firedrill's JSON drill report ([`json`]) and its HTML page
//! ([`html`]), and the Prometheus metrics ([`metrics`]: live `/metrics`, Pushgateway).

pub mod console;
pub mod html;
pub mod json;
pub mod metrics;
