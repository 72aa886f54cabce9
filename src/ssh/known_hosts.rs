//! Placeholder: known_hosts parsing and verification (being written).
