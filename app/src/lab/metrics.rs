//! The lab's Metrics view, as a Grafana RED dashboard: a service (and instance) picker over
//! panels of requests/s, error %, latency p50/p95/p99, workers and backlog, the connection pool,
//! the heap and GC pauses, a cache's keys and hit ratio, queues, retries and breaker state.
//! Plotters draws each panel into an SVG string; a layer of one transparent column per time
//! bucket above it shows that bucket's values on hover, and on the latency panel a click opens
//! the bucket's exemplar (its slowest trace).

use std::rc::Rc;

use faultline_engine::Duration;
use faultline_engine::query::metrics::{
    ServiceMetrics, exemplar, metric_services, service_metrics,
};
use faultline_engine::telemetry::TraceId;
use plotters::prelude::*;
use web_sys::HtmlSelectElement;
use yew::prelude::*;

use super::LabRun;
use super::overview::duration;
use super::tabs::View;
use super::url::LabQuery;

/// While the run moves, the charts are redrawn at most this often (in wall milliseconds).
const REFRESH_MS: f64 = 500.0;
/// A panel's drawing size in SVG units; CSS scales it to the panel's width.
const WIDTH: u32 = 520;
const HEIGHT: u32 = 190;
/// Axes, grid and labels are drawn in this colour, then rewritten to `currentColor` so they
/// follow the theme's text colour (plotters cannot read CSS variables).
const INK: RGBColor = RGBColor(1, 2, 3);

/// Series colours, Grafana's classic palette at middle lightness so they read on light and
/// dark panels alike.
pub const BLUE: &str = "#3274d9";
const GREEN: &str = "#56a64b";
pub const ORANGE: &str = "#ff780a";
const RED: &str = "#e02f44";
const PURPLE: &str = "#a352cc";
const TEAL: &str = "#12a8a8";
const PALETTE: [&str; 6] = [BLUE, ORANGE, PURPLE, TEAL, GREEN, RED];

/// How a panel's values read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unit {
    PerSecond,
    Percent,
    /// Values in milliseconds.
    Millis,
    Count,
    /// Values in megabytes.
    Megabytes,
    /// 0 closed, 1 half-open, 2 open.
    Breaker,
}

impl Unit {
    fn axis(self, v: f64) -> String {
        match self {
            Unit::PerSecond => format!("{}/s", short(v)),
            Unit::Percent => format!("{}%", short(v)),
            Unit::Millis if v >= 1_000.0 => format!("{} s", short(v / 1_000.0)),
            Unit::Millis => format!("{} ms", short(v)),
            // Gauges count whole things: no label between them.
            Unit::Count if v != v.trunc() => String::new(),
            Unit::Count => short(v),
            Unit::Megabytes => format!("{} MB", short(v)),
            Unit::Breaker => breaker_name(v).to_string(),
        }
    }

    fn value(self, v: f64) -> String {
        match self {
            Unit::PerSecond => format!("{v:.1}/s"),
            Unit::Percent => format!("{v:.2}%"),
            Unit::Millis => duration(Duration((v * 1_000.0) as u64)),
            Unit::Count => format!("{v:.0}"),
            Unit::Megabytes => format!("{v:.0} MB"),
            Unit::Breaker => breaker_name(v).to_string(),
        }
    }
}

fn breaker_name(v: f64) -> &'static str {
    match v.round() as i64 {
        0 if v.abs() < 0.01 => "closed",
        1 if (v - 1.0).abs() < 0.01 => "half-open",
        2 if (v - 2.0).abs() < 0.01 => "open",
        _ => "",
    }
}

/// `12`, `2.5`, `0.25`: an axis number without trailing zeros.
fn short(v: f64) -> String {
    let text = if v.abs() >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// `1:05`: seconds of simulated time as a clock.
fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

/// One series of a panel: a value per time bucket, None where nothing was reported.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub name: String,
    pub color: &'static str,
    pub values: Vec<Option<f64>>,
}

/// One panel before drawing.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    pub id: &'static str,
    pub title: String,
    pub unit: Unit,
    pub lines: Vec<Line>,
    /// Whether a click on a bucket opens its exemplar trace.
    pub exemplars: bool,
}

fn line(name: &str, color: &'static str, values: Vec<Option<f64>>) -> Line {
    Line {
        name: name.to_string(),
        color,
        values,
    }
}

/// The dashboard's panels for one service (or instance): the RED three always; the pool, the
/// heap and its collections, the cache, queues and breakers when the service has them.
pub fn charts(m: &ServiceMetrics) -> Vec<Chart> {
    let p = &m.points;
    let ms = |d: Option<Duration>| d.map(|d| d.0 as f64 / 1_000.0);
    let gauge = |g: Option<u32>| g.map(f64::from);
    // Latency and error share mean nothing in a bucket without requests.
    let answered = |b: usize| p[b].red.requests_per_s > 0.0;
    let mut out = vec![
        Chart {
            id: "rate",
            title: "Request rate".into(),
            unit: Unit::PerSecond,
            lines: vec![line(
                "requests",
                BLUE,
                p.iter().map(|p| Some(p.red.requests_per_s)).collect(),
            )],
            exemplars: false,
        },
        Chart {
            id: "errors",
            title: "Errors (5xx)".into(),
            unit: Unit::Percent,
            lines: vec![line(
                "error %",
                RED,
                (0..p.len())
                    .map(|b| answered(b).then(|| 100.0 * p[b].red.error_ratio))
                    .collect(),
            )],
            exemplars: false,
        },
        Chart {
            id: "latency",
            title: "Latency — click a point for its slowest trace".into(),
            unit: Unit::Millis,
            lines: vec![
                line("p50", GREEN, p.iter().map(|p| ms(p.red.p50)).collect()),
                line("p95", ORANGE, p.iter().map(|p| ms(p.red.p95)).collect()),
                line("p99", RED, p.iter().map(|p| ms(p.red.p99)).collect()),
            ],
            exemplars: true,
        },
        Chart {
            id: "saturation",
            title: "Workers busy and backlog".into(),
            unit: Unit::Count,
            lines: vec![
                line(
                    "busy workers",
                    PURPLE,
                    p.iter().map(|p| gauge(p.busy_workers)).collect(),
                ),
                line(
                    "backlog",
                    ORANGE,
                    p.iter().map(|p| gauge(p.backlog)).collect(),
                ),
            ],
            exemplars: false,
        },
    ];
    if m.has_pool {
        out.push(Chart {
            id: "pool",
            title: "Connection pool".into(),
            unit: Unit::Count,
            lines: vec![
                line(
                    "in use",
                    BLUE,
                    p.iter().map(|p| gauge(p.pool_in_use)).collect(),
                ),
                line(
                    "waiters",
                    RED,
                    p.iter().map(|p| gauge(p.pool_waiters)).collect(),
                ),
            ],
            exemplars: false,
        });
    }
    if m.has_gc {
        out.push(Chart {
            id: "heap",
            title: "Heap".into(),
            unit: Unit::Megabytes,
            lines: vec![
                line("used", PURPLE, p.iter().map(|p| p.heap_used_mb).collect()),
                line("size", TEAL, p.iter().map(|p| p.heap_max_mb).collect()),
            ],
            exemplars: false,
        });
        out.push(Chart {
            id: "gc",
            title: "GC pause time".into(),
            unit: Unit::Millis,
            lines: vec![line(
                "paused",
                ORANGE,
                p.iter().map(|p| ms(p.gc_pause)).collect(),
            )],
            exemplars: false,
        });
    }
    if m.has_cache {
        out.push(Chart {
            id: "cache-keys",
            title: "Cache keys".into(),
            unit: Unit::Count,
            lines: vec![line(
                "keys",
                BLUE,
                p.iter().map(|p| gauge(p.cache_keys)).collect(),
            )],
            exemplars: false,
        });
        out.push(Chart {
            id: "cache-hits",
            title: "Cache hit ratio".into(),
            unit: Unit::Percent,
            lines: vec![line(
                "hit ratio",
                GREEN,
                p.iter()
                    .map(|p| p.cache_hit_ratio.map(|r| 100.0 * r))
                    .collect(),
            )],
            exemplars: false,
        });
    }
    if !m.queues.is_empty() {
        let colors = PALETTE.iter().cycle();
        out.push(Chart {
            id: "queue-depth",
            title: "Queue depth".into(),
            unit: Unit::Count,
            lines: m
                .queues
                .iter()
                .zip(colors.clone())
                .map(|(q, c)| line(&q.name, c, q.depth.iter().map(|d| gauge(*d)).collect()))
                .collect(),
            exemplars: false,
        });
        out.push(Chart {
            id: "queue-lag",
            title: "Queue lag (oldest message)".into(),
            unit: Unit::Millis,
            lines: m
                .queues
                .iter()
                .zip(colors)
                .map(|(q, c)| line(&q.name, c, q.lag.iter().map(|d| ms(*d)).collect()))
                .collect(),
            exemplars: false,
        });
    }
    out.push(Chart {
        id: "retries",
        title: "Retries sent".into(),
        unit: Unit::PerSecond,
        lines: vec![line(
            "retries",
            ORANGE,
            p.iter().map(|p| Some(p.retries_per_s)).collect(),
        )],
        exemplars: false,
    });
    if !m.breakers.is_empty() {
        out.push(Chart {
            id: "breakers",
            title: "Circuit breakers".into(),
            unit: Unit::Breaker,
            lines: m
                .breakers
                .iter()
                .zip(PALETTE.iter().cycle())
                .map(|(b, c)| {
                    let states = b.state.iter().map(|s| s.map(f64::from)).collect();
                    line(&format!("→ {}", b.peer), c, states)
                })
                .collect(),
            exemplars: false,
        });
    }
    out
}

/// A drawn panel: the plotters SVG, where its plot area lies (in SVG units) for the hover
/// layer, and the values per bucket for the tooltip.
#[derive(Clone, Debug, PartialEq)]
pub struct Drawn {
    pub chart: Chart,
    pub svg: AttrValue,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
    /// Length of a bucket in seconds.
    pub bucket_s: f64,
}

impl Drawn {
    fn buckets(&self) -> usize {
        self.chart.lines.first().map_or(0, |l| l.values.len())
    }

    /// The left edge of bucket `b` in SVG units.
    fn x(&self, b: usize) -> f64 {
        let n = self.buckets().max(1) as f64;
        self.left + (self.right - self.left) * b as f64 / n
    }

    /// `1:05 · p50 12.0 ms · p95 …`: a bucket's values on one line, for its `<title>`.
    fn summary(&self, b: usize) -> String {
        let mut text = clock(b as f64 * self.bucket_s);
        for l in &self.chart.lines {
            let v = l.values[b].map_or("—".into(), |v| self.chart.unit.value(v));
            text.push_str(&format!(" · {} {v}", l.name));
        }
        text
    }
}

/// Breaks a series at missing buckets; a point sits mid-bucket, a step spans its bucket.
fn segments(values: &[Option<f64>], steps: bool) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    let mut run: Vec<(f64, f64)> = Vec::new();
    for (b, v) in values.iter().enumerate() {
        match v {
            Some(v) if steps => run.extend([(b as f64, *v), (b as f64 + 1.0, *v)]),
            Some(v) => run.push((b as f64 + 0.5, *v)),
            None if !run.is_empty() => out.push(std::mem::take(&mut run)),
            None => {}
        }
    }
    if !run.is_empty() {
        out.push(run);
    }
    out
}

fn rgb(hex: &str) -> RGBColor {
    let channel = |at: usize| u8::from_str_radix(hex.get(at..at + 2).unwrap_or("80"), 16);
    RGBColor(
        channel(1).unwrap_or(128),
        channel(3).unwrap_or(128),
        channel(5).unwrap_or(128),
    )
}

/// Draws a panel with plotters' SVG backend. `bucket_s` is the length of a bucket in seconds.
pub fn draw(chart: Chart, bucket_s: f64) -> Drawn {
    let n = chart.lines.first().map_or(0, |l| l.values.len()).max(1);
    let steps = chart.unit == Unit::Breaker;
    let (lo, hi) = if steps {
        (-0.25, 2.25)
    } else {
        let max = chart
            .lines
            .iter()
            .flat_map(|l| l.values.iter().flatten())
            .fold(0.0f64, |m, v| m.max(*v));
        let floor = if chart.unit == Unit::Percent {
            1.0
        } else {
            0.5
        };
        (0.0, (max * 1.15).max(floor))
    };
    let mut svg = String::new();
    let mut area = (0.0, WIDTH as f64, 0.0, HEIGHT as f64);
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let built = ChartBuilder::on(&root)
            .margin_top(8)
            .margin_right(18)
            .margin_left(2)
            .x_label_area_size(20)
            .y_label_area_size(if steps { 64 } else { 50 })
            .build_cartesian_2d(0f64..n as f64, lo..hi);
        if let Ok(mut c) = built {
            let unit = chart.unit;
            let x_label = |x: &f64| clock(x * bucket_s);
            let y_label = |y: &f64| unit.axis(*y);
            let _ = c
                .configure_mesh()
                .disable_x_mesh()
                .bold_line_style(INK.mix(0.1))
                .light_line_style(TRANSPARENT)
                .axis_style(INK.mix(0.25))
                .set_tick_mark_size(LabelAreaPosition::Left, 0)
                .label_style(("sans-serif", 14).into_font().color(&INK.mix(0.7)))
                .x_labels(8)
                .y_labels(if steps { 3 } else { 5 })
                .x_label_formatter(&x_label)
                .y_label_formatter(&y_label)
                .draw();
            for l in &chart.lines {
                let color = rgb(l.color);
                for seg in segments(&l.values, steps) {
                    if !steps && chart.lines.len() <= 2 {
                        // Grafana's light fill under a line.
                        let (first, last) = (seg[0].0, seg[seg.len() - 1].0);
                        let mut outline = seg.clone();
                        outline.extend([(last, lo), (first, lo)]);
                        let _ = c.draw_series(std::iter::once(Polygon::new(
                            outline,
                            color.mix(0.1).filled(),
                        )));
                    }
                    let _ = c.draw_series(std::iter::once(PathElement::new(
                        seg,
                        color.stroke_width(2),
                    )));
                }
            }
            let (left, top) = c.backend_coord(&(0.0, hi));
            let (right, bottom) = c.backend_coord(&(n as f64, lo));
            area = (
                f64::from(left),
                f64::from(right),
                f64::from(top),
                f64::from(bottom),
            );
        }
        let _ = root.present();
    }
    let svg = svg.replace("#010203", "currentColor");
    Drawn {
        chart,
        svg: AttrValue::from(svg),
        left: area.0,
        right: area.1,
        top: area.2,
        bottom: area.3,
        bucket_s,
    }
}

/// A number that changes when the charts should be redrawn: at every move when the run is
/// paused or finished, at most every `REFRESH_MS` while it plays.
#[hook]
fn use_refresh(lab: &LabRun) -> u64 {
    let state = use_mut_ref(|| (0u64, f64::NEG_INFINITY, u64::MAX));
    let mut s = state.borrow_mut();
    if s.2 != lab.version {
        let now = crate::frames::now_ms();
        if !lab.moving || now - s.1 >= REFRESH_MS {
            *s = (s.0 + 1, now, lab.version);
        }
    }
    s.0
}

struct Dashboard {
    services: Vec<String>,
    service: Option<String>,
    instances: Vec<u16>,
    panels: Vec<Rc<Drawn>>,
}

#[derive(Properties, PartialEq)]
pub struct MetricsViewProps {
    pub query: LabQuery,
    /// Opens another view: a clicked latency point opens its exemplar in the Traces view.
    pub on_navigate: Callback<LabQuery>,
}

/// The lab's URL with the Traces view open on `trace`.
fn exemplar_query(query: &LabQuery, trace: TraceId) -> LabQuery {
    LabQuery {
        view: View::Traces.query_value(),
        trace: Some(trace.to_string()),
        ..query.clone()
    }
}

#[component]
pub fn MetricsView(props: &MetricsViewProps) -> Html {
    let lab = use_context::<LabRun>().expect("the lab provides its run");
    let refresh = use_refresh(&lab);
    // The service and instance come from the URL: the lab's focus (a service clicked on the
    // map) is the service shown here, and a pick here focuses the other views on it too.
    let (service, instance) = (props.query.service.clone(), props.query.instance);
    // The bucket under the pointer, shared by every panel as Grafana's shared crosshair, and
    // the panel it is over (which shows the tooltip).
    let hovered = use_state(|| None::<(usize, usize)>);
    let dashboard = {
        let run = lab.run.clone();
        use_memo(
            (refresh, service, instance),
            move |(_, service, instance)| {
                let r = run.borrow();
                let t = r.telemetry();
                let services = metric_services(t);
                let service = service
                    .clone()
                    .filter(|s| services.contains(s))
                    .or_else(|| services.first().cloned());
                let m = service
                    .as_deref()
                    .and_then(|s| service_metrics(t, s, *instance));
                let bucket_s = t.metrics.bucket.0 as f64 / 1_000_000.0;
                Dashboard {
                    instances: m.as_ref().map(|m| m.instances.clone()).unwrap_or_default(),
                    panels: m
                        .as_ref()
                        .map(charts)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|c| Rc::new(draw(c, bucket_s)))
                        .collect(),
                    services,
                    service,
                }
            },
        )
    };
    let on_service = {
        let (on_navigate, query) = (props.on_navigate.clone(), props.query.clone());
        Callback::from(move |e: Event| {
            let select: HtmlSelectElement = e.target_unchecked_into();
            on_navigate.emit(LabQuery {
                service: Some(select.value()),
                operation: None,
                instance: None,
                ..query.clone()
            });
        })
    };
    let on_instance = {
        let (on_navigate, query) = (props.on_navigate.clone(), props.query.clone());
        Callback::from(move |e: Event| {
            let select: HtmlSelectElement = e.target_unchecked_into();
            on_navigate.emit(LabQuery {
                instance: select.value().parse().ok(),
                ..query.clone()
            });
        })
    };
    let on_hover = {
        let hovered = hovered.clone();
        Callback::from(move |h: Option<(usize, usize)>| {
            if *hovered != h {
                hovered.set(h);
            }
        })
    };
    let on_pick = {
        let (run, query) = (lab.run.clone(), props.query.clone());
        let on_exemplar = props
            .on_navigate
            .reform(move |trace: TraceId| exemplar_query(&query, trace));
        let service = dashboard.service.clone();
        Callback::from(move |bucket: usize| {
            let Some(service) = service.as_deref() else {
                return;
            };
            let r = run.borrow();
            if let Some(trace) = exemplar(r.telemetry(), service, instance, bucket as u32) {
                on_exemplar.emit(trace);
            }
        })
    };
    let current = dashboard.service.clone().unwrap_or_default();
    html! {
        <section class="metrics" aria-label="Metrics">
            <div class="metrics-toolbar">
                <label class="metrics-picker">
                    <span>{ "Service" }</span>
                    <select id="metrics-service" onchange={on_service}>
                        for s in dashboard.services.iter() {
                            <option value={s.clone()} selected={*s == current}>{ s.clone() }</option>
                        }
                    </select>
                </label>
                <label class="metrics-picker">
                    <span>{ "Instance" }</span>
                    <select id="metrics-instance" onchange={on_instance}>
                        <option value="" selected={instance.is_none()}>{ "all instances" }</option>
                        for i in dashboard.instances.iter().copied() {
                            <option value={i.to_string()} selected={instance == Some(i)}>
                                { format!("{current}-{i}") }
                            </option>
                        }
                    </select>
                </label>
                <span class="metrics-note">{
                    if lab.moving { "redrawn twice a second as the run plays" } else { "1 s buckets · hover for values" }
                }</span>
            </div>
            if dashboard.panels.is_empty() {
                <p class="muted">{ "No metrics yet: play the run." }</p>
            }
            <div class="metrics-grid">
                for (i, d) in dashboard.panels.iter().enumerate() {
                    <Panel
                        key={d.chart.id}
                        index={i}
                        drawn={d.clone()}
                        hovered={hovered.map(|(panel, b)| (b, panel == i))}
                        on_hover={on_hover.clone()}
                        on_pick={d.chart.exemplars.then(|| on_pick.clone())}
                    />
                }
            </div>
        </section>
    }
}

/// One drawn panel with its hover layer; the sandbox draws its comparison charts with it too.
#[derive(Properties, PartialEq)]
pub struct PanelProps {
    pub index: usize,
    pub drawn: Rc<Drawn>,
    /// The hovered bucket, and whether the pointer is over this panel.
    pub hovered: Option<(usize, bool)>,
    pub on_hover: Callback<Option<(usize, usize)>>,
    pub on_pick: Option<Callback<usize>>,
}

#[component]
pub fn Panel(props: &PanelProps) -> Html {
    let d = &props.drawn;
    let index = props.index;
    let n = d.buckets();
    let (w, h) = (f64::from(WIDTH), f64::from(HEIGHT));
    let cross = props.hovered.map(|(b, _)| b).filter(|&b| b < n);
    let tooltip = props
        .hovered
        .filter(|(b, over)| *over && *b < n)
        .map(|(b, _)| {
            // Beside the pointer's column, flipped to its left past the middle.
            let mid = (d.x(b) + d.x(b + 1)) / 2.0;
            let side = if mid > w * 0.55 {
                format!("right: {:.2}%", 100.0 * (w - d.x(b)) / w + 1.0)
            } else {
                format!("left: {:.2}%", 100.0 * d.x(b + 1) / w + 1.0)
            };
            html! {
                <div class="chart-tooltip" role="status" style={side}>
                    <div class="chart-tooltip-time">{ clock(b as f64 * d.bucket_s) }</div>
                    for l in d.chart.lines.iter() {
                        <div class="chart-tooltip-row">
                            <span class="swatch" style={format!("background: {}", l.color)}></span>
                            <span class="chart-tooltip-name">{ l.name.clone() }</span>
                            <span class="chart-tooltip-value">{
                                l.values[b].map_or("—".into(), |v| d.chart.unit.value(v))
                            }</span>
                        </div>
                    }
                    if props.on_pick.is_some() {
                        <div class="chart-tooltip-hint">{ "click or Enter: open the slowest trace" }</div>
                    }
                </div>
            }
        });
    let onmouseleave = props.on_hover.reform(|_: MouseEvent| None);
    // The keyboard reads the panel as the pointer does: arrows move the crosshair bucket by
    // bucket (its tooltip is a live region), Enter opens the bucket's trace, Esc leaves it.
    let onkeydown = {
        let (on_hover, on_pick) = (props.on_hover.clone(), props.on_pick.clone());
        let current = props
            .hovered
            .filter(|(b, over)| *over && *b < n)
            .map(|(b, _)| b);
        Callback::from(move |e: KeyboardEvent| {
            if n == 0 {
                return;
            }
            let next = match e.key().as_str() {
                "ArrowRight" => current.map_or(0, |b| (b + 1).min(n - 1)),
                "ArrowLeft" => current.map_or(n - 1, |b| b.saturating_sub(1)),
                "Home" => 0,
                "End" => n - 1,
                "Enter" => {
                    if let (Some(pick), Some(b)) = (&on_pick, current) {
                        e.prevent_default();
                        pick.emit(b);
                    }
                    return;
                }
                "Escape" => {
                    on_hover.emit(None);
                    return;
                }
                _ => return,
            };
            e.prevent_default();
            e.stop_propagation();
            on_hover.emit(Some((index, next)));
        })
    };
    let onblur = props.on_hover.reform(|_: FocusEvent| None);
    let keys_hint = if props.on_pick.is_some() {
        "left and right arrows read the values, Enter opens the bucket's slowest trace"
    } else {
        "left and right arrows read the values"
    };
    let class = classes!("chart-panel", props.on_pick.is_some().then_some("pickable"));
    html! {
        <figure {class} id={format!("chart-{}", d.chart.id)} data-buckets={n.to_string()}>
            <figcaption class="chart-header">
                <span class="chart-title">{ d.chart.title.clone() }</span>
            </figcaption>
            <div class="chart-body" {onmouseleave} {onkeydown} {onblur} tabindex="0" role="group"
                 aria-label={format!("{}: {keys_hint}", d.chart.title)}>
                <div class="chart-svg">{ Html::from_html_unchecked(d.svg.clone()) }</div>
                <svg class="chart-overlay" viewBox={format!("0 0 {w} {h}")}
                     preserveAspectRatio="none" aria-hidden="true">
                    if let Some(b) = cross {
                        <line class="chart-crosshair"
                              x1={format!("{:.1}", (d.x(b) + d.x(b + 1)) / 2.0)}
                              x2={format!("{:.1}", (d.x(b) + d.x(b + 1)) / 2.0)}
                              y1={format!("{:.1}", d.top)} y2={format!("{:.1}", d.bottom)} />
                    }
                    for b in 0..n {
                        <rect class="chart-bucket" data-bucket={b.to_string()}
                              x={format!("{:.2}", d.x(b))} y={format!("{:.1}", d.top)}
                              width={format!("{:.2}", d.x(b + 1) - d.x(b))}
                              height={format!("{:.1}", (d.bottom - d.top).max(0.0))}
                              onmouseenter={props.on_hover.reform(move |_: MouseEvent| Some((index, b)))}
                              onclick={props.on_pick.as_ref().map(|p| p.reform(move |_: MouseEvent| b))}>
                            <title>{ d.summary(b) }</title>
                        </rect>
                    }
                </svg>
                { for tooltip }
            </div>
            <ul class="chart-legend">
                for l in d.chart.lines.iter() {
                    <li><span class="swatch" style={format!("background: {}", l.color)}></span>{ l.name.clone() }</li>
                }
            </ul>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_engine::mesh::default_mesh;

    #[test]
    fn axis_and_tooltip_numbers_read_as_grafana_writes_them() {
        assert_eq!(short(12.0), "12");
        assert_eq!(short(2.5), "2.5");
        assert_eq!(short(0.25), "0.25");
        assert_eq!(Unit::Millis.axis(1_500.0), "1.5 s");
        assert_eq!(Unit::Millis.axis(250.0), "250 ms");
        assert_eq!(Unit::Percent.value(2.0), "2.00%");
        assert_eq!(Unit::Megabytes.axis(256.0), "256 MB");
        assert_eq!(Unit::Megabytes.value(63.6), "64 MB");
        assert_eq!(Unit::Breaker.axis(2.0), "open");
        assert_eq!(Unit::Breaker.axis(0.5), "");
        assert_eq!(clock(65.0), "1:05");
        assert_eq!(
            segments(&[Some(1.0), None, Some(2.0), Some(3.0)], false),
            vec![vec![(0.5, 1.0)], vec![(2.5, 2.0), (3.5, 3.0)]]
        );
        assert_eq!(
            segments(&[Some(2.0)], true),
            vec![vec![(0.0, 2.0), (1.0, 2.0)]]
        );
    }

    #[test]
    fn a_breaker_panel_is_a_step_line_labelled_by_state() {
        let states = [0.0, 0.0, 2.0, 2.0, 1.0, 0.0].map(Some).to_vec();
        let chart = Chart {
            id: "breakers",
            title: "Circuit breakers".into(),
            unit: Unit::Breaker,
            lines: vec![line("→ payments", BLUE, states)],
            exemplars: false,
        };
        let d = draw(chart, 1.0);
        for label in [">\nclosed\n<", ">\nhalf-open\n<", ">\nopen\n<"] {
            assert!(d.svg.contains(label), "{label} in {}", d.svg);
        }
        assert!(!d.svg.contains("0.5\n<"));
        // Two points a bucket: the line steps.
        let stroke = d.svg.matches("stroke=\"#3274D9\"").count();
        assert_eq!(stroke, 1, "one path, {}", d.svg);
        assert_eq!(d.summary(2), "0:02 · → payments open");
    }

    #[test]
    fn panels_draw_as_svg_with_the_hover_layer_on_the_plot_area() {
        let t = faultline_engine::run(&default_mesh(40.0, 8_000), 3).unwrap();
        let m = service_metrics(&t, "gateway", None).unwrap();
        let panels = charts(&m);
        let ids: Vec<&str> = panels.iter().map(|c| c.id).collect();
        assert_eq!(&ids[..4], &["rate", "errors", "latency", "saturation"]);
        assert!(ids.contains(&"retries"));
        let latency = panels.iter().find(|c| c.id == "latency").unwrap().clone();
        assert_eq!(latency.lines.len(), 3);
        let d = draw(latency, 1.0);
        assert!(d.svg.starts_with("<svg"), "{}", &d.svg[..80]);
        assert!(d.svg.contains("<polyline") || d.svg.contains("<path"));
        assert!(d.svg.contains("currentColor") && !d.svg.contains("#010203"));
        assert!(d.svg.contains("<text"), "axis labels");
        assert!(0.0 < d.left && d.left < d.right && d.right <= f64::from(WIDTH));
        assert!(0.0 <= d.top && d.top < d.bottom && d.bottom <= f64::from(HEIGHT));
        assert_eq!(d.x(0), d.left);
        assert!((d.x(d.buckets()) - d.right).abs() < 1e-9);
        let q = LabQuery {
            view: Some("metrics".into()),
            seed: Some(7),
            ..LabQuery::default()
        };
        let to = exemplar_query(&q, TraceId(0x4bf92f3577b34da6a3ce929d0e0e4736));
        assert_eq!(to.view.as_deref(), Some("traces"));
        assert_eq!(
            to.trace.as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(to.seed, Some(7));
        let s = d.summary(3);
        assert!(s.starts_with("0:03 · p50 ") && s.contains(" ms"), "{s}");
    }
}
