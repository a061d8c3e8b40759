//! Settings: the colour theme (follow the system, light or dark), saved in this browser.

use yew::prelude::*;

use crate::storage::{self, Theme};

#[component]
pub fn Settings() -> Html {
    let theme = use_state(storage::load_theme);
    let saved = use_state(|| true);
    let choose = {
        let theme = theme.clone();
        let saved = saved.clone();
        Callback::from(move |choice: Theme| {
            saved.set(storage::save_theme(choice));
            theme.set(choice);
        })
    };
    html! {
        <>
            <header class="page-header">
                <p class="eyebrow">{ "Settings" }</p>
                <h1>{ "Settings" }</h1>
                <p class="lede">{ "Stored in this browser only. Nothing leaves your machine." }</p>
            </header>
            <section class="card">
                <fieldset class="choice-group">
                    <legend>{ "Theme" }</legend>
                    for choice in Theme::ALL {
                        <label class={classes!("choice", (choice == *theme).then_some("selected"))}>
                            <input type="radio" name="theme" value={choice.key()}
                                checked={choice == *theme}
                                onchange={choose.reform(move |_: Event| choice)} />
                            <span class={classes!("swatch", choice.key())} aria-hidden="true" />
                            <span>{ choice.label() }</span>
                        </label>
                    }
                </fieldset>
                if !*saved {
                    <p class="notice error">{ "This browser would not save the setting (private mode?). It applies until you close the tab." }</p>
                }
            </section>
        </>
    }
}
