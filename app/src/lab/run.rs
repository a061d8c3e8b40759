//! One simulated run as the lab shows it: the scenario and seed, the simulation while it plays,
//! and its telemetry and ground truth once it has finished. Advancing is budgeted in wall time,
//! so a frame never waits long on the engine however far it is asked to go.

use faultline_engine::{GroundTruth, Scenario, ScenarioError, SimTime, Simulation, Telemetry};

/// Simulated time run between two checks of the wall-time budget: a quarter of a second is a
/// few dozen requests at lesson rates, well under a millisecond of work.
const STEP_US: u64 = 250_000;

enum State {
    Playing(Box<Simulation>),
    Finished {
        telemetry: Box<Telemetry>,
        /// What was really wrong; None for telemetry read from elsewhere (a file, a fixture).
        truth: Option<Box<GroundTruth>>,
        ended: SimTime,
    },
}

pub struct Run {
    pub seed: u64,
    /// When arrivals stop; requests still in flight then finish after it.
    pub duration: SimTime,
    state: State,
}

impl Run {
    pub fn start(scenario: Scenario, seed: u64) -> Result<Run, Vec<ScenarioError>> {
        let duration = SimTime::from_ms(scenario.duration_ms);
        let simulation = Simulation::new(scenario, seed)?;
        Ok(Run {
            seed,
            duration,
            state: State::Playing(Box::new(simulation)),
        })
    }

    /// A run that is already over: telemetry read from elsewhere (a file, a fixture).
    pub fn finished_with(telemetry: Telemetry) -> Run {
        let ended = telemetry
            .spans
            .iter()
            .map(|s| s.end().unwrap_or(s.start))
            .max()
            .unwrap_or_default();
        Run {
            seed: 0,
            duration: ended,
            state: State::Finished {
                telemetry: Box::new(telemetry),
                truth: None,
                ended,
            },
        }
    }

    /// The simulated clock: how far the run has got.
    pub fn now(&self) -> SimTime {
        match &self.state {
            State::Playing(simulation) => simulation.now(),
            State::Finished { ended, .. } => *ended,
        }
    }

    pub fn telemetry(&self) -> &Telemetry {
        match &self.state {
            State::Playing(simulation) => simulation.telemetry(),
            State::Finished { telemetry, .. } => telemetry,
        }
    }

    /// The ground truth of a simulated run, once it has finished.
    pub fn truth(&self) -> Option<&GroundTruth> {
        match &self.state {
            State::Finished { truth, .. } => truth.as_deref(),
            State::Playing(_) => None,
        }
    }

    pub fn finished(&self) -> bool {
        matches!(self.state, State::Finished { .. })
    }

    /// Share of the run done, 0 to 1, by the clock against the workload's duration (the last
    /// requests draining after it count as the end).
    pub fn progress(&self) -> f64 {
        if self.finished() {
            return 1.0;
        }
        (self.now().0 as f64 / self.duration.0.max(1) as f64).min(0.999)
    }

    /// Runs the simulation toward `until` in steps, asking `more_time` between them whether the
    /// frame has time left; true once the clock is at `until` (or the run has finished).
    pub fn advance(&mut self, until: SimTime, mut more_time: impl FnMut() -> bool) -> bool {
        loop {
            let State::Playing(simulation) = &mut self.state else {
                return true;
            };
            if simulation.finished() && simulation.now() >= self.duration {
                self.finish();
                return true;
            }
            if simulation.now() >= until {
                return true;
            }
            // Steps end on a fixed grid of STEP_US, whatever the clock was when advancing
            // began, so a run finishes at the same clock however it was played (a reload that
            // seeks to a shared link's clock ends where the run it came from ended).
            let next = (simulation.now().0 / STEP_US + 1).saturating_mul(STEP_US);
            let step = SimTime(next.min(until.0));
            simulation.step_until(step);
            if !more_time() {
                return simulation.now() >= until;
            }
        }
    }

    fn finish(&mut self) {
        let State::Playing(simulation) = &mut self.state else {
            return;
        };
        let ended = simulation.now();
        // Swapped out for a finished placeholder for the moment `finish` takes the simulation.
        let placeholder = State::Finished {
            telemetry: Box::default(),
            truth: None,
            ended,
        };
        let State::Playing(simulation) = std::mem::replace(&mut self.state, placeholder) else {
            return;
        };
        let (telemetry, truth) = simulation.finish();
        self.state = State::Finished {
            telemetry: Box::new(telemetry),
            truth: Some(Box::new(truth)),
            ended,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_engine::mesh::default_mesh;

    #[test]
    fn advancing_in_slices_gives_the_same_run_as_running_it_whole() {
        let scenario = default_mesh(50.0, 4_000);
        let (whole, truth) = Simulation::new(scenario.clone(), 3).unwrap().finish();
        let mut run = Run::start(scenario, 3).unwrap();
        // One step per call, then until the end.
        assert!(!run.advance(SimTime::from_ms(1_000), || false));
        assert!(run.now() > SimTime::ZERO && run.now() <= SimTime::from_ms(1_000));
        assert!(run.advance(SimTime::from_ms(1_000), || true));
        assert_eq!(run.now(), SimTime::from_ms(1_000));
        assert!(!run.finished());
        assert!(run.truth().is_none());
        let spans_so_far = run.telemetry().spans.len();
        assert!(spans_so_far > 0);
        assert!(run.advance(SimTime(u64::MAX), || true));
        assert!(run.finished());
        assert_eq!(run.progress(), 1.0);
        assert!(run.now() >= SimTime::from_ms(4_000));
        assert_eq!(run.telemetry().digest_hex(), whole.digest_hex());
        // The ground truth is kept, the same as a whole run's.
        let kept = run.truth().expect("a finished run keeps its ground truth");
        assert!(kept.charges > 0);
        assert_eq!(kept, &truth);
        assert!(Run::finished_with(whole).truth().is_none());
    }

    #[test]
    fn a_run_ends_at_the_same_clock_however_it_was_played() {
        let scenario = default_mesh(50.0, 2_000);
        let mut straight = Run::start(scenario.clone(), 3).unwrap();
        assert!(straight.advance(SimTime(u64::MAX), || true));
        let mut paused = Run::start(scenario, 3).unwrap();
        assert!(paused.advance(SimTime(1_234_567), || true));
        assert!(paused.advance(SimTime(u64::MAX), || true));
        assert_eq!(paused.now(), straight.now());
        let mut seeking = Run::start(default_mesh(50.0, 2_000), 3).unwrap();
        assert!(seeking.advance(straight.now(), || true));
        assert!(seeking.advance(straight.now(), || true));
        assert!(seeking.finished() && seeking.now() == straight.now());
    }

    #[test]
    fn a_bad_scenario_is_refused_with_its_problems() {
        let mut scenario = default_mesh(50.0, 1_000);
        scenario.services[0].instances = 0;
        let problems = Run::start(scenario, 1).err().unwrap();
        assert!(problems.iter().any(|p| p.field.starts_with("services[0]")));
    }
}
