//! Entry point of the browser app: installs the crash screen, applies the saved theme, mounts
//! the Yew application on `#app` and starts warming the engine up in idle time. Everything else
//! lives in the modules below.

mod app;
mod components;
mod crash;
mod frames;
mod lab;
mod pages;
mod route;
mod sandbox;
mod storage;
mod warmup;

fn main() {
    crash::install_panic_hook();
    storage::apply_theme(storage::load_theme());
    app::mount();
    warmup::start();
}
