//! Replica key layout (placeholder).
