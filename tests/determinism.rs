//! Determinism across targets: the same scenario and seed give the same telemetry digest
//! natively and in wasm. The digests are pinned here; `cargo xtask test` runs this file on both.
//! A change to the engine that changes its output must update these constants on purpose.

use faultline_engine::mesh::default_mesh;
use faultline_engine::scenario::{FaultEffect, FaultSpec};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test;

const DEFAULT_MESH_SEED_7: &str =
    "548fcffc5a5b3a26c4ce722dd7f0ad9bdfad19c8d6526f2aa362f195e8260f08";
const FAULTY_MESH_SEED_42: &str =
    "df966659e7d4495961e28f9d19240348d4f28301cc386ae25d6fe7a791e0c560";

fn digest(scenario: &faultline_engine::Scenario, seed: u64) -> String {
    faultline_engine::run(scenario, seed)
        .expect("valid scenario")
        .digest_hex()
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn default_mesh_seed_7_is_pinned() {
    assert_eq!(digest(&default_mesh(50.0, 10_000), 7), DEFAULT_MESH_SEED_7);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn faulty_mesh_seed_42_is_pinned() {
    let mut scenario = default_mesh(80.0, 10_000);
    scenario.faults = vec![
        FaultSpec {
            service: "payments".into(),
            instance: Some(0),
            from_ms: 2_000,
            until_ms: 8_000,
            effect: FaultEffect::Latency { extra_ms: 900 },
        },
        FaultSpec {
            service: "inventory".into(),
            instance: None,
            from_ms: 0,
            until_ms: 10_000,
            effect: FaultEffect::ErrorRate { rate: 0.2 },
        },
    ];
    assert_eq!(digest(&scenario, 42), FAULTY_MESH_SEED_42);
}
