//! The playback bar rendered in its states: the simulated clock against the run's length, the
//! play or pause button, the speeds, and what is disabled once the run has finished.

use faultline_engine::SimTime;
use yew::Callback;

use super::html::{by_id, find};
use super::{finished_default_run, render};
use crate::lab::SPEEDS;
use crate::lab::playback::{PlaybackBar, PlaybackBarProps};

fn bar(now: SimTime, duration: SimTime, finished: bool, playing: bool, speed: u32) -> String {
    render::<PlaybackBar>(PlaybackBarProps {
        now,
        duration,
        finished,
        progress: if finished { 1.0 } else { 0.2 },
        playing,
        seeking: false,
        speed,
        on_play: Callback::noop(),
        on_pause: Callback::noop(),
        on_end: Callback::noop(),
        on_speed: Callback::noop(),
        on_restart: Callback::noop(),
    })
}

/// `m:ss.s` read back as tenths of a second.
fn tenths(clock: &str) -> u64 {
    let (minutes, seconds) = clock.split_once(':').expect("m:ss.s");
    let (seconds, tenth) = seconds.split_once('.').expect("ss.s");
    let n = |s: &str| s.parse::<u64>().expect("digits");
    (n(minutes) * 60 + n(seconds)) * 10 + n(tenth)
}

#[test]
fn while_playing_the_clock_runs_and_the_button_pauses() {
    let page = bar(
        SimTime::from_ms(61_250),
        SimTime::from_ms(300_000),
        false,
        true,
        25,
    );
    assert_eq!(by_id(&page, "lab-clock").unwrap().text(), "1:01.2");
    assert!(page.contains(" / 5:00.0"));
    assert_eq!(by_id(&page, "lab-state").unwrap().text(), "playing");
    assert_eq!(by_id(&page, "lab-pause").unwrap().text(), "Pause");
    assert!(by_id(&page, "lab-play").is_none());
    let end = by_id(&page, "lab-end").unwrap();
    assert_eq!(end.text(), "Jump to end");
    assert!(end.attr("disabled").is_none());
    assert_eq!(by_id(&page, "lab-restart").unwrap().text(), "Restart");
    let options = find(&page, "option", "");
    assert_eq!(options.len(), SPEEDS.len());
    let selected: Vec<String> = options
        .iter()
        .filter(|o| o.open.contains(" selected"))
        .map(|o| o.text())
        .collect();
    assert_eq!(selected, ["25×"]);
}

#[test]
fn a_finished_run_shows_its_end_and_offers_only_a_restart() {
    let run = finished_default_run(3_000);
    let page = bar(run.now(), run.duration, run.finished(), false, 10);
    // The clock stops where the run ended: at or after the last arrival, at 3 s, once the
    // requests in flight have drained.
    let clock = by_id(&page, "lab-clock").unwrap().text();
    assert_eq!(tenths(&clock), run.now().0 / 100_000, "{clock}");
    assert!(tenths(&clock) >= 30, "{clock}");
    assert!(page.contains(" / 0:03.0"));
    assert_eq!(by_id(&page, "lab-state").unwrap().text(), "finished");
    let play = by_id(&page, "lab-play").unwrap();
    assert_eq!(play.text(), "Play");
    assert!(play.attr("disabled").is_some());
    assert!(by_id(&page, "lab-end").unwrap().attr("disabled").is_some());
    assert!(
        by_id(&page, "lab-restart")
            .unwrap()
            .attr("disabled")
            .is_none()
    );
}
