//! The author's page: where instructors will load and check lesson and scenario files. For now
//! it describes the course file format and validates the built-in course.

use yew::prelude::*;

use super::home::course;

#[component]
pub fn Author() -> Html {
    let course = use_memo((), |_| course());
    let status = match &*course {
        Ok(course) => html! {
            <p class="notice ok">
                { format!("lessons/course.toml is valid: {} modules, {} lessons.",
                          course.modules.len(), course.lessons().count()) }
            </p>
        },
        Err(errors) => html! { <pre class="notice error">{ errors.clone() }</pre> },
    };
    html! {
        <>
            <header class="page-header">
                <p class="eyebrow">{ "Author" }</p>
                <h1>{ "Write lessons as plain text" }</h1>
                <p class="lede">{ "Lessons, scenarios and cards are TOML files you can keep in git and share. \
                                   Every mistake is reported with its file, line and column." }</p>
            </header>
            <section class="card">
                <h2>{ "The course map" }</h2>
                { status }
                <pre class="code">{ SAMPLE }</pre>
            </section>
        </>
    }
}

const SAMPLE: &str = r#"title = "Debugging distributed systems"

[[module]]
id = "time"
title = "Waiting well: timeouts and retries"
summary = "Every remote call can hang."

[[module.lesson]]
id = "missing-timeout"
title = "The call with no timeout"
summary = "A dependency slows down and the caller waits forever."
minutes = 20
goals = ["Follow a cascade upstream from the first slow dependency"]
faults = ["missing_timeout"]"#;
