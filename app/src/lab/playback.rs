//! The playback bar: play and pause, the speed, jump to the end, start again, and the simulated
//! clock against the run's length, with a progress bar while the run is seeking.

use faultline_engine::SimTime;
use yew::prelude::*;

use super::SPEEDS;
use crate::components::icon::{Icon, IconName};

#[derive(Properties, PartialEq)]
pub struct PlaybackBarProps {
    pub now: SimTime,
    pub duration: SimTime,
    pub finished: bool,
    pub progress: f64,
    pub playing: bool,
    pub seeking: bool,
    pub speed: u32,
    pub on_play: Callback<()>,
    pub on_pause: Callback<()>,
    pub on_end: Callback<()>,
    pub on_speed: Callback<u32>,
    pub on_restart: Callback<()>,
}

/// `m:ss.s` of simulated time.
pub fn clock(t: SimTime) -> String {
    let tenths = t.0 / 100_000;
    format!("{}:{:02}.{}", tenths / 600, (tenths / 10) % 60, tenths % 10)
}

#[component]
pub fn PlaybackBar(props: &PlaybackBarProps) -> Html {
    let toggle = if props.playing {
        let on_pause = props.on_pause.clone();
        html! {
            <button class="button" id="lab-pause" onclick={move |_| on_pause.emit(())}
                    ><Icon name={IconName::Pause} />{ "Pause" }</button>
        }
    } else {
        let on_play = props.on_play.clone();
        html! {
            <button class="button primary" id="lab-play" onclick={move |_| on_play.emit(())}
                    disabled={props.finished}><Icon name={IconName::Play} />{ "Play" }</button>
        }
    };
    let on_end = props.on_end.clone();
    let on_restart = props.on_restart.clone();
    let on_speed = props.on_speed.clone();
    let onchange = move |e: Event| {
        let select: web_sys::HtmlSelectElement = e.target_unchecked_into();
        if let Ok(s) = select.value().parse() {
            on_speed.emit(s);
        }
    };
    let state = if props.finished {
        "finished"
    } else if props.seeking {
        "running ahead…"
    } else if props.playing {
        "playing"
    } else {
        "paused"
    };
    html! {
        <div class="playback" role="group" aria-label="Playback">
            { toggle }
            <button class="button" id="lab-end" onclick={move |_| on_end.emit(())}
                    disabled={props.finished || props.seeking}><Icon name={IconName::SkipEnd} />{ "Jump to end" }</button>
            <button class="button" id="lab-restart" onclick={move |_| on_restart.emit(())}><Icon name={IconName::Restart} />{ "Restart" }</button>
            <label class="playback-speed">
                <span>{ "Speed" }</span>
                <select id="lab-speed" {onchange} aria-label="Playback speed">
                    for s in SPEEDS {
                        <option value={s.to_string()} selected={s == props.speed}>{ format!("{s}×") }</option>
                    }
                </select>
            </label>
            <div class="playback-clock" aria-live="off">
                <span class="clock-now" id="lab-clock">{ clock(props.now) }</span>
                <span class="muted">{ format!(" / {}", clock(props.duration)) }</span>
                <span class={classes!("playback-state", props.finished.then_some("done"))} id="lab-state">{ state }</span>
            </div>
            <progress class="playback-progress" max="1" value={props.progress.to_string()}
                      aria-label="Run progress" />
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::clock;
    use faultline_engine::SimTime;

    #[test]
    fn the_clock_reads_minutes_seconds_and_tenths() {
        assert_eq!(clock(SimTime::ZERO), "0:00.0");
        assert_eq!(clock(SimTime::from_ms(61_250)), "1:01.2");
        assert_eq!(clock(SimTime::from_ms(300_000)), "5:00.0");
    }
}
