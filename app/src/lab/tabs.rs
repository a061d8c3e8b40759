//! The lab's views and the tab bar that switches between them: a WAI-ARIA tab list, where the
//! arrow keys, Home and End move to a tab and open it, and the open view is in the URL (`view`).

use yew::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Overview,
    Map,
    Traces,
    Logs,
    Metrics,
}

impl View {
    pub const ALL: [View; 5] = [
        View::Overview,
        View::Map,
        View::Traces,
        View::Logs,
        View::Metrics,
    ];

    /// The view a URL's `view` names; the overview when it names none.
    pub fn from_query(key: Option<&str>) -> View {
        View::ALL
            .into_iter()
            .find(|v| Some(v.key()) == key)
            .unwrap_or(View::Overview)
    }

    pub fn key(self) -> &'static str {
        match self {
            View::Overview => "overview",
            View::Map => "map",
            View::Traces => "traces",
            View::Logs => "logs",
            View::Metrics => "metrics",
        }
    }

    /// The URL's `view` for this view: none for the overview, the lab's first page.
    pub fn query_value(self) -> Option<String> {
        (self != View::Overview).then(|| self.key().to_string())
    }

    pub fn label(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Map => "Service map",
            View::Traces => "Traces",
            View::Logs => "Logs",
            View::Metrics => "Metrics",
        }
    }

    /// The tab a key press moves to from this one, if the key moves at all.
    pub fn after_key(self, key: &str) -> Option<View> {
        let at = View::ALL.iter().position(|&v| v == self).unwrap_or(0);
        let last = View::ALL.len() - 1;
        let to = match key {
            "ArrowRight" => (at + 1) % View::ALL.len(),
            "ArrowLeft" => (at + last) % View::ALL.len(),
            "Home" => 0,
            "End" => last,
            _ => return None,
        };
        Some(View::ALL[to])
    }
}

pub fn tab_id(view: View) -> String {
    format!("lab-tab-{}", view.key())
}

pub fn panel_id(view: View) -> String {
    format!("lab-panel-{}", view.key())
}

#[derive(Properties, PartialEq)]
pub struct TabBarProps {
    pub current: View,
    pub on_select: Callback<View>,
}

#[component]
pub fn TabBar(props: &TabBarProps) -> Html {
    let current = props.current;
    let onkeydown = {
        let on_select = props.on_select.clone();
        move |e: KeyboardEvent| {
            if let Some(next) = current.after_key(&e.key()) {
                e.prevent_default();
                on_select.emit(next);
                crate::lab::focus_element(&tab_id(next));
            }
        }
    };
    html! {
        <div class="lab-tabs" role="tablist" aria-label="Lab views" {onkeydown}>
            for view in View::ALL {
                <button
                    type="button" role="tab" class="lab-tab" id={tab_id(view)}
                    aria-selected={(view == current).to_string()}
                    aria-controls={panel_id(view)}
                    tabindex={if view == current { "0" } else { "-1" }}
                    onclick={props.on_select.reform(move |_: MouseEvent| view)}
                >{ view.label() }</button>
            }
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::View;

    #[test]
    fn views_round_trip_through_the_url_and_arrow_keys_wrap() {
        for v in View::ALL {
            assert_eq!(View::from_query(v.query_value().as_deref()), v);
        }
        assert_eq!(View::from_query(Some("nonsense")), View::Overview);
        assert_eq!(View::Overview.after_key("ArrowRight"), Some(View::Map));
        assert_eq!(View::Overview.after_key("ArrowLeft"), Some(View::Metrics));
        assert_eq!(View::Logs.after_key("ArrowRight"), Some(View::Metrics));
        assert_eq!(View::Metrics.after_key("ArrowRight"), Some(View::Overview));
        assert_eq!(View::Traces.after_key("Home"), Some(View::Overview));
        assert_eq!(View::Traces.after_key("End"), Some(View::Metrics));
        assert_eq!(View::Traces.after_key("a"), None);
    }
}
