//! The sidebar: the product name and one link per top-level page, the current section highlighted.
//! Lessons count as part of the course section.

use yew::prelude::*;
use yew_router::prelude::*;

use super::icon::{Icon, IconName};
use crate::route::Route;

const LINKS: [(Route, IconName, &str); 6] = [
    (Route::Home, IconName::Map, "Course"),
    (Route::Lab, IconName::Lab, "Lab"),
    (Route::Sandbox, IconName::Sliders, "Sandbox"),
    (Route::Flashcards, IconName::Cards, "Flashcards"),
    (Route::Author, IconName::Pen, "Author"),
    (Route::Settings, IconName::Gear, "Settings"),
];

#[component]
pub fn Sidebar() -> Html {
    let current = use_route::<Route>().unwrap_or(Route::Home);
    // A lesson belongs to the course section of the navigation.
    let section = match current {
        Route::Lesson { .. } => Route::Home,
        other => other,
    };
    html! {
        <nav class="sidebar" aria-label="Main">
            <Link<Route> to={Route::Home} classes="brand">
                <svg class="brand-mark" viewBox="0 0 32 32" width="28" height="28" aria-hidden="true">
                    <rect width="32" height="32" rx="8" class="brand-bg" />
                    <path d="M7 17h5l3-8 3 14 3-9 1 3h3" fill="none" stroke="white"
                          stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round" />
                </svg>
                <span class="brand-name">{ "Faultline" }</span>
            </Link<Route>>
            <ul class="nav-links">
                for (route, icon, label) in LINKS.iter().cloned() {
                    <li>
                        <Link<Route> to={route.clone()}
                            classes={classes!("nav-link", (route == section).then_some("active"))}>
                            <Icon name={icon} />
                            <span>{ label }</span>
                        </Link<Route>>
                    </li>
                }
            </ul>
            <p class="sidebar-foot">{ "Runs entirely in your browser" }</p>
        </nav>
    }
}
