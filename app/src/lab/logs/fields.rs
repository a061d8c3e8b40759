//! The fields panel beside the log lines, as Kibana Discover's sidebar: each field of the hits
//! with its commonest values and their share of a sample, a value one click away from the query
//! (+ keeps only lines with it, − drops them).

use faultline_engine::query::logs::FieldSummary;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct FieldsProps {
    pub fields: Vec<FieldSummary>,
    /// The lines the sample was taken from.
    pub sampled: u32,
    /// (field, value, keep)
    pub on_filter: Callback<(String, String, bool)>,
}

#[component]
pub fn Fields(props: &FieldsProps) -> Html {
    html! {
        <aside class="log-fields" aria-label="Fields">
            <h3>{ "Fields" }</h3>
            <p class="muted small">{ format!("From the newest {} matching lines", props.sampled) }</p>
            <ul>
                for (i, f) in props.fields.iter().enumerate() {
                    <li>
                        // The labels start open; the fields open on a click.
                        <details open={i < 3}>
                            <summary>
                                <span class="field-name">{ f.name.clone() }</span>
                                <span class="field-distinct" title="distinct values in the sample">{ f.distinct }</span>
                            </summary>
                            <ul class="field-values">
                                for (value, n) in f.top.iter() {
                                    { value_row(&f.name, value, *n, f.lines, &props.on_filter) }
                                }
                            </ul>
                        </details>
                    </li>
                }
            </ul>
        </aside>
    }
}

fn value_row(
    field: &str,
    value: &str,
    n: u32,
    of: u32,
    on_filter: &Callback<(String, String, bool)>,
) -> Html {
    let share = 100.0 * f64::from(n) / f64::from(of.max(1));
    let emit = |keep: bool| {
        let (on_filter, field, value) = (on_filter.clone(), field.to_string(), value.to_string());
        Callback::from(move |_: MouseEvent| on_filter.emit((field.clone(), value.clone(), keep)))
    };
    html! {
        <li class="field-value">
            <div class="field-value-head">
                <span class="value" title={value.to_string()}>{ value.to_string() }</span>
                <span class="share">{ format!("{share:.0}%") }</span>
                <button class="icon-button" onclick={emit(true)}
                        aria-label={format!("Keep only {field} = {value}")} title="Filter for value">{ "+" }</button>
                <button class="icon-button" onclick={emit(false)}
                        aria-label={format!("Drop {field} = {value}")} title="Filter out value">{ "−" }</button>
            </div>
            <div class="share-bar"><span style={format!("width: {share:.1}%")} /></div>
        </li>
    }
}
