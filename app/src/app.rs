//! The application frame: router, sidebar navigation and the page outlet.
//! Pages own their state; this file only decides which page shows.

use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::nav::Sidebar;
use crate::pages;
use crate::route::Route;

/// Mounts the app on the `#app` element from index.html, replacing the loading screen.
pub fn mount() {
    let document = web_sys::window().and_then(|w| w.document());
    let root = document.as_ref().and_then(|d| d.get_element_by_id("app"));
    match root {
        Some(root) => {
            root.set_inner_html("");
            yew::Renderer::<App>::with_root(root).render();
        }
        None => {
            yew::Renderer::<App>::new().render();
        }
    }
}

#[component]
pub fn App() -> Html {
    html! {
        <HashRouter>
            <div class="shell">
                <Sidebar />
                <main class="page" id="main">
                    <Switch<Route> render={switch} />
                </main>
            </div>
        </HashRouter>
    }
}

fn switch(route: Route) -> Html {
    match route {
        Route::Home => html! { <pages::home::Home /> },
        Route::Lesson { id } => html! { <pages::lesson::LessonPage {id} /> },
        Route::Lab => html! { <crate::lab::Lab /> },
        Route::Sandbox => html! { <crate::sandbox::Sandbox /> },
        Route::Flashcards => html! { <pages::flashcards::Flashcards /> },
        Route::Author => html! { <pages::author::Author /> },
        Route::Settings => html! { <pages::settings::Settings /> },
        Route::DebugPanic => html! { <pages::not_found::DebugPanic /> },
        Route::DebugBench => html! { <pages::bench::Bench /> },
        Route::NotFound => html! { <pages::not_found::NotFound /> },
    }
}
