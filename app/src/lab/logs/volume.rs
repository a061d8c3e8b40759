//! The log volume histogram: matching lines per time slice, stacked by level (error on top), as
//! Grafana Explore draws it above the lines. Plain SVG; each bar's tooltip gives its counts.

use faultline_engine::SimTime;
use faultline_engine::query::logs::VolumeBar;
use yew::prelude::*;

use crate::lab::playback::clock;

#[derive(Properties, PartialEq)]
pub struct VolumeProps {
    pub bars: Vec<VolumeBar>,
    /// The end of the last bar.
    pub until: SimTime,
}

const LEVELS: [&str; 4] = ["debug", "info", "warn", "error"];
const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 90.0;
const AXIS: f64 = 16.0;

#[component]
pub fn Volume(props: &VolumeProps) -> Html {
    let most = props
        .bars
        .iter()
        .map(|b| b.by_level.iter().sum::<u32>())
        .max()
        .unwrap_or(0)
        .max(1);
    let n = props.bars.len().max(1) as f64;
    let slot = WIDTH / n;
    let plot = HEIGHT - AXIS;
    let start = props.bars.first().map_or(SimTime::ZERO, |b| b.start);
    let span = props.until.0.saturating_sub(start.0).max(1) as f64;
    // Five ticks on the time axis.
    let ticks: Vec<(f64, String)> = (0..=4)
        .map(|k| {
            let t = SimTime(start.0 + (span * f64::from(k) / 4.0) as u64);
            (WIDTH * f64::from(k) / 4.0, clock(t))
        })
        .collect();
    html! {
        <svg class="log-volume" viewBox={format!("0 0 {WIDTH} {HEIGHT}")} preserveAspectRatio="none"
             role="img" aria-label="Log lines over time, by level">
            for (i, bar) in props.bars.iter().enumerate() {
                { bar_stack(i as f64 * slot, slot, plot, most, bar) }
            }
            <line class="axis" x1="0" x2={WIDTH.to_string()} y1={plot.to_string()} y2={plot.to_string()} />
            for (k, (x, label)) in ticks.into_iter().enumerate() {
                <text class="vol-tick" x={x.to_string()} y={(HEIGHT - 3.0).to_string()}
                      text-anchor={match k { 0 => "start", 4 => "end", _ => "middle" }}>{ label }</text>
            }
        </svg>
    }
}

fn bar_stack(x: f64, slot: f64, plot: f64, most: u32, bar: &VolumeBar) -> Html {
    let total: u32 = bar.by_level.iter().sum();
    let title = format!(
        "{}: {total} lines ({})",
        clock(bar.start),
        LEVELS
            .iter()
            .zip(bar.by_level)
            .filter(|(_, n)| *n > 0)
            .map(|(l, n)| format!("{n} {l}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut y = plot;
    let width = (slot - 1.0).max(0.5);
    html! {
        <g class="bar">
            <title>{ title }</title>
            <rect class="hit" x={x.to_string()} y="0" width={slot.to_string()} height={plot.to_string()} />
            for (level, n) in LEVELS.iter().zip(bar.by_level) {
                if n > 0 {
                    {{
                        let h = plot * f64::from(n) / f64::from(most);
                        y -= h;
                        html! { <rect class={format!("lv-{level}")} x={x.to_string()} y={y.to_string()}
                                      width={width.to_string()} height={h.to_string()} /> }
                    }}
                }
            }
        </g>
    }
}
