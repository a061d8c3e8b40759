//! The app's routes. URLs live after `#` (a hash router), so `dist/` works on any static host,
//! in any folder, with no server-side rewrite rules.

use yew_router::Routable;

#[derive(Clone, Debug, PartialEq, Eq, Routable)]
pub enum Route {
    #[at("/")]
    Home,
    #[at("/lesson/:id")]
    Lesson { id: String },
    #[at("/lab")]
    Lab,
    /// Two setups of the default mesh run and compared.
    #[at("/sandbox")]
    Sandbox,
    #[at("/flashcards")]
    Flashcards,
    #[at("/author")]
    Author,
    #[at("/settings")]
    Settings,
    /// Times the engine in this browser, for the benchmark the browser tests print.
    #[at("/debug/bench")]
    DebugBench,
    /// Panics while rendering, so the browser tests can check the crash screen.
    #[at("/debug/panic")]
    DebugPanic,
    #[not_found]
    #[at("/not-found")]
    NotFound,
}
