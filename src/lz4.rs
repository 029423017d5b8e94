//! LZ4 frame codec (placeholder).
