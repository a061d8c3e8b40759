//! A scrolling list of fixed-height rows that renders only the rows in view plus a few either
//! side (overscan), so a list of thousands of rows costs what a screenful does. The page says
//! how to draw row `i`; the list keeps the scroll position and can bring a row into view.

use std::ops::Range;

use yew::prelude::*;

/// The rows to render for a scroll position: those overlapping the viewport, widened by
/// `overscan` rows each side, within `0..rows`.
pub fn visible_range(
    scroll_top: f64,
    height: u32,
    row_height: u32,
    rows: u32,
    overscan: u32,
) -> Range<u32> {
    let row_height = u64::from(row_height.max(1));
    let top = scroll_top.max(0.0) as u64;
    let first = (top / row_height).min(u64::from(rows)) as u32;
    let last = (top + u64::from(height))
        .div_ceil(row_height)
        .min(u64::from(rows)) as u32;
    first.saturating_sub(overscan)..last.saturating_add(overscan).min(rows)
}

/// The scroll position that brings `row` fully into view with as little movement as possible.
pub fn scroll_into_view(scroll_top: f64, height: u32, row_height: u32, row: u32) -> Option<f64> {
    let top = f64::from(row * row_height);
    let bottom = top + f64::from(row_height);
    if top < scroll_top {
        Some(top)
    } else if bottom > scroll_top + f64::from(height) {
        Some(bottom - f64::from(height))
    } else {
        None
    }
}

#[derive(Properties, PartialEq)]
pub struct VirtualListProps {
    /// How many rows the list has.
    pub rows: u32,
    pub row_height: u32,
    /// The viewport's height in pixels.
    pub height: u32,
    #[prop_or(10)]
    pub overscan: u32,
    /// Draws row `i`.
    pub render: Callback<u32, Html>,
    /// A row to bring into view whenever this changes.
    #[prop_or_default]
    pub scroll_to: Option<u32>,
    #[prop_or_default]
    pub class: Classes,
    #[prop_or_default]
    pub id: Option<AttrValue>,
    #[prop_or_default]
    pub label: Option<AttrValue>,
}

#[component]
pub fn VirtualList(props: &VirtualListProps) -> Html {
    let node = use_node_ref();
    let scroll_top = use_state(|| 0.0f64);
    let (height, row_height, rows, overscan) =
        (props.height, props.row_height, props.rows, props.overscan);
    let onscroll = {
        let (node, scroll_top) = (node.clone(), scroll_top.clone());
        move |_: Event| {
            if let Some(el) = node.cast::<web_sys::Element>() {
                let top = f64::from(el.scroll_top());
                // Re-render only when the rendered window would change.
                let now = visible_range(*scroll_top, height, row_height, rows, overscan);
                if visible_range(top, height, row_height, rows, overscan) != now {
                    scroll_top.set(top);
                }
            }
        }
    };
    {
        let node = node.clone();
        use_effect_with(props.scroll_to, move |to| {
            if let (Some(row), Some(el)) = (*to, node.cast::<web_sys::Element>()) {
                let top = f64::from(el.scroll_top());
                if let Some(new_top) = scroll_into_view(top, height, row_height, row) {
                    el.set_scroll_top(new_top as i32);
                }
            }
        });
    }
    let range = visible_range(*scroll_top, height, row_height, rows, overscan);
    let offset = range.start * row_height;
    html! {
        <div ref={node} class={classes!("virtual-list", props.class.clone())} id={props.id.clone()}
             style={format!("height:{height}px")} {onscroll} aria-label={props.label.clone()}>
            <div class="virtual-list-space" style={format!("height:{}px", rows * row_height)}>
                <div class="virtual-list-window" style={format!("transform:translateY({offset}px)")}>
                    for i in range { { props.render.emit(i) } }
                </div>
            </div>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_rows_in_view_and_the_overscan_are_rendered() {
        // 28 px rows, 560 px high: 20 rows in view.
        assert_eq!(visible_range(0.0, 560, 28, 5_000, 10), 0..30);
        assert_eq!(visible_range(2_800.0, 560, 28, 5_000, 10), 90..130);
        // Half a row scrolled: 21 rows overlap the viewport.
        assert_eq!(visible_range(14.0, 560, 28, 5_000, 0), 0..21);
        // The end, and a list shorter than the viewport.
        assert_eq!(visible_range(139_440.0, 560, 28, 5_000, 10), 4_970..5_000);
        assert_eq!(visible_range(0.0, 560, 28, 3, 10), 0..3);
        assert_eq!(visible_range(9e9, 560, 28, 3, 10), 0..3);
    }

    #[test]
    fn a_row_is_brought_into_view_with_the_least_scrolling() {
        assert_eq!(scroll_into_view(0.0, 560, 28, 5), None);
        assert_eq!(scroll_into_view(0.0, 560, 28, 20), Some(28.0));
        assert_eq!(scroll_into_view(560.0, 560, 28, 3), Some(84.0));
    }
}
