//! Faultline's engine: the simulated service mesh, its telemetry and the queries over it.
//! Pure Rust with no IO, no wall clock and no browser crates, so that the same scenario and seed
//! give the same bytes natively and in wasm. The browser app and the CLI are thin shells over it.

/// Reference pages: what the telemetry holds, and the faults a scenario can inject.
pub mod docs {
    #[doc = include_str!("../docs/data-model.md")]
    pub mod data_model {}
    #[doc = include_str!("../docs/fault-catalog.md")]
    pub mod fault_catalog {}
}
pub mod cache;
pub mod edge;
pub mod export;
pub mod import;
pub mod index;
pub mod logql;
pub mod lookup;
pub mod mesh;
pub mod metrics;
pub mod query;
pub mod queue;
pub mod random;
pub mod sandbox;
pub mod scenario;
pub mod sim;
pub mod telemetry;
pub mod time;
pub mod trace;

pub use scenario::{Scenario, ScenarioError};
pub use sim::{GroundTruth, Simulation};
pub use telemetry::Telemetry;
pub use time::{ClockError, Duration, DurationError, SimTime};

/// Runs a scenario to the end with a seed; Err lists every problem with the scenario.
pub fn run(scenario: &Scenario, seed: u64) -> Result<Telemetry, Vec<ScenarioError>> {
    Ok(Simulation::new(scenario.clone(), seed)?.run())
}
