//! Cross-crate tests, one binary with a module per area (ripgrep's `tests/tests.rs` layout).

mod faults;
mod fixtures;
mod index;
mod jaeger_ui;
mod tidy;
