//! A lesson's overview: where it sits in the course, what it teaches, the faults its
//! investigations inject, and links to the lessons before and after it.

use faultline_lessons::Lesson;
use yew::prelude::*;
use yew_router::prelude::*;

use super::home::course;
use crate::components::empty_state::EmptyState;
use crate::components::icon::{Icon, IconName};
use crate::route::Route;

#[derive(Properties, PartialEq)]
pub struct LessonPageProps {
    pub id: AttrValue,
}

#[component]
pub fn LessonPage(props: &LessonPageProps) -> Html {
    let course = use_memo((), |_| course());
    let Ok(course) = &*course else {
        return html! { <p class="notice error">{ "The course file has errors; see the course page." }</p> };
    };
    let Some((module, lesson)) = course.lesson(&props.id) else {
        return html! {
            <EmptyState icon={IconName::Alert} title="No such lesson">
                <p>{ format!("There is no lesson with the id “{}”.", props.id) }</p>
                <Link<Route> to={Route::Home} classes="button primary">{ "Back to the course" }</Link<Route>>
            </EmptyState>
        };
    };
    let lessons: Vec<&Lesson> = course.lessons().collect();
    let position = lessons.iter().position(|l| l.id == lesson.id).unwrap_or(0);
    let previous = position.checked_sub(1).and_then(|i| lessons.get(i));
    let next = lessons.get(position + 1);
    html! {
        <article class="lesson">
            <nav class="breadcrumb" aria-label="Breadcrumb">
                <Link<Route> to={Route::Home}>{ "Course" }</Link<Route>>
                <span aria-hidden="true">{ "›" }</span>
                <span>{ module.title.clone() }</span>
            </nav>
            <header class="page-header">
                <p class="eyebrow">
                    { format!("Lesson {} of {}", position + 1, lessons.len()) }
                    <span class="dot" aria-hidden="true">{ "·" }</span>
                    <Icon name={IconName::Clock} />{ format!("{} min", lesson.minutes) }
                </p>
                <h1>{ lesson.title.clone() }</h1>
                <p class="lede">{ lesson.summary.clone() }</p>
            </header>
            <div class="lesson-grid">
                <section class="card">
                    <h2>{ "You will be able to" }</h2>
                    <ul class="goals">
                        for goal in lesson.goals.iter() { <li>{ goal.clone() }</li> }
                    </ul>
                </section>
                <section class="card">
                    <h2>{ "Faults in its investigations" }</h2>
                    <ul class="chips">
                        for fault in lesson.faults.iter() {
                            <li class="chip"><code>{ fault.clone() }</code></li>
                        }
                    </ul>
                    <p class="muted">{ "Names from the engine's fault catalog." }</p>
                </section>
            </div>
            <nav class="pager" aria-label="Lessons">
                if let Some(prev) = previous {
                    <Link<Route> to={Route::Lesson { id: prev.id.clone() }} classes="pager-link prev">
                        <span class="muted">{ "Previous" }</span>
                        <span>{ prev.title.clone() }</span>
                    </Link<Route>>
                } else { <span /> }
                if let Some(next) = next {
                    <Link<Route> to={Route::Lesson { id: next.id.clone() }} classes="pager-link next">
                        <span class="muted">{ "Next" }</span>
                        <span>{ next.title.clone() }</span>
                    </Link<Route>>
                }
            </nav>
        </article>
    }
}
