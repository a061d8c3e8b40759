//! The home page: the course map, every module with its lessons in order, read from the course
//! that ships in `lessons/course.toml`.

use faultline_lessons::{Course, Module};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::icon::{Icon, IconName};
use crate::route::Route;

/// The built-in course, parsed once per page view; errors are shown rather than hidden.
pub fn course() -> Result<Course, String> {
    faultline_lessons::builtin_course()
        .map_err(|errors| errors.iter().map(|e| format!("{e}\n")).collect())
}

#[component]
pub fn Home() -> Html {
    let course = use_memo((), |_| course());
    let course = match &*course {
        Ok(course) => course,
        Err(errors) => {
            return html! {
                <div class="notice error" role="alert">
                    <h2>{ "The course file has errors" }</h2>
                    <pre>{ errors.clone() }</pre>
                </div>
            };
        }
    };
    let lesson_count = course.lessons().count();
    html! {
        <>
            <header class="page-header">
                <p class="eyebrow">{ "Course" }</p>
                <h1>{ course.title.clone() }</h1>
                <p class="lede">
                    { "Investigate a simulated service mesh the way you would a real incident: read \
                       its traces, logs and metrics, find the injected fault, name the fix and prove \
                       it by running again." }
                </p>
                <ul class="stats" aria-label="Course size">
                    <li><strong>{ course.modules.len() }</strong>{ " modules" }</li>
                    <li><strong>{ lesson_count }</strong>{ " lessons" }</li>
                    <li><strong>{ format_hours(course.minutes()) }</strong>{ " of study" }</li>
                </ul>
            </header>
            <ol class="module-list">
                for (index, module) in course.modules.iter().enumerate() {
                    <ModuleCard number={index + 1} module={module.clone()} />
                }
            </ol>
        </>
    }
}

fn format_hours(minutes: u32) -> String {
    let (h, m) = (minutes / 60, minutes % 60);
    match (h, m) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

#[derive(Properties, PartialEq)]
struct ModuleCardProps {
    number: usize,
    module: Module,
}

#[component]
fn ModuleCard(props: &ModuleCardProps) -> Html {
    let module = &props.module;
    html! {
        <li class="module-card" id={format!("module-{}", module.id)}>
            <div class="module-head">
                <span class="module-number" aria-hidden="true">{ props.number }</span>
                <div>
                    <h2>{ module.title.clone() }</h2>
                    <p>{ module.summary.clone() }</p>
                </div>
            </div>
            <ol class="lesson-list">
                for lesson in module.lessons.iter() {
                    <li>
                        <Link<Route> to={Route::Lesson { id: lesson.id.clone() }} classes="lesson-row">
                            <Icon name={IconName::Book} />
                            <span class="lesson-title">{ lesson.title.clone() }</span>
                            <span class="lesson-minutes">
                                <Icon name={IconName::Clock} />{ format!("{} min", lesson.minutes) }
                            </span>
                        </Link<Route>>
                    </li>
                }
            </ol>
        </li>
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hours_read_naturally() {
        assert_eq!(super::format_hours(45), "45 min");
        assert_eq!(super::format_hours(120), "2 h");
        assert_eq!(super::format_hours(330), "5 h 30 min");
    }
}
