//! Toxiproxy provider.
