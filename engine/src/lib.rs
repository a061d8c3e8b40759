//! Faultline's engine: the simulated service mesh, its telemetry and the queries over it.
//! Pure Rust with no IO, no wall clock and no browser crates, so that the same scenario and seed
//! give the same bytes natively and in wasm. The browser app and the CLI are thin shells over it.

pub mod time;

pub use time::{Duration, DurationError, SimTime};
