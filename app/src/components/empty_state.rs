//! The panel a view shows when it has nothing to display yet, saying what will appear and why.

use yew::prelude::*;

use super::icon::{Icon, IconName};

#[derive(Properties, PartialEq)]
pub struct EmptyStateProps {
    pub icon: IconName,
    pub title: AttrValue,
    #[prop_or_default]
    pub children: Html,
}

#[component]
pub fn EmptyState(props: &EmptyStateProps) -> Html {
    html! {
        <section class="empty-state">
            <div class="empty-icon"><Icon name={props.icon} /></div>
            <h2>{ props.title.clone() }</h2>
            <div class="empty-body">{ props.children.clone() }</div>
        </section>
    }
}
