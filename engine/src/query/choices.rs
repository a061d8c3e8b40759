//! The choices a trace search form offers: the services of a run and each one's operations,
//! gathered as spans arrive (only the spans appended since the last refresh are read).

use std::collections::BTreeSet;

use crate::telemetry::{ServiceId, Sym, Telemetry};

/// Service and operation pairs seen so far in one run's spans.
#[derive(Clone, Debug, Default)]
pub struct SearchChoices {
    /// Spans `[0, seen)` are read.
    seen: u32,
    pairs: BTreeSet<(ServiceId, Sym)>,
}

impl SearchChoices {
    /// Reads the spans appended since the last call (a span's service and operation never
    /// change once it is stored).
    pub fn refresh(&mut self, t: &Telemetry) {
        if self.seen as usize > t.spans.len() {
            *self = SearchChoices::default();
        }
        for s in &t.spans[self.seen as usize..] {
            self.pairs.insert((s.service, s.operation));
        }
        self.seen = t.spans.len() as u32;
    }

    /// Services that have spans, in the scenario's order.
    pub fn services(&self, t: &Telemetry) -> Vec<String> {
        let mut ids: Vec<ServiceId> = self.pairs.iter().map(|(s, _)| *s).collect();
        ids.dedup();
        ids.into_iter()
            .map(|id| t.service_name(id).to_string())
            .collect()
    }

    /// Operations of the named service (of every service when None), sorted by name.
    pub fn operations(&self, t: &Telemetry, service: Option<&str>) -> Vec<String> {
        let names: BTreeSet<&str> = self
            .pairs
            .iter()
            .filter(|(s, _)| service.is_none_or(|name| t.service_name(*s) == name))
            .map(|(_, op)| t.text(*op))
            .collect();
        names.into_iter().map(str::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_grow_with_the_run() {
        let mut sim = crate::Simulation::new(crate::mesh::default_mesh(40.0, 2_000), 3).unwrap();
        let mut choices = SearchChoices::default();
        sim.step_until(crate::SimTime::from_ms(500));
        choices.refresh(sim.telemetry());
        let early = choices.operations(sim.telemetry(), None).len();
        sim.step_until(crate::SimTime::from_ms(2_000));
        choices.refresh(sim.telemetry());
        let t = sim.telemetry();
        let services = choices.services(t);
        assert_eq!(services[0], "gateway", "{services:?}");
        assert!(choices.operations(t, None).len() >= early);
        let gateway = choices.operations(t, Some("gateway"));
        assert!(gateway.iter().any(|op| op == "POST /orders"), "{gateway:?}");
        assert!(choices.operations(t, Some("nobody")).is_empty());
        let mut whole = SearchChoices::default();
        whole.refresh(t);
        assert_eq!(whole.operations(t, None), choices.operations(t, None));
    }
}
