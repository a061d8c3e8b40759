//! The sandbox: a learner's setup of the default mesh (load, faults from the catalog, the policy
//! on each call edge, optimistic locking on stock) turned into a scenario, and the summary of a
//! run that two runs are compared on (latency percentiles, errors, duplicates, oversold units).

use serde::{Deserialize, Serialize};

use crate::mesh::default_mesh;
use crate::scenario::{
    CallPolicy, DataEffect, FaultEffect, FaultSpec, Scenario, ScenarioError, ServiceRole, Step,
};
use crate::sim::GroundTruth;
use crate::telemetry::{SpanKind, SpanStatus, Telemetry, Value};
use crate::time::{Duration, SimTime};

/// The heaviest load the sandbox runs: both runs live in one browser tab.
pub const RATE_PER_S_MAX: f64 = 200.0;
pub const DURATION_MS_MAX: u64 = 600_000;
/// Run lengths the form offers.
pub const DURATIONS_MS: [u64; 3] = [60_000, 300_000, 600_000];

const RATE_DEFAULT: f64 = 50.0;
const DURATION_DEFAULT: u64 = 300_000;
const STOCK_DEFAULT: u32 = 1_000_000;

/// What a learner set up: the default mesh under a load, with faults and changed policies.
/// Fields left at their defaults are left out when serialized, so a URL stays short.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Setup {
    #[serde(rename = "rate", skip_serializing_if = "is_default_rate")]
    pub rate_per_s: f64,
    #[serde(rename = "ms", skip_serializing_if = "is_default_duration")]
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultSpec>,
    /// Only the edges whose policy differs from the mesh's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub edges: Vec<EdgeSetting>,
    /// Units in stock at inventory's `reserve` when the run starts.
    #[serde(skip_serializing_if = "is_default_stock")]
    pub stock: u32,
    /// Inventory's stock writes check the version they read (a lost update is retried).
    #[serde(rename = "locking", skip_serializing_if = "is_true")]
    pub optimistic_locking: bool,
}

fn is_default_rate(r: &f64) -> bool {
    *r == RATE_DEFAULT
}
fn is_default_duration(d: &u64) -> bool {
    *d == DURATION_DEFAULT
}
fn is_default_stock(s: &u32) -> bool {
    *s == STOCK_DEFAULT
}
fn is_true(b: &bool) -> bool {
    *b
}

impl Default for Setup {
    /// The lesson mesh: 50 requests a second for five minutes, no faults, the mesh's policies.
    fn default() -> Self {
        Setup {
            rate_per_s: RATE_DEFAULT,
            duration_ms: DURATION_DEFAULT,
            faults: vec![],
            edges: vec![],
            stock: STOCK_DEFAULT,
            optimistic_locking: true,
        }
    }
}

/// The client policy on the calls `caller` makes to `callee`'s `operation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeSetting {
    pub caller: String,
    pub callee: String,
    pub operation: String,
    pub policy: CallPolicy,
}

/// One call edge of the mesh, with the operations of the caller that make the call.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub caller: String,
    pub callee: String,
    pub operation: String,
    pub policy: CallPolicy,
    pub used_by: Vec<String>,
}

impl Edge {
    /// `orders → payments:charge`.
    pub fn label(&self) -> String {
        format!("{} → {}:{}", self.caller, self.callee, self.operation)
    }
}

/// The call edges of a scenario, one per caller, callee and callee operation, in the order
/// the steps first make them, with the policy of the first call on each.
pub fn edges(scenario: &Scenario) -> Vec<Edge> {
    let mut edges: Vec<Edge> = Vec::new();
    for service in &scenario.services {
        for op in &service.operations {
            for step in &op.steps {
                let Step::Call {
                    service: callee,
                    operation,
                    policy,
                    ..
                } = step
                else {
                    continue;
                };
                let same = |e: &&mut Edge| {
                    e.caller == service.name && &e.callee == callee && &e.operation == operation
                };
                match edges.iter_mut().find(same) {
                    Some(e) => {
                        if !e.used_by.contains(&op.name) {
                            e.used_by.push(op.name.clone());
                        }
                    }
                    None => edges.push(Edge {
                        caller: service.name.clone(),
                        callee: callee.clone(),
                        operation: operation.clone(),
                        policy: policy.clone(),
                        used_by: vec![op.name.clone()],
                    }),
                }
            }
        }
    }
    edges
}

impl Setup {
    /// The edges of the default mesh with this setup's policies on them.
    pub fn edges(&self) -> Vec<Edge> {
        let mut all = edges(&default_mesh(RATE_DEFAULT, DURATION_DEFAULT));
        for e in &mut all {
            if let Some(s) = self.edge_setting(&e.caller, &e.callee, &e.operation) {
                e.policy = s.policy.clone();
            }
        }
        all
    }

    fn edge_setting(&self, caller: &str, callee: &str, operation: &str) -> Option<&EdgeSetting> {
        self.edges
            .iter()
            .find(|s| s.caller == caller && s.callee == callee && s.operation == operation)
    }

    /// Sets the policy on one edge; a policy equal to the mesh's drops the setting, so the
    /// setup holds only what was changed.
    pub fn set_edge(&mut self, caller: &str, callee: &str, operation: &str, policy: CallPolicy) {
        self.edges
            .retain(|s| !(s.caller == caller && s.callee == callee && s.operation == operation));
        let default = edges(&default_mesh(RATE_DEFAULT, DURATION_DEFAULT))
            .into_iter()
            .find(|e| e.caller == caller && e.callee == callee && e.operation == operation);
        if default.is_some_and(|d| d.policy == policy) {
            return;
        }
        self.edges.push(EdgeSetting {
            caller: caller.into(),
            callee: callee.into(),
            operation: operation.into(),
            policy,
        });
    }

    /// The scenario to run, or every problem with the setup, each naming its field in the
    /// setup (`rate_per_s`, `faults[1].until_ms`, `edges[0].policy.retries`).
    pub fn scenario(&self) -> Result<Scenario, Vec<ScenarioError>> {
        let mut errors = Vec::new();
        if !(self.rate_per_s > 0.0 && self.rate_per_s <= RATE_PER_S_MAX) {
            errors.push(ScenarioError {
                field: "rate_per_s".into(),
                problem: format!("must be above 0 and at most {RATE_PER_S_MAX} requests/s"),
            });
        }
        if self.duration_ms == 0 || self.duration_ms > DURATION_MS_MAX {
            errors.push(ScenarioError {
                field: "duration_ms".into(),
                problem: format!("must be 1..={DURATION_MS_MAX} ms (ten minutes)"),
            });
        }
        let mut scenario = default_mesh(self.rate_per_s, self.duration_ms);
        scenario.name = "sandbox".into();
        // Which setup edge each step's policy came from, to name it in an error.
        let mut edited: Vec<(String, usize)> = Vec::new();
        for (k, setting) in self.edges.iter().enumerate() {
            let changed = scenario.edit_calls_to(
                &setting.caller,
                &setting.callee,
                Some(&setting.operation),
                |p| *p = setting.policy.clone(),
            );
            if changed == 0 {
                errors.push(ScenarioError {
                    field: format!("edges[{k}]"),
                    problem: format!(
                        "the mesh has no call from `{}` to `{}:{}`",
                        setting.caller, setting.callee, setting.operation
                    ),
                });
            }
            for (s, service) in scenario.services.iter().enumerate() {
                for (o, op) in service.operations.iter().enumerate() {
                    for (i, step) in op.steps.iter().enumerate() {
                        if let Step::Call {
                            service: callee,
                            operation,
                            ..
                        } = step
                        {
                            if service.name == setting.caller
                                && callee == &setting.callee
                                && operation == &setting.operation
                            {
                                edited
                                    .push((format!("services[{s}].operations[{o}].steps[{i}]"), k));
                            }
                        }
                    }
                }
            }
        }
        for service in scenario
            .services
            .iter_mut()
            .filter(|s| s.name == "inventory")
        {
            for op in &mut service.operations {
                if let Some(DataEffect::Reserve { .. }) = op.effect {
                    op.effect = Some(DataEffect::Reserve {
                        initial_stock: self.stock,
                        optimistic_locking: self.optimistic_locking,
                    });
                }
            }
        }
        scenario.faults = self.faults.clone();
        for mut e in scenario.validate() {
            if e.field == "workload.rate_per_s" || e.field == "duration_ms" {
                // Said above, in the sandbox's own bounds.
                continue;
            }
            if let Some((path, k)) = edited.iter().find(|(p, _)| {
                e.field
                    .strip_prefix(p.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
            }) {
                e.field = format!("edges[{k}]{}", &e.field[path.len()..]);
            }
            errors.push(e);
        }
        if errors.is_empty() {
            Ok(scenario)
        } else {
            Err(errors)
        }
    }

    /// The setup as short JSON for a URL (defaults left out).
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads what `to_text` wrote; Err says what is wrong with it.
    pub fn from_text(text: &str) -> Result<Setup, String> {
        serde_json::from_str(text).map_err(|e| format!("the sandbox setup does not read: {e}"))
    }

    /// Applies a catalog entry that is an edge setting rather than an injected fault:
    /// `missing_timeout` removes the timeout on the edge. True when the kind was one.
    pub fn apply_edge_fault(
        &mut self,
        kind: &str,
        caller: &str,
        callee: &str,
        operation: &str,
    ) -> bool {
        if kind != MISSING_TIMEOUT {
            return false;
        }
        let Some(edge) = self
            .edges()
            .into_iter()
            .find(|e| e.caller == caller && e.callee == callee && e.operation == operation)
        else {
            return false;
        };
        let policy = CallPolicy {
            timeout_ms: None,
            ..edge.policy
        };
        self.set_edge(caller, callee, operation, policy);
        true
    }
}

/// The catalog entry that is a policy, not an injected fault.
pub const MISSING_TIMEOUT: &str = "missing_timeout";

/// What the form offers for one catalog kind: the fault with sensible parameters, and the
/// services of the default mesh it can hit.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultTemplate {
    pub kind: &'static str,
    /// The fault's effect with default parameters; None for `missing_timeout`, which is an
    /// edge with no timeout (set in the edge table).
    pub effect: Option<FaultEffect>,
    /// Services it can target (for `missing_timeout`: callers with an edge).
    pub targets: Vec<String>,
    /// Whether it may hit one instance rather than all.
    pub per_instance: bool,
}

impl FaultTemplate {
    /// The fault on `service`, in a window from a fifth to four fifths of the run.
    pub fn fault(&self, service: &str, duration_ms: u64) -> Option<FaultSpec> {
        let mut effect = self.effect.clone()?;
        if let FaultEffect::Partition { peer } = &mut effect {
            *peer = peers(service).into_iter().next().unwrap_or_default();
        }
        let from_ms = duration_ms / 5 / 1_000 * 1_000;
        let until_ms = (duration_ms * 4 / 5 / 1_000 * 1_000).max(from_ms + 1_000);
        Some(FaultSpec::new(service, None, from_ms, until_ms, effect))
    }
}

/// The effect of each catalog kind with default parameters (None: `missing_timeout`).
fn default_effect(kind: &str) -> Option<FaultEffect> {
    Some(match kind {
        "latency" => FaultEffect::Latency { extra_ms: 500 },
        "error_rate" => FaultEffect::ErrorRate { rate: 0.2 },
        "instance_crash" => FaultEffect::Crash,
        "partition" => FaultEffect::Partition {
            peer: String::new(),
        },
        "connection_leak" => FaultEffect::ConnectionLeak { rate: 0.2 },
        "retry_storm" => FaultEffect::RetryStorm,
        "non_idempotent_retry" => FaultEffect::NonIdempotentRetry,
        "log_level_warn" => FaultEffect::LogLevelWarn,
        "local_time_logs" => FaultEffect::LocalTimeLogs { zone_minutes: 120 },
        "clock_skew" => FaultEffect::ClockSkew {
            offset_ms: 90_000,
            drift_ppm: 0,
        },
        "context_dropped" => FaultEffect::ContextDropped,
        "stock_race" => FaultEffect::StockRace,
        "lease_expiry" => FaultEffect::LeaseExpiry { pause_ms: 1_500 },
        "saga_no_compensation" => FaultEffect::SagaNoCompensation,
        "cache_outage" => FaultEffect::CacheOutage,
        "consumer_stall" => FaultEffect::ConsumerStall,
        "traffic_flood" => FaultEffect::TrafficFlood { multiplier: 3.0 },
        "memory_leak" => FaultEffect::MemoryLeak { mb_per_s: 20 },
        "card_numbers_logged" => FaultEffect::CardNumbersLogged,
        _ => return None,
    })
}

/// The services `service` calls (the peers a partition can cut it from).
pub fn peers(service: &str) -> Vec<String> {
    let mut peers: Vec<String> = Vec::new();
    for e in edges(&default_mesh(RATE_DEFAULT, DURATION_DEFAULT)) {
        if e.caller == service && !peers.contains(&e.callee) {
            peers.push(e.callee);
        }
    }
    peers
}

/// One template per catalog kind, in the catalog's order.
pub fn fault_templates() -> Vec<FaultTemplate> {
    let mesh = default_mesh(RATE_DEFAULT, DURATION_DEFAULT);
    let roles = mesh.roles();
    let all_edges = edges(&mesh);
    let callers: Vec<&str> = mesh
        .services
        .iter()
        .map(|s| s.name.as_str())
        .filter(|name| all_edges.iter().any(|e| e.caller == *name))
        .collect();
    crate::scenario::FAULT_CATALOG
        .iter()
        .map(|&kind| {
            let effect = default_effect(kind);
            let Some(effect) = effect else {
                return FaultTemplate {
                    kind,
                    effect: None,
                    targets: callers.iter().map(|c| c.to_string()).collect(),
                    per_instance: false,
                };
            };
            let targets = mesh
                .services
                .iter()
                .enumerate()
                .filter(|(s, service)| {
                    let name = service.name.as_str();
                    let application = roles[*s] == ServiceRole::Application;
                    // What the fault needs beyond what validation checks: a target on which it
                    // acts at all.
                    let fits = match &effect {
                        FaultEffect::Latency { .. }
                        | FaultEffect::ErrorRate { .. }
                        | FaultEffect::Crash => true,
                        FaultEffect::Partition { .. }
                        | FaultEffect::RetryStorm
                        | FaultEffect::ContextDropped => callers.contains(&name),
                        FaultEffect::NonIdempotentRetry => all_edges
                            .iter()
                            .any(|e| e.caller == name && e.policy.idempotency_key),
                        FaultEffect::StockRace => service
                            .operations
                            .iter()
                            .any(|o| matches!(o.effect, Some(DataEffect::Reserve { .. }))),
                        FaultEffect::SagaNoCompensation => service
                            .operations
                            .iter()
                            .flat_map(|o| &o.steps)
                            .any(|s| s.compensation().is_some()),
                        FaultEffect::TrafficFlood { .. } => {
                            mesh.workload.entries.iter().any(|e| e.service == name)
                        }
                        FaultEffect::LogLevelWarn
                        | FaultEffect::CardNumbersLogged
                        | FaultEffect::ClockSkew { .. }
                        | FaultEffect::LocalTimeLogs { .. } => application,
                        // Validation says which services have a pool, a heap, a lock, a
                        // cache or a consumer.
                        FaultEffect::ConnectionLeak { .. }
                        | FaultEffect::MemoryLeak { .. }
                        | FaultEffect::LeaseExpiry { .. }
                        | FaultEffect::CacheOutage
                        | FaultEffect::ConsumerStall => true,
                    };
                    fits && {
                        let mut tried = mesh.clone();
                        let template = FaultTemplate {
                            kind,
                            effect: Some(effect.clone()),
                            targets: vec![],
                            per_instance: false,
                        };
                        tried.faults = template
                            .fault(name, tried.duration_ms)
                            .into_iter()
                            .collect();
                        tried
                            .validate()
                            .iter()
                            .all(|e| !e.field.starts_with("faults[0]"))
                    }
                })
                .map(|(_, s)| s.name.clone())
                .collect();
            FaultTemplate {
                kind,
                per_instance: !matches!(
                    effect,
                    FaultEffect::CacheOutage | FaultEffect::TrafficFlood { .. }
                ),
                effect: Some(effect),
                targets,
            }
        })
        .collect()
}

/// The parameters of a fault effect, by name, as text for a form.
pub fn fault_params(effect: &FaultEffect) -> Vec<(&'static str, String)> {
    match effect {
        FaultEffect::Latency { extra_ms } => vec![("extra_ms", extra_ms.to_string())],
        FaultEffect::ErrorRate { rate } | FaultEffect::ConnectionLeak { rate } => {
            vec![("rate", rate.to_string())]
        }
        FaultEffect::Partition { peer } => vec![("peer", peer.clone())],
        FaultEffect::TrafficFlood { multiplier } => vec![("multiplier", multiplier.to_string())],
        FaultEffect::ClockSkew {
            offset_ms,
            drift_ppm,
        } => vec![
            ("offset_ms", offset_ms.to_string()),
            ("drift_ppm", drift_ppm.to_string()),
        ],
        FaultEffect::LocalTimeLogs { zone_minutes } => {
            vec![("zone_minutes", zone_minutes.to_string())]
        }
        FaultEffect::MemoryLeak { mb_per_s } => vec![("mb_per_s", mb_per_s.to_string())],
        FaultEffect::LeaseExpiry { pause_ms } => vec![("pause_ms", pause_ms.to_string())],
        FaultEffect::Crash
        | FaultEffect::LogLevelWarn
        | FaultEffect::CardNumbersLogged
        | FaultEffect::ContextDropped
        | FaultEffect::RetryStorm
        | FaultEffect::StockRace
        | FaultEffect::NonIdempotentRetry
        | FaultEffect::SagaNoCompensation
        | FaultEffect::CacheOutage
        | FaultEffect::ConsumerStall => vec![],
    }
}

/// Sets one parameter of a fault effect from the text typed for it; Err says why it does not
/// read (ranges are checked by the scenario's validation).
pub fn set_fault_param(effect: &mut FaultEffect, name: &str, text: &str) -> Result<(), String> {
    fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
        text.trim()
            .parse()
            .map_err(|_| format!("`{}` is not a number of the right kind", text.trim()))
    }
    match (effect, name) {
        (FaultEffect::Latency { extra_ms }, "extra_ms") => *extra_ms = number(text)?,
        (FaultEffect::ErrorRate { rate } | FaultEffect::ConnectionLeak { rate }, "rate") => {
            *rate = number(text)?
        }
        (FaultEffect::Partition { peer }, "peer") => *peer = text.trim().into(),
        (FaultEffect::TrafficFlood { multiplier }, "multiplier") => *multiplier = number(text)?,
        (FaultEffect::ClockSkew { offset_ms, .. }, "offset_ms") => *offset_ms = number(text)?,
        (FaultEffect::ClockSkew { drift_ppm, .. }, "drift_ppm") => *drift_ppm = number(text)?,
        (FaultEffect::LocalTimeLogs { zone_minutes }, "zone_minutes") => {
            *zone_minutes = number(text)?
        }
        (FaultEffect::MemoryLeak { mb_per_s }, "mb_per_s") => *mb_per_s = number(text)?,
        (FaultEffect::LeaseExpiry { pause_ms }, "pause_ms") => *pause_ms = number(text)?,
        (effect, _) => return Err(format!("`{}` has no parameter `{name}`", effect.name())),
    }
    Ok(())
}

/// What one run came to, as the comparison reads it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunSummary {
    /// Requests from outside the mesh (server spans of the workload's entry operations).
    pub requests: u64,
    /// Of those, the ones answered with a 5xx.
    pub errors: u64,
    pub p50: Option<Duration>,
    pub p95: Option<Duration>,
    pub p99: Option<Duration>,
    /// Calls sent between services (client spans, every attempt), those refused by an open
    /// circuit breaker before they left, retries, and attempts that hit their timeout.
    pub calls: u64,
    pub breaker_rejections: u64,
    pub retries: u64,
    pub timeouts: u64,
    /// From the ground truth: charges, the extra ones for one order, units sold beyond the
    /// stock, failed sagas and those that left an effect behind, writes with a stale fencing
    /// token that storage accepted, messages dead-lettered.
    pub charges: u64,
    pub duplicate_charges: u64,
    pub oversold_units: u64,
    pub sagas_failed: u64,
    pub sagas_left: u64,
    pub stale_writes: u64,
    pub dead_letters: u64,
    /// Entry requests over time, in equal windows.
    pub series: Vec<SeriesPoint>,
}

/// The entry requests that started in one window of the run.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SeriesPoint {
    pub start: SimTime,
    pub requests: u64,
    pub error_rate: f64,
    pub p99: Option<Duration>,
}

/// Windows the run's series is cut into.
const SERIES_POINTS: u64 = 60;

/// The q-quantile of sorted durations, nearest rank.
fn quantile(sorted: &[u64], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(Duration(sorted[rank.clamp(1, sorted.len()) - 1]))
}

impl RunSummary {
    /// Reads a finished run of `scenario`: its telemetry and ground truth.
    pub fn of(scenario: &Scenario, t: &Telemetry, truth: &GroundTruth) -> RunSummary {
        let entry_services: Vec<usize> = t
            .service_names
            .iter()
            .enumerate()
            .filter(|(_, name)| {
                let name = t.text(**name);
                scenario.workload.entries.iter().any(|e| e.service == name)
            })
            .map(|(i, _)| i)
            .collect();
        let error_type = t.strings.lookup("error.type");
        let timeout = t.strings.lookup("timeout");
        let circuit_open = t.strings.lookup("circuit_open");
        let mut s = RunSummary::default();
        // (start, duration, failed) of each entry request.
        let mut entries: Vec<(SimTime, u64, bool)> = Vec::new();
        for span in &t.spans {
            match span.kind {
                SpanKind::Server if entry_services.contains(&usize::from(span.service.0)) => {
                    let Some(end) = span.end() else { continue };
                    entries.push((
                        span.start,
                        end.since(span.start).0,
                        span.status == SpanStatus::Error,
                    ));
                }
                SpanKind::Client => {
                    s.calls += 1;
                    let error = t
                        .attributes(span)
                        .iter()
                        .find(|(k, _)| Some(*k) == error_type)
                        .map(|(_, v)| v);
                    match error {
                        Some(Value::Str(e)) if Some(*e) == timeout => s.timeouts += 1,
                        Some(Value::Str(e)) if Some(*e) == circuit_open => {
                            s.breaker_rejections += 1
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        s.requests = entries.len() as u64;
        s.errors = entries.iter().filter(|e| e.2).count() as u64;
        let mut durations: Vec<u64> = entries.iter().map(|e| e.1).collect();
        durations.sort_unstable();
        (s.p50, s.p95, s.p99) = (
            quantile(&durations, 0.50),
            quantile(&durations, 0.95),
            quantile(&durations, 0.99),
        );
        s.retries = t.metrics.retries.values().map(|n| u64::from(*n)).sum();
        s.charges = u64::from(truth.charges);
        s.duplicate_charges = u64::from(truth.duplicate_charges);
        s.oversold_units = u64::from(truth.oversold_units);
        s.sagas_failed = u64::from(truth.sagas_failed);
        s.sagas_left =
            u64::from(truth.sagas_failed - truth.sagas_compensated.min(truth.sagas_failed));
        s.stale_writes = u64::from(truth.stale_writes_accepted);
        s.dead_letters = u64::from(truth.messages_dead_lettered);
        // The series over the workload's duration, in windows of whole seconds.
        let window =
            (scenario.duration_ms * 1_000 / SERIES_POINTS).max(1_000_000) / 1_000_000 * 1_000_000;
        let windows = (scenario.duration_ms * 1_000).div_ceil(window) as usize;
        let mut by_window: Vec<Vec<(u64, bool)>> = vec![Vec::new(); windows.max(1)];
        for (start, duration, failed) in &entries {
            let w = ((start.0 / window) as usize).min(by_window.len() - 1);
            by_window[w].push((*duration, *failed));
        }
        s.series = by_window
            .into_iter()
            .enumerate()
            .map(|(w, mut items)| {
                let errors = items.iter().filter(|i| i.1).count();
                let mut d: Vec<u64> = items.drain(..).map(|i| i.0).collect();
                d.sort_unstable();
                SeriesPoint {
                    start: SimTime(w as u64 * window),
                    requests: d.len() as u64,
                    error_rate: if d.is_empty() {
                        0.0
                    } else {
                        errors as f64 / d.len() as f64
                    },
                    p99: quantile(&d, 0.99),
                }
            })
            .collect();
        s
    }

    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

/// Whether a change of a metric is good news.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Better,
    Worse,
    Same,
    /// Neither direction is better (more requests served is the load, not a result).
    Neutral,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::Same => "same",
            Verdict::Neutral => "changed",
        }
    }
}

/// One metric of the comparison, with both runs' values as the table shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct ComparisonRow {
    pub metric: &'static str,
    /// What the metric counts, for a tooltip.
    pub help: &'static str,
    pub a: String,
    pub b: String,
    /// B against A: `+12`, `+35%`, `−0.4 pp`; empty when one side has no value.
    pub change: String,
    pub verdict: Verdict,
}

enum Kind {
    Count,
    Latency,
    Ratio,
}

/// A metric's name, what it counts, its kind, A's and B's values, and whether lower is better
/// (None: neither way is).
type MetricLine = (
    &'static str,
    &'static str,
    Kind,
    Option<f64>,
    Option<f64>,
    Option<bool>,
);

/// Share of the larger value within which two runs count as the same in a verdict: another
/// seed alone moves tail latencies and counts of timeouts by a few percent.
const NOISE: f64 = 0.05;

/// The metrics of two runs side by side, B against A; the change is exact, the verdict ignores
/// changes within `NOISE`.
pub fn compare(a: &RunSummary, b: &RunSummary) -> Vec<ComparisonRow> {
    let ms = |d: Option<Duration>| d.map(|d| d.0 as f64 / 1_000.0);
    let n = |v: u64| Some(v as f64);
    let rows: Vec<MetricLine> = vec![
        (
            "requests",
            "requests from outside the mesh (entry server spans)",
            Kind::Count,
            n(a.requests),
            n(b.requests),
            None,
        ),
        (
            "error rate",
            "share of entry requests answered with a 5xx",
            Kind::Ratio,
            Some(a.error_rate()),
            Some(b.error_rate()),
            Some(true),
        ),
        (
            "p50",
            "median entry latency",
            Kind::Latency,
            ms(a.p50),
            ms(b.p50),
            Some(true),
        ),
        (
            "p95",
            "95th percentile entry latency",
            Kind::Latency,
            ms(a.p95),
            ms(b.p95),
            Some(true),
        ),
        (
            "p99",
            "99th percentile entry latency",
            Kind::Latency,
            ms(a.p99),
            ms(b.p99),
            Some(true),
        ),
        (
            "calls sent",
            "client spans between services, every attempt",
            Kind::Count,
            n(a.calls),
            n(b.calls),
            None,
        ),
        (
            "retries",
            "retry attempts sent",
            Kind::Count,
            n(a.retries),
            n(b.retries),
            Some(true),
        ),
        (
            "timeouts",
            "call attempts that hit their timeout",
            Kind::Count,
            n(a.timeouts),
            n(b.timeouts),
            Some(true),
        ),
        (
            "breaker rejections",
            "calls an open circuit breaker failed fast",
            Kind::Count,
            n(a.breaker_rejections),
            n(b.breaker_rejections),
            None,
        ),
        (
            "duplicate charges",
            "charges beyond the first for one order's payment (ground truth)",
            Kind::Count,
            n(a.duplicate_charges),
            n(b.duplicate_charges),
            Some(true),
        ),
        (
            "oversold units",
            "units sold beyond the stock there was (ground truth)",
            Kind::Count,
            n(a.oversold_units),
            n(b.oversold_units),
            Some(true),
        ),
        (
            "sagas failed",
            "orders that failed after an earlier step took effect",
            Kind::Count,
            n(a.sagas_failed),
            n(b.sagas_failed),
            Some(true),
        ),
        (
            "sagas left inconsistent",
            "failed sagas with a step left in effect (not compensated)",
            Kind::Count,
            n(a.sagas_left),
            n(b.sagas_left),
            Some(true),
        ),
        (
            "stale writes accepted",
            "writes with an expired lease's fencing token that storage took",
            Kind::Count,
            n(a.stale_writes),
            n(b.stale_writes),
            Some(true),
        ),
        (
            "dead letters",
            "messages dead-lettered after their last delivery failed",
            Kind::Count,
            n(a.dead_letters),
            n(b.dead_letters),
            Some(true),
        ),
    ];
    rows.into_iter()
        .map(|(metric, help, kind, va, vb, lower_better)| {
            let show = |v: Option<f64>| match (v, &kind) {
                (None, _) => "—".to_string(),
                (Some(v), Kind::Count) => crate::query::group_thousands(v as u64),
                (Some(v), Kind::Latency) => format_ms(v),
                (Some(v), Kind::Ratio) => format!("{:.2}%", v * 100.0),
            };
            let (change, verdict) = match (va, vb) {
                (Some(x), Some(y)) => {
                    let diff = y - x;
                    let same = match kind {
                        Kind::Count => diff == 0.0,
                        Kind::Latency => diff.abs() < 0.05,
                        Kind::Ratio => (diff * 100.0).abs() < 0.005,
                    };
                    let text = if same {
                        "±0".to_string()
                    } else {
                        let sign = if diff > 0.0 { "+" } else { "−" };
                        match kind {
                            Kind::Count if x > 0.0 => format!(
                                "{sign}{} ({sign}{:.0}%)",
                                crate::query::group_thousands(diff.abs() as u64),
                                (diff / x * 100.0).abs()
                            ),
                            Kind::Count => format!(
                                "{sign}{}",
                                crate::query::group_thousands(diff.abs() as u64)
                            ),
                            Kind::Latency if x > 0.0 => format!(
                                "{sign}{} ({sign}{:.0}%)",
                                format_ms(diff.abs()),
                                (diff / x * 100.0).abs()
                            ),
                            Kind::Latency => format!("{sign}{}", format_ms(diff.abs())),
                            Kind::Ratio => format!("{sign}{:.2} pp", (diff * 100.0).abs()),
                        }
                    };
                    // A verdict needs more than run-to-run noise: within NOISE of the larger
                    // value is the same, except going from none to some (a first duplicate
                    // charge counts).
                    let noise = same
                        || (x != 0.0 && y != 0.0 && diff.abs() <= NOISE * x.abs().max(y.abs()));
                    let verdict = match lower_better {
                        _ if noise => Verdict::Same,
                        None => Verdict::Neutral,
                        Some(lower) => {
                            if (diff < 0.0) == lower {
                                Verdict::Better
                            } else {
                                Verdict::Worse
                            }
                        }
                    };
                    (text, verdict)
                }
                _ => (String::new(), Verdict::Same),
            };
            ComparisonRow {
                metric,
                help,
                a: show(va),
                b: show(vb),
                change,
                verdict,
            }
        })
        .collect()
}

/// `850 ms`, `12.3 ms`, `2.41 s`.
fn format_ms(ms: f64) -> String {
    if ms >= 1_000.0 {
        format!("{:.2} s", ms / 1_000.0)
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Simulation;
    use crate::edge::BreakerPolicy;

    fn run(setup: &Setup, seed: u64) -> (RunSummary, GroundTruth) {
        let (summary, _, truth) = run_whole(setup, seed);
        (summary, truth)
    }

    /// As `run`, with the run's telemetry too.
    fn run_whole(setup: &Setup, seed: u64) -> (RunSummary, Telemetry, GroundTruth) {
        let scenario = setup.scenario().expect("the setup is valid");
        let (t, truth) = Simulation::new(scenario.clone(), seed).unwrap().finish();
        (RunSummary::of(&scenario, &t, &truth), t, truth)
    }

    fn short(rate: f64, seconds: u64) -> Setup {
        Setup {
            rate_per_s: rate,
            duration_ms: seconds * 1_000,
            ..Setup::default()
        }
    }

    fn template(kind: &str) -> FaultTemplate {
        fault_templates()
            .into_iter()
            .find(|t| t.kind == kind)
            .unwrap()
    }

    #[test]
    fn the_default_setup_is_the_lesson_mesh() {
        let scenario = Setup::default().scenario().unwrap();
        let mesh = default_mesh(50.0, 300_000);
        assert_eq!(scenario.services, mesh.services);
        assert_eq!(scenario.workload, mesh.workload);
        assert!(scenario.faults.is_empty());
        assert_eq!(Setup::default().to_text(), "{}");
        assert_eq!(Setup::from_text("{}").unwrap(), Setup::default());
    }

    #[test]
    fn the_edges_are_the_mesh_calls_with_their_policies() {
        let all = Setup::default().edges();
        let charge = all
            .iter()
            .find(|e| e.label() == "orders → payments:charge")
            .unwrap();
        assert!(charge.policy.idempotency_key);
        assert_eq!(charge.policy.timeout_ms, Some(1_000));
        assert_eq!(charge.used_by, ["create"]);
        let insert = all
            .iter()
            .find(|e| e.label() == "payments → database:insert")
            .unwrap();
        assert_eq!(insert.used_by, ["charge", "refund", "settle"]);
        // One row per caller, callee and operation.
        for (i, e) in all.iter().enumerate() {
            assert!(!all[..i].iter().any(|o| o.label() == e.label()));
        }
        // Cache lookups and publishing are steps of their own, not call edges.
        assert!(
            all.iter()
                .all(|e| e.callee != "cache" && e.callee != "queue")
        );
    }

    #[test]
    fn an_edge_setting_reaches_every_call_on_that_edge_and_only_those() {
        let mut setup = Setup::default();
        let mut policy = setup
            .edges()
            .into_iter()
            .find(|e| e.label() == "payments → database:insert")
            .unwrap()
            .policy;
        policy.retries = 4;
        setup.set_edge("payments", "database", "insert", policy.clone());
        let scenario = setup.scenario().unwrap();
        let payments = scenario
            .services
            .iter()
            .find(|s| s.name == "payments")
            .unwrap();
        let policies: Vec<&CallPolicy> = payments
            .operations
            .iter()
            .flat_map(|o| &o.steps)
            .filter_map(|s| match s {
                Step::Call { policy, .. } => Some(policy),
                _ => None,
            })
            .collect();
        assert_eq!(policies.len(), 3);
        assert!(policies.iter().all(|p| p.retries == 4));
        let orders_insert = edges(&scenario)
            .into_iter()
            .find(|e| e.label() == "orders → database:insert")
            .unwrap();
        assert_eq!(orders_insert.policy.retries, 0);
        // Setting the mesh's own policy back drops the setting.
        policy.retries = 0;
        setup.set_edge("payments", "database", "insert", policy);
        assert!(setup.edges.is_empty());
    }

    #[test]
    fn errors_name_the_setup_field() {
        let mut setup = short(0.0, 0);
        setup
            .faults
            .push(template("latency").fault("payments", 60_000).unwrap());
        let mut bad = template("latency").fault("payments", 60_000).unwrap();
        bad.until_ms = bad.from_ms;
        setup.faults.push(bad);
        let mut policy = CallPolicy {
            retries: 99,
            ..CallPolicy::default()
        };
        policy.breaker = Some(BreakerPolicy {
            open_ms: 0,
            ..BreakerPolicy::default()
        });
        setup.set_edge("orders", "inventory", "reserve", policy);
        setup.edges.push(EdgeSetting {
            caller: "gateway".into(),
            callee: "payments".into(),
            operation: "charge".into(),
            policy: CallPolicy::default(),
        });
        let fields: Vec<String> = setup
            .scenario()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        for field in [
            "rate_per_s",
            "duration_ms",
            "faults[1].until_ms",
            "edges[0].policy.retries",
            "edges[0].policy.breaker.open_ms",
            "edges[1]",
        ] {
            assert!(fields.iter().any(|f| f == field), "{field} in {fields:?}");
        }
        assert!(
            !fields.iter().any(|f| f.starts_with("faults[0]")),
            "{fields:?}"
        );
        assert!(
            !fields.iter().any(|f| f.starts_with("services")),
            "{fields:?}"
        );
    }

    #[test]
    fn the_url_text_is_short_and_reads_back() {
        let mut setup = short(120.0, 60);
        setup.faults.push(
            template("non_idempotent_retry")
                .fault("orders", setup.duration_ms)
                .unwrap(),
        );
        setup.optimistic_locking = false;
        assert!(setup.apply_edge_fault(MISSING_TIMEOUT, "orders", "payments", "charge"));
        let text = setup.to_text();
        assert!(text.len() < 600, "{text}");
        assert!(!text.contains("1000000"), "defaults left out: {text}");
        assert_eq!(Setup::from_text(&text).unwrap(), setup);
        assert!(Setup::from_text("{\"rate\":").is_err());
        assert!(Setup::from_text("{\"speed\":3}").is_err());
    }

    #[test]
    fn each_catalog_kind_has_a_template_that_validates_on_each_target() {
        let templates = fault_templates();
        assert_eq!(templates.len(), crate::scenario::FAULT_CATALOG.len());
        let targets = |kind: &str| template(kind).targets;
        assert_eq!(targets("stock_race"), ["inventory"]);
        assert_eq!(targets("cache_outage"), ["cache"]);
        assert_eq!(targets("consumer_stall"), ["notifications"]);
        assert_eq!(targets("lease_expiry"), ["payments"]);
        assert_eq!(targets("non_idempotent_retry"), ["orders"]);
        assert_eq!(targets("traffic_flood"), ["gateway"]);
        assert!(targets("partition").contains(&"orders".to_string()));
        assert!(!targets("partition").contains(&"database".to_string()));
        assert!(!targets("clock_skew").contains(&"database".to_string()));
        let missing = template(MISSING_TIMEOUT);
        assert!(missing.effect.is_none() && missing.targets.contains(&"orders".to_string()));
        for t in templates.iter().filter(|t| t.effect.is_some()) {
            assert!(!t.targets.is_empty(), "{} has no target", t.kind);
            for service in &t.targets {
                let mut setup = Setup::default();
                setup
                    .faults
                    .push(t.fault(service, setup.duration_ms).unwrap());
                assert!(setup.scenario().is_ok(), "{} on {service}", t.kind);
            }
        }
    }

    #[test]
    fn fault_parameters_read_from_text_or_say_why_not() {
        let mut effect = template("latency").effect.unwrap();
        assert_eq!(fault_params(&effect), [("extra_ms", "500".to_string())]);
        set_fault_param(&mut effect, "extra_ms", " 750 ").unwrap();
        assert_eq!(effect, FaultEffect::Latency { extra_ms: 750 });
        assert!(set_fault_param(&mut effect, "extra_ms", "fast").is_err());
        assert!(set_fault_param(&mut effect, "rate", "1").is_err());
        // A rate out of range reads, and validation names it.
        let mut rate = template("error_rate").effect.unwrap();
        set_fault_param(&mut rate, "rate", "2").unwrap();
        let mut setup = Setup::default();
        let mut fault = template("error_rate")
            .fault("orders", setup.duration_ms)
            .unwrap();
        fault.effect = rate;
        setup.faults.push(fault);
        let errors = setup.scenario().unwrap_err();
        assert_eq!(errors[0].field, "faults[0].effect.rate");
        assert_eq!(
            template("partition")
                .fault("orders", 60_000)
                .unwrap()
                .effect,
            FaultEffect::Partition {
                peer: "database".into()
            }
        );
    }

    #[test]
    fn a_non_idempotent_retry_on_orders_charges_twice_where_the_baseline_does_not() {
        let base = short(60.0, 30);
        let mut faulty = base.clone();
        faulty.faults.push(FaultSpec::new(
            "orders",
            None,
            0,
            30_000,
            FaultEffect::NonIdempotentRetry,
        ));
        // Payments slow enough that charges time out after going through.
        faulty.faults.push(FaultSpec::new(
            "payments",
            None,
            0,
            30_000,
            FaultEffect::Latency { extra_ms: 900 },
        ));
        let mut slow_only = base.clone();
        slow_only.faults.push(faulty.faults[1].clone());
        let (a, truth_a) = run(&slow_only, 5);
        let (b, truth_b) = run(&faulty, 5);
        assert_eq!(a.duplicate_charges, u64::from(truth_a.duplicate_charges));
        assert_eq!(b.duplicate_charges, u64::from(truth_b.duplicate_charges));
        assert_eq!(a.duplicate_charges, 0);
        assert!(b.duplicate_charges > 0);
        assert!(b.retries > a.retries);
        let rows = compare(&a, &b);
        let dup = rows
            .iter()
            .find(|r| r.metric == "duplicate charges")
            .unwrap();
        assert_eq!(dup.a, "0");
        assert_eq!(dup.b, b.duplicate_charges.to_string());
        assert_eq!(dup.verdict, Verdict::Worse);
        assert!(dup.change.starts_with('+'));
    }

    #[test]
    fn a_stock_race_oversells_and_optimistic_locking_holds() {
        let mut base = short(100.0, 10);
        base.stock = 150;
        let mut race = base.clone();
        race.faults.push(FaultSpec::new(
            "inventory",
            None,
            0,
            10_000,
            FaultEffect::StockRace,
        ));
        let mut unlocked = base.clone();
        unlocked.optimistic_locking = false;
        let (a, truth_a) = run(&base, 2);
        let (b, truth_b) = run(&race, 2);
        let (c, truth_c) = run(&unlocked, 2);
        assert_eq!(a.oversold_units, 0);
        assert!(b.oversold_units > 0);
        assert!(c.oversold_units > 0);
        assert_eq!(b.oversold_units, u64::from(truth_b.oversold_units));
        assert_eq!(c.oversold_units, u64::from(truth_c.oversold_units));
        assert_eq!(truth_a.oversold_units, 0);
    }

    #[test]
    fn a_retry_storm_raises_the_tail_and_the_load() {
        // The database slows down; with a storm every caller hammers it at once.
        let mut base = short(80.0, 20);
        base.faults.push(FaultSpec::new(
            "database",
            None,
            5_000,
            15_000,
            FaultEffect::Latency { extra_ms: 180 },
        ));
        let mut storm = base.clone();
        for service in ["auth", "orders", "inventory", "payments"] {
            storm.faults.push(FaultSpec::new(
                service,
                None,
                5_000,
                15_000,
                FaultEffect::RetryStorm,
            ));
        }
        let (a, _) = run(&base, 4);
        let (b, _) = run(&storm, 4);
        assert!(b.retries > a.retries * 2, "{} vs {}", b.retries, a.retries);
        assert!(b.calls > a.calls);
        assert!(b.p99 > a.p99, "{:?} vs {:?}", b.p99, a.p99);
        // Immediate retries win some requests back, so the error rate need not rise: the cost
        // shows in the tail and in the calls sent.
        let p99 = compare(&a, &b)
            .into_iter()
            .find(|r| r.metric == "p99")
            .unwrap();
        assert_eq!(p99.verdict, Verdict::Worse);
    }

    #[test]
    fn a_breaker_cuts_the_calls_to_a_failing_service() {
        let mut base = short(60.0, 20);
        base.faults.push(FaultSpec::new(
            "payments",
            None,
            2_000,
            20_000,
            FaultEffect::ErrorRate { rate: 1.0 },
        ));
        let mut guarded = base.clone();
        let mut policy = guarded
            .edges()
            .into_iter()
            .find(|e| e.label() == "orders → payments:charge")
            .unwrap()
            .policy;
        policy.breaker = Some(BreakerPolicy::default());
        guarded.set_edge("orders", "payments", "charge", policy);
        // Charges that reached payments while it failed, and the run's summary.
        let run = |setup: &Setup| {
            let (summary, t, _) = run_whole(setup, 9);
            let reached = t
                .spans
                .iter()
                .filter(|s| {
                    s.kind == SpanKind::Server
                        && t.service_name(s.service) == "payments"
                        && t.text(s.operation) == "charge"
                        && s.start >= SimTime::from_ms(2_000)
                })
                .count() as u64;
            (reached, summary)
        };
        let (reached_a, a) = run(&base);
        let (reached_b, b) = run(&guarded);
        assert_eq!(a.breaker_rejections, 0);
        assert!(b.breaker_rejections > 0);
        // Far fewer charges reach payments: those the breaker refused never left orders, and
        // only its half-open probes get through.
        assert!(reached_b * 4 < reached_a, "{reached_b} vs {reached_a}");
    }

    #[test]
    fn the_summary_counts_what_the_telemetry_holds() {
        let setup = short(40.0, 10);
        let scenario = setup.scenario().unwrap();
        let (t, truth) = Simulation::new(scenario.clone(), 1).unwrap().finish();
        let s = RunSummary::of(&scenario, &t, &truth);
        let gateway = crate::query::service_summaries(&t)
            .into_iter()
            .find(|r| r.service == "gateway")
            .unwrap();
        assert_eq!(s.requests, gateway.requests);
        assert_eq!(s.errors, gateway.errors);
        assert!(s.p50 <= s.p95 && s.p95 <= s.p99);
        assert_eq!(s.series.iter().map(|p| p.requests).sum::<u64>(), s.requests);
        assert_eq!(s.series.len(), 10);
        assert_eq!(s.charges, u64::from(truth.charges));
        assert!(s.charges > 0);
    }

    #[test]
    fn the_comparison_says_which_way_each_metric_moved() {
        let a = RunSummary {
            requests: 1_000,
            errors: 10,
            p99: Some(Duration::from_ms(200)),
            duplicate_charges: 0,
            ..RunSummary::default()
        };
        let b = RunSummary {
            requests: 1_000,
            errors: 5,
            p99: Some(Duration::from_ms(300)),
            duplicate_charges: 3,
            ..RunSummary::default()
        };
        let rows = compare(&a, &b);
        let row = |m: &str| rows.iter().find(|r| r.metric == m).unwrap().clone();
        assert_eq!(row("error rate").verdict, Verdict::Better);
        assert_eq!(row("error rate").change, "−0.50 pp");
        assert_eq!(row("p99").verdict, Verdict::Worse);
        assert_eq!(row("p99").change, "+100 ms (+50%)");
        assert_eq!(row("duplicate charges").change, "+3");
        assert_eq!(row("requests").verdict, Verdict::Same);
        assert_eq!(row("p50").a, "—");
        assert_eq!(crate::query::group_thousands(1_234_567), "1,234,567");

        // Within 5% of the larger value the verdict is "same", the change still exact; from
        // none to some always counts.
        let c = RunSummary {
            p95: Some(Duration::from_us(55_100)),
            timeouts: 98,
            duplicate_charges: 1,
            ..a.clone()
        };
        let a = RunSummary {
            p95: Some(Duration::from_us(54_500)),
            timeouts: 96,
            ..a
        };
        let rows = compare(&a, &c);
        let row = |m: &str| rows.iter().find(|r| r.metric == m).unwrap().clone();
        assert_eq!(row("p95").verdict, Verdict::Same);
        assert_eq!(row("p95").change, "+0.6 ms (+1%)");
        assert_eq!(row("timeouts").verdict, Verdict::Same);
        assert_eq!(row("timeouts").change, "+2 (+2%)");
        assert_eq!(row("duplicate charges").verdict, Verdict::Worse);
    }
}
