//! WAL (placeholder)
