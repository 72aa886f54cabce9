//! Placeholder: ~/.ssh/config resolution (being written).
