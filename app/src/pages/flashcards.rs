//! Flashcard review: spaced repetition of what the lessons taught. No cards are written yet, so
//! the page shows an empty review queue.

use yew::prelude::*;

use crate::components::empty_state::EmptyState;
use crate::components::icon::IconName;

#[component]
pub fn Flashcards() -> Html {
    html! {
        <>
            <header class="page-header">
                <p class="eyebrow">{ "Flashcards" }</p>
                <h1>{ "Review" }</h1>
                <p class="lede">{ "Short questions from the lessons, scheduled so you see each one just before you would forget it." }</p>
            </header>
            <EmptyState icon={IconName::Cards} title="Nothing to review">
                <p>{ "Cards join your queue as you finish lessons. Your review history stays in this browser." }</p>
            </EmptyState>
        </>
    }
}
