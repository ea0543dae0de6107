//! What the three pipeline services share, written once: the Redis stream names and event
//! formats (wire-compatible with the original rsky services), and the helpers around them.

pub mod event;
pub mod streams;
