//! The page for an unknown address, and the diagnostic route that panics on purpose so the
//! browser tests can check the crash screen.

use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::empty_state::EmptyState;
use crate::components::icon::IconName;
use crate::route::Route;

#[component]
pub fn NotFound() -> Html {
    html! {
        <EmptyState icon={IconName::Alert} title="Nothing lives at this address">
            <p>{ "The link may be from an older version of Faultline." }</p>
            <Link<Route> to={Route::Home} classes="button primary">{ "Go to the course" }</Link<Route>>
        </EmptyState>
    }
}

#[component]
pub fn DebugPanic() -> Html {
    panic!("deliberate panic from #/debug/panic, to check the crash screen");
}
