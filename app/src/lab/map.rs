//! The service map: every service as a box in columns by call depth, coloured by its error rate
//! and latency over the last 30 simulated seconds, the calls between them as arrows labelled with
//! rate and p99, a circuit breaker's state on its edge. Clicking a service focuses the other
//! views on it. Plain SVG, laid out here.

use faultline_engine::Duration;
use faultline_engine::query::map::{MapEdge, MapNode, ServiceMap, service_map};
use yew::prelude::*;

use super::LabRun;
use super::overview::duration;
use crate::frames::now_ms;

/// The window the map summarises, in simulated time.
const WINDOW: Duration = Duration(30_000_000);
/// While the run plays, the map is computed again at most this often (ms of wall time).
const REFRESH_MS: f64 = 300.0;
const NODE_W: f64 = 172.0;
const NODE_H: f64 = 74.0;
const COLUMN: f64 = 400.0;
const ROW: f64 = 104.0;
const MARGIN: f64 = 24.0;

#[derive(Properties, PartialEq)]
pub struct MapProps {
    /// The service the views are focused on, if any.
    pub focus: Option<String>,
    pub on_focus: Callback<Option<String>>,
}

/// Health of a node or edge, as its class: errors first, then latency.
fn health(error_ratio: f64, p99: Option<Duration>) -> &'static str {
    if error_ratio >= 0.05 {
        "bad"
    } else if error_ratio >= 0.01 || p99.is_some_and(|d| d.0 >= 1_000_000) {
        "warn"
    } else {
        "good"
    }
}

/// Where each node sits: columns by depth; within a column, nodes in the order of the mean row
/// of their callers (fewer crossings), ties by name.
fn layout(nodes: &[MapNode], edges: &[MapEdge]) -> Vec<(f64, f64)> {
    let mut row: Vec<f64> = vec![0.0; nodes.len()];
    let deepest = nodes.iter().map(|n| n.depth).max().unwrap_or(0);
    for depth in 0..=deepest {
        let mut column: Vec<(f64, usize)> = nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.depth == depth)
            .map(|(i, n)| {
                let callers: Vec<f64> = edges
                    .iter()
                    .filter(|e| e.to == n.service)
                    .filter_map(|e| {
                        nodes
                            .iter()
                            .position(|m| m.service == e.from && m.depth < depth)
                    })
                    .map(|c| row[c])
                    .collect();
                let mean = if callers.is_empty() {
                    f64::MAX
                } else {
                    callers.iter().sum::<f64>() / callers.len() as f64
                };
                (mean, i)
            })
            .collect();
        column.sort_by(|a, b| {
            a.0.total_cmp(&b.0)
                .then_with(|| nodes[a.1].service.cmp(&nodes[b.1].service))
        });
        for (k, (_, i)) in column.into_iter().enumerate() {
            row[i] = k as f64;
        }
    }
    nodes
        .iter()
        .zip(row)
        .map(|(n, r)| (MARGIN + f64::from(n.depth) * COLUMN, MARGIN + r * ROW))
        .collect()
}

#[component]
pub fn Map(props: &MapProps) -> Html {
    let lab = use_context::<LabRun>().expect("the lab provides its run");
    let cache = use_mut_ref(|| (f64::MIN, 0u64, ServiceMap::default()));
    {
        let mut c = cache.borrow_mut();
        if c.1 != lab.version && (!lab.moving || now_ms() - c.0 >= REFRESH_MS) {
            let run = lab.run.borrow();
            *c = (
                now_ms(),
                lab.version,
                service_map(run.telemetry(), run.now(), WINDOW),
            );
        }
    }
    let c = cache.borrow();
    let map = &c.2;
    let at = layout(&map.nodes, &map.edges);
    let position = |name: &str| {
        map.nodes
            .iter()
            .position(|n| n.service == name)
            .map(|i| at[i])
    };
    let width = at.iter().map(|p| p.0).fold(0.0, f64::max) + NODE_W + 2.0 * MARGIN;
    let height = at.iter().map(|p| p.1).fold(0.0, f64::max) + NODE_H + 2.0 * MARGIN;
    html! {
        <section class="service-map" aria-label="Service map">
            <p class="muted map-caption">
                { "The last 30 simulated seconds. Boxes are services (colour: errors, then p99 over 1 s); arrows are calls. Click a service to focus the other views on it." }
            </p>
            if map.nodes.is_empty() {
                <p class="muted">{ "No traffic yet: press Play." }</p>
            } else {
                <svg viewBox={format!("0 0 {width} {height}")} width={width.to_string()} height={height.to_string()}
                     role="group" aria-label="Services and the calls between them">
                    <defs>
                        <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                            <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" />
                        </marker>
                    </defs>
                    for e in map.edges.iter() {
                        { edge(e, position(&e.from), position(&e.to)) }
                    }
                    for (n, (x, y)) in map.nodes.iter().zip(at.iter()) {
                        { node(n, *x, *y, props) }
                    }
                    // Labels last, over the boxes an arrow may pass behind: stacked left of
                    // the box the arrows point at, one line per caller.
                    for (e, (k, n)) in map.edges.iter().zip(stacking(&map.edges)) {
                        { label(e, position(&e.to), k, n) }
                    }
                </svg>
            }
        </section>
    }
}

/// For each edge, its place among the edges into the same service and how many there are.
fn stacking(edges: &[MapEdge]) -> Vec<(usize, usize)> {
    edges
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let into = |f: &MapEdge| f.to == e.to;
            (
                edges[..i].iter().filter(|f| into(f)).count(),
                edges.iter().filter(|f| into(f)).count(),
            )
        })
        .collect()
}

/// An edge's rate, p99 and breaker state, the `k`-th of `n` stacked left of the service it calls.
fn label(e: &MapEdge, to: Option<(f64, f64)>, k: usize, n: usize) -> Html {
    let Some((x, y)) = to else {
        return Html::default();
    };
    let line = 13.0;
    let y = y + NODE_H / 2.0 + (k as f64 - (n as f64 - 1.0) / 2.0) * line * 2.0 - 2.0;
    let x = x - 10.0;
    let who = if n > 1 {
        format!("{}: ", e.from)
    } else {
        String::new()
    };
    let text = format!(
        "{who}{:.1}/s · p99 {}",
        e.rate_per_s,
        e.p99.map(duration).unwrap_or_else(|| "–".into())
    );
    html! {
        <g class={classes!("edge", health(e.error_ratio, e.p99))}>
            <text class="edge-label" x={x.to_string()} y={y.to_string()} text-anchor="end">{ text }</text>
            if let Some(state) = e.breaker.filter(|s| *s != "closed") {
                <text class={classes!("breaker", state)} x={x.to_string()} y={(y + line).to_string()} text-anchor="end">
                    { format!("breaker {}", state.replace('_', "-")) }
                </text>
            }
        </g>
    }
}

/// An edge's arrow, with its figures in a tooltip.
fn edge(e: &MapEdge, from: Option<(f64, f64)>, to: Option<(f64, f64)>) -> Html {
    let (Some((x1, y1)), Some((x2, y2))) = (from, to) else {
        return Html::default();
    };
    let (sx, sy) = (x1 + NODE_W, y1 + NODE_H / 2.0);
    let (tx, ty) = (x2, y2 + NODE_H / 2.0);
    let bend = ((tx - sx).abs() / 2.0).max(40.0);
    let path = format!(
        "M {sx} {sy} C {} {sy}, {} {ty}, {tx} {ty}",
        sx + bend,
        tx - bend
    );
    let label = format!(
        "{:.1}/s · p99 {}",
        e.rate_per_s,
        e.p99.map(duration).unwrap_or_else(|| "–".into())
    );
    let class = classes!("edge", health(e.error_ratio, e.p99));
    html! {
            <g {class}>
                <title>{ format!("{} → {}: {label}, {:.1}% errors", e.from, e.to, 100.0 * e.error_ratio) }</title>
                <path d={path} marker-end="url(#arrow)" />
            </g>
    }
}

fn node(n: &MapNode, x: f64, y: f64, props: &MapProps) -> Html {
    let focused = props.focus.as_deref() == Some(n.service.as_str());
    let onclick = {
        let (on_focus, name) = (props.on_focus.clone(), n.service.clone());
        Callback::from(move |_: MouseEvent| on_focus.emit((!focused).then(|| name.clone())))
    };
    let onkeydown = {
        let (on_focus, name) = (props.on_focus.clone(), n.service.clone());
        Callback::from(move |e: KeyboardEvent| {
            if e.key() == "Enter" || e.key() == " " {
                e.prevent_default();
                on_focus.emit((!focused).then(|| name.clone()));
            }
        })
    };
    let class = classes!(
        "node",
        health(n.error_ratio, n.p99),
        focused.then_some("focused"),
        n.uninstrumented.then_some("uninstrumented")
    );
    let detail = if n.uninstrumented {
        "via callers".to_string()
    } else {
        format!("× {}", n.instances)
    };
    let traffic = format!(
        "{:.1} req/s · {:.1}% err",
        n.rate_per_s,
        100.0 * n.error_ratio
    );
    let latency = format!("p99 {}", n.p99.map(duration).unwrap_or_else(|| "–".into()));
    let tooltip = if n.uninstrumented {
        format!("{} writes no spans: seen through its callers", n.service)
    } else {
        format!("{} instances", n.instances)
    };
    // A screen reader hears what is drawn, tooltip first as in the drawing's order (WCAG 2.5.3:
    // the visible text is in the name).
    let name = format!("{tooltip} {} {detail} {traffic} {latency}", n.service);
    html! {
            <g {class} transform={format!("translate({x} {y})")} {onclick} {onkeydown} tabindex="0" role="button"
               aria-pressed={focused.to_string()} data-service={n.service.clone()}
               aria-label={name}>
                <title>{ tooltip }</title>
                <rect width={NODE_W.to_string()} height={NODE_H.to_string()} rx="10" />
    // One text, its lines spaced apart, so its text reads as the words it shows.
                <text>
                    <tspan class="node-name" x="12" y="22">{ n.service.clone() }</tspan>{ " " }
                    <tspan class="node-detail" x={(NODE_W - 12.0).to_string()} y="22" text-anchor="end">{ detail }</tspan>{ " " }
                    <tspan class="node-stat" x="12" y="44">{ traffic }</tspan>{ " " }
                    <tspan class="node-stat" x="12" y="62">{ latency }</tspan>
                </text>
            </g>
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_then_latency_decide_the_colour() {
        assert_eq!(health(0.0, Some(Duration(20_000))), "good");
        assert_eq!(health(0.02, None), "warn");
        assert_eq!(health(0.0, Some(Duration(1_500_000))), "warn");
        assert_eq!(health(0.2, Some(Duration(1_000))), "bad");
    }

    fn node(service: &str, depth: u32) -> MapNode {
        MapNode {
            service: service.into(),
            instances: 1,
            depth,
            rate_per_s: 1.0,
            error_ratio: 0.0,
            p99: None,
            uninstrumented: false,
        }
    }

    fn edge(from: &str, to: &str) -> MapEdge {
        MapEdge {
            from: from.into(),
            to: to.into(),
            rate_per_s: 1.0,
            error_ratio: 0.0,
            p99: None,
            breaker: None,
        }
    }

    #[test]
    fn columns_by_depth_rows_by_their_callers() {
        // b is called from the second row, c from the first: c goes above b.
        let nodes = [node("a", 0), node("z", 0), node("b", 1), node("c", 1)];
        let at = layout(&nodes, &[edge("z", "b"), edge("a", "c")]);
        assert_eq!(at[0], (MARGIN, MARGIN));
        assert_eq!(at[1], (MARGIN, MARGIN + ROW));
        assert_eq!(at[3], (MARGIN + COLUMN, MARGIN));
        assert_eq!(at[2], (MARGIN + COLUMN, MARGIN + ROW));
    }

    #[test]
    fn labels_stack_per_called_service() {
        let edges = [
            edge("a", "db"),
            edge("b", "db"),
            edge("a", "c"),
            edge("c", "db"),
        ];
        assert_eq!(stacking(&edges), vec![(0, 3), (1, 3), (0, 1), (2, 3)]);
    }
}
