//! Drives the real Litestream binary to produce replicas (placeholder).
