//! The lab, where a learner investigates a running scenario. Until the engine's simulation
//! lands (issue 4) and the lab views are built (issue 5), it says so and points to the course.

use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::empty_state::EmptyState;
use crate::components::icon::IconName;
use crate::route::Route;

#[component]
pub fn Lab() -> Html {
    html! {
        <>
            <header class="page-header">
                <p class="eyebrow">{ "Lab" }</p>
                <h1>{ "Investigate a running mesh" }</h1>
                <p class="lede">{ "Service map, traces, logs and metrics of one simulated run, side by side." }</p>
            </header>
            <EmptyState icon={IconName::Lab} title="No scenario is loaded">
                <p>{ "The lab opens on a scenario: a mesh, a workload, a seed and the faults to inject. \
                      Scenarios arrive with the simulation engine; until then, read the course." }</p>
                <Link<Route> to={Route::Home} classes="button primary">{ "Browse the course" }</Link<Route>>
            </EmptyState>
        </>
    }
}
