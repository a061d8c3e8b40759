//! Entry point of the browser app: installs the crash screen, applies the saved theme and mounts
//! the Yew application on `#app`. Everything else lives in the modules below.

mod app;
mod components;
mod crash;
mod pages;
mod route;
mod storage;

fn main() {
    crash::install_panic_hook();
    storage::apply_theme(storage::load_theme());
    app::mount();
}
