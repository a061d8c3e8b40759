//! The browser bench (app page #/debug/bench) outside the browser: the five-minute lesson and
//! the 100 s bench on the default mesh, seed 7, each timed twice in one instance (cold, then
//! warm). In wasm it runs in node through wasm-bindgen-test-runner, timed with `performance.now()`:
//! `CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner cargo test --release
//! -p faultline-tests --test wasm_bench --target wasm32-unknown-unknown -- --nocapture`. Natively ignored
//! unless asked for (`-- --ignored --nocapture`), for the same figures from the same build profile.

use faultline_engine::Simulation;
use faultline_engine::mesh::default_mesh;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

#[cfg(target_arch = "wasm32")]
mod clock {
    use wasm_bindgen::prelude::wasm_bindgen;

    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_namespace = performance, js_name = now)]
        fn performance_now() -> f64;
    }

    pub fn now_ms() -> f64 {
        performance_now()
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod clock {
    use std::sync::OnceLock;
    use std::time::Instant;

    pub fn now_ms() -> f64 {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1_000.0
    }
}

#[cfg(not(target_arch = "wasm32"))]
macro_rules! console_log {
    ($($t:tt)*) => { println!($($t)*) };
}

/// The wasm linear memory's size in MB (64 KiB pages; it only grows), or nothing natively.
fn memory() -> String {
    #[cfg(target_arch = "wasm32")]
    return format!("; memory {} MB", core::arch::wasm32::memory_size(0) / 16);
    #[cfg(not(target_arch = "wasm32"))]
    String::new()
}

/// Runs the default mesh at `rate_per_s` for `duration_ms`, seed 7; prints and returns the spans.
fn time_run(name: &str, rate_per_s: f64, duration_ms: u64) -> usize {
    let scenario = default_mesh(rate_per_s, duration_ms);
    let started = clock::now_ms();
    let telemetry = Simulation::new(scenario, 7).expect("valid").run();
    let millis = clock::now_ms() - started;
    let spans = telemetry.spans.len();
    drop(telemetry);
    let dropped = clock::now_ms() - started - millis;
    console_log!(
        "{name}: {spans} spans in {millis:.0} ms ({:.0} spans/s; drop {dropped:.0} ms{})",
        spans as f64 / (millis / 1_000.0),
        memory()
    );
    spans
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(
    not(target_arch = "wasm32"),
    ignore = "a benchmark: run with --ignored in release"
)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn lesson_and_bench_cold_then_warm() {
    for round in ["cold", "warm"] {
        let lesson = time_run(&format!("{round} lesson (5 min at 50/s)"), 50.0, 300_000);
        let bench = time_run(
            &format!("{round} bench (100 s at 1,000/s)"),
            1_000.0,
            100_000,
        );
        assert!(lesson > 100_000 && bench > 900_000);
    }
}
