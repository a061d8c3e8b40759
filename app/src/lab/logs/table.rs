//! The log lines, newest first, in a scrolling table that draws only the rows in view (plus a
//! few either side), so a million hits scroll as smoothly as ten. `j`/`k` move the selection,
//! Enter opens it, Esc closes it.

use faultline_engine::Telemetry;
use faultline_engine::query::logs::{Clock, LogRow, log_row};
use faultline_engine::telemetry::TraceId;
use yew::prelude::*;

use crate::lab::LabRun;

/// Height of one row in pixels: the CSS (`.log-row`) uses the same.
pub const ROW_HEIGHT: f64 = 26.0;
/// Rows drawn beyond each edge of the view.
const OVERSCAN: usize = 10;

/// The rows to draw for a scroll position: [first, end) of `total`.
pub fn visible_rows(scroll_top: f64, viewport: f64, total: usize) -> (usize, usize) {
    let first = ((scroll_top / ROW_HEIGHT).floor().max(0.0) as usize).saturating_sub(OVERSCAN);
    let shown = (viewport / ROW_HEIGHT).ceil() as usize + 2 * OVERSCAN + 1;
    (first.min(total), (first + shown).min(total))
}

#[derive(Properties, PartialEq)]
pub struct TableProps {
    /// Line numbers of the hits, oldest first (the engine's order); shown newest first.
    pub hits: std::rc::Rc<Vec<u32>>,
    pub clock: Clock,
    pub selected: Option<u32>,
    pub on_select: Callback<Option<u32>>,
    pub on_trace: Callback<TraceId>,
}

#[component]
pub fn Table(props: &TableProps) -> Html {
    let scroll = use_state(|| 0.0f64);
    let viewport = use_state(|| 560.0f64);
    let container = use_node_ref();
    let total = props.hits.len();
    let onscroll = {
        let (scroll, viewport, container) = (scroll.clone(), viewport.clone(), container.clone());
        Callback::from(move |_: Event| {
            if let Some(el) = container.cast::<web_sys::Element>() {
                scroll.set(f64::from(el.scroll_top()));
                viewport.set(f64::from(el.client_height()));
            }
        })
    };
    // The row a line number sits on, newest first.
    let row_of = {
        let hits = props.hits.clone();
        move |line: u32| hits.binary_search(&line).ok().map(|i| hits.len() - 1 - i)
    };
    let onkeydown = {
        let (hits, on_select, selected, container) = (
            props.hits.clone(),
            props.on_select.clone(),
            props.selected,
            container.clone(),
        );
        let row_of = row_of.clone();
        Callback::from(move |e: KeyboardEvent| {
            let current = selected.and_then(&row_of);
            let next = match e.key().as_str() {
                "j" | "ArrowDown" => {
                    Some(current.map_or(0, |r| (r + 1).min(hits.len().saturating_sub(1))))
                }
                "k" | "ArrowUp" => Some(current.map_or(0, |r| r.saturating_sub(1))),
                "Escape" => {
                    on_select.emit(None);
                    return;
                }
                _ => return,
            };
            e.prevent_default();
            if let Some(row) = next.filter(|_| !hits.is_empty()) {
                on_select.emit(Some(hits[hits.len() - 1 - row]));
                // Keep the selected row in view.
                if let Some(el) = container.cast::<web_sys::Element>() {
                    let top = row as f64 * ROW_HEIGHT;
                    let (view_top, height) =
                        (f64::from(el.scroll_top()), f64::from(el.client_height()));
                    if top < view_top {
                        el.set_scroll_top(top as i32);
                    } else if top + ROW_HEIGHT > view_top + height {
                        el.set_scroll_top((top + ROW_HEIGHT - height) as i32);
                    }
                }
            }
        })
    };
    let (first, end) = visible_rows(*scroll, *viewport, total);
    let lab = use_context::<LabRun>().expect("the lab provides its run");
    let run = lab.run.borrow();
    let t = run.telemetry();
    html! {
        <div class="log-table" ref={container} {onscroll} {onkeydown} tabindex="0"
             role="grid" aria-label="Log lines" aria-rowcount={total.to_string()}>
            <div class="log-rows" style={format!("height: {}px", total as f64 * ROW_HEIGHT)}>
                for row in first..end {
                    { row_html(t, props.hits[total - 1 - row], row, props) }
                }
            </div>
        </div>
    }
}

fn row_html(t: &Telemetry, line: u32, row: usize, props: &TableProps) -> Html {
    let r: LogRow = log_row(t, line, props.clock);
    let selected = props.selected == Some(line);
    let on_select = props.on_select.clone();
    let onclick = Callback::from(move |_: MouseEvent| {
        on_select.emit(if selected { None } else { Some(line) })
    });
    let trace = r.trace_id.map(|id| {
        let on_trace = props.on_trace.clone();
        let text = id.to_string();
        html! {
            <a class="trace-link" href="#" title={format!("Open trace {text}")}
               onclick={Callback::from(move |e: MouseEvent| { e.prevent_default(); e.stop_propagation(); on_trace.emit(id) })}>
                { text[..8].to_string() }
            </a>
        }
    });
    let fields: String = r.fields.iter().map(|(k, v)| format!(" {k}={v}")).collect();
    html! {
        <div class={classes!("log-row", selected.then_some("selected"))} role="row"
             aria-rowindex={(row + 1).to_string()} aria-selected={selected.to_string()}
             style={format!("top: {}px", row as f64 * ROW_HEIGHT)} {onclick}>
            <span class="ts" role="gridcell">{ r.timestamp }</span>
            <span class={classes!("lv", format!("lv-{}", r.level.name()))} role="gridcell">{ r.level.name() }</span>
            <span class="inst" role="gridcell">{ r.instance }</span>
            <span class="msg" role="gridcell">{ r.message }<span class="kv">{ fields }</span></span>
            <span class="trace" role="gridcell">{ trace.unwrap_or_default() }</span>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::{ROW_HEIGHT, visible_rows};

    #[test]
    fn only_the_rows_in_view_and_a_margin_are_drawn() {
        assert_eq!(visible_rows(0.0, 520.0, 0), (0, 0));
        assert_eq!(visible_rows(0.0, 520.0, 1_000_000), (0, 41));
        let (first, end) = visible_rows(500_000.0 * ROW_HEIGHT, 520.0, 1_000_000);
        assert_eq!((first, end), (499_990, 500_031));
        assert_eq!(
            visible_rows(999_990.0 * ROW_HEIGHT, 520.0, 1_000_000).1,
            1_000_000
        );
    }
}
