//! Replica storage over `object_store` (placeholder until the storage module lands).

pub mod layout;
