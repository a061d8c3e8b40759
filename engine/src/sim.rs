//! The discrete-event simulation of the mesh. Events run in (virtual time, sequence) order from
//! one queue; each server request holds a worker from start to response, steps run in order,
//! and calls carry the client policy (timeout, retries with backoff). Spans and logs are
//! written as things happen.

use std::collections::{BTreeMap, VecDeque};
use std::num::NonZeroU64;

use crate::edge::{Admission, Breaker, Bulkhead, Entry, Transition};
use crate::lookup::Lookup;
use crate::metrics::{BreakerSample, InstanceSample};
use crate::random::Random;
use crate::scenario::{
    Balancer, CallPolicy, DataEffect, FaultEffect, LogLevel, Scenario, ScenarioError, ServiceRole,
    Step,
};
use crate::telemetry::{
    Attributes, Events, Fields, Level, LogLine, ServiceId, Span, SpanEvent, SpanId, SpanKind,
    SpanStatus, Sym, Telemetry, TraceId, Value, smallvec,
};
use crate::time::{self, Duration, SimTime};

mod agenda;
mod cache_queue;
mod deadlines;
mod gc;
mod growth;
mod infra;
mod lease;
mod series;
use cache_queue::{CallRole, Stores};

/// Hard bound on events in one run; past it the run stops and says so (`truncated`).
pub const EVENTS_PER_RUN_MAX: u64 = 50_000_000;
/// One-way network delay between services, uniform in this range, in microseconds.
const NETWORK_US: (u64, u64) = (200, 800);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InvId(u32);
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct CallId(u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Arrival,
    Arrive(InvId),
    WorkDone(InvId),
    Response {
        call: CallId,
        attempt: u32,
        status: u16,
    },
    Timeout {
        call: CallId,
        attempt: u32,
    },
    /// The first timeout waiting in lane `n` of `deadlines` is due (see there): it becomes a
    /// `Timeout` event, or nothing when its attempt has ended.
    Deadline(u16),
    /// The end of a metrics bucket: sample the gauges.
    Sample,
    /// The workload's burst number `n` arrives.
    Burst(u32),
    /// An outside client tries a failed request again.
    ClientRetry {
        service: u16,
        operation: u16,
        user: Option<u32>,
        attempt: u32,
    },
    /// A call has waited its pool's acquire timeout for a connection.
    PoolTimeout {
        call: CallId,
        attempt: u32,
    },
    /// An attempt refused on the client side, without reaching the network.
    Refused {
        call: CallId,
        attempt: u32,
        reason: Refusal,
    },
    Retry(CallId),
    /// An instance's heap is full: collect it (if the process that scheduled it, counted from
    /// 0 and one more after each kill, is still the one running).
    Collect {
        service: u16,
        instance: u16,
        process: u32,
    },
    /// A killed instance comes back.
    Restart {
        service: u16,
        instance: u16,
    },
    /// Fault `fault` crashes an instance.
    Crash {
        service: u16,
        instance: u16,
        fault: u16,
    },
    /// A scheduled job's timer fires on one instance.
    Job {
        service: u16,
        operation: u16,
        instance: u16,
    },
    /// Fault `fault` stops an instance's world (see `lease`).
    Stall {
        service: u16,
        instance: u16,
        fault: u16,
    },
    /// The fault holding the consumers of queue `n` back has ended.
    ConsumersWake(u16),
    /// A message reaches a consumer instance, or is requeued after a failed delivery (see
    /// `cache_queue`: the number keys the message in flight).
    Message(u32),
}

/// An event in the queue. Ordered by its key alone, (time, sequence number) packed in one
/// integer, and reversed so the max-heap `BinaryHeap` pops the earliest first: the heap
/// compares one number, never the event.
struct Scheduled {
    key: u128,
    event: Event,
}

impl Scheduled {
    fn at(&self) -> SimTime {
        SimTime((self.key >> 64) as u64)
    }
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.key.cmp(&self.key)
    }
}

/// A request being served by one instance.
struct Invocation {
    service: u16,
    instance: u16,
    operation: u16,
    step: u16,
    trace_id: TraceId,
    /// Its server span. At a service that writes none (see `ServiceRole`), whose trace is
    /// always its caller's: the client span that sent it when that passed its context on, else
    /// `NO_SPAN`; never written to from here. `PENDING_SPAN` while a call is on the wire: the
    /// span opens when it reaches its instance, and never when the process there is gone.
    span: u32,
    /// While its span is pending: the client span that sent it with its context, else
    /// `NO_SPAN` (the callee starts a trace of its own).
    sender: u32,
    /// The call attempt this answers; None for requests from outside the mesh.
    caller: Option<(CallId, u32)>,
    arrived: SimTime,
    /// From when it takes a worker until it answers (or its process dies).
    holds_worker: bool,
    /// It reached its instance while that instance's world was stopped, and waits for the
    /// pause to end before the process takes it in (see `gc`).
    held: bool,
    /// Set once the request has failed; the remaining steps are skipped.
    failure: Option<u16>,
    /// For requests from outside: the user who sent it, and which try of theirs it is.
    user: Option<u32>,
    client_attempt: u32,
    /// The idempotency key the request carries, the same for every attempt of one call.
    idempotency_key: Option<std::num::NonZeroU64>,
    /// Its instance's pause total when its current work step began (see `gc`).
    stall_mark: u64,
    /// The key its last cache lookup asked for.
    cache_key: u64,
    /// For a consumer processing a message: its queue (see `cache_queue`).
    consumer: Option<u16>,
}

/// The steps of one saga request that took effect, in order, as plan step indexes.
#[derive(Default)]
struct Saga {
    /// Steps whose effect is in place and has a compensation (the latest last).
    done: Vec<u16>,
    /// Steps whose compensating call failed: their effect stays.
    stuck: Vec<u16>,
    /// The step whose compensation is running now.
    undoing: Option<u16>,
}

/// One call step of an invocation, across all its attempts.
struct Call {
    caller: InvId,
    service: u16,
    operation: u16,
    /// The caller's plan step it serves (a compensation: the step it undoes).
    step: u16,
    /// Its client policy in `Simulation::policies`: its plan step's (a compensation's: the
    /// step it undoes), looked up once, not copied per call.
    policy: u32,
    /// Its edge in `Simulation::edges`, resolved once when the call is made.
    edge: u32,
    attempt: u32,
    attempt_span: u32,
    done: bool,
    /// The current attempt was let through a half-open breaker.
    probe: Option<u32>,
    /// The current attempt holds a bulkhead slot.
    holds_slot: bool,
    /// The current attempt waits for a bulkhead slot.
    queued: bool,
    /// The current attempt has ended (answered, timed out or refused); a retry may follow.
    settled: bool,
    /// The current attempt holds a connection from its caller's pool.
    holds_connection: bool,
    /// The current attempt waits for a connection from its caller's pool.
    awaits_connection: bool,
    /// This call undoes an earlier step of a failed saga.
    compensation: bool,
    /// An attempt timed out: the callee may have done the work all the same.
    timed_out: bool,
    role: CallRole,
    /// A cache lookup's answer: the key was there.
    cache_hit: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Refusal {
    CircuitOpen,
    BulkheadFull,
    /// The callee instance is down (checked when the request is sent).
    ConnectionRefused,
    /// The callee's process was killed with the request in it (or on its way to it).
    ConnectionReset,
    /// No pool connection came free within the acquire timeout.
    PoolExhausted,
}

impl Refusal {
    fn name(self) -> &'static str {
        match self {
            Refusal::CircuitOpen => "circuit_open",
            Refusal::BulkheadFull => "bulkhead_full",
            Refusal::ConnectionRefused => "connection_refused",
            Refusal::ConnectionReset => "connection_reset",
            Refusal::PoolExhausted => "pool_exhausted",
        }
    }
}

/// A caller instance's view of one operation it calls: (caller service, caller instance,
/// callee service, callee operation).
type EdgeKey = (u16, u16, u16, u16);

#[derive(Default)]
struct EdgeState {
    breaker: Option<Breaker>,
    bulkhead: Option<Bulkhead>,
    /// Attempts started in the budget window, oldest first: (time, was a retry).
    attempts: VecDeque<(SimTime, bool)>,
}

/// How far back a retry budget looks.
const RETRY_BUDGET_WINDOW: Duration = Duration(10_000_000);

struct Instance {
    busy: u16,
    waiting: VecDeque<InvId>,
    pool: Option<Pool>,
    /// The edges this instance calls on, as (callee service, operation, edge id): a few, so a
    /// scan beats a search of `edge_ids`.
    edges: Vec<(u16, u16, u32)>,
}

/// One instance's connection pool to its database.
struct Pool {
    target: u16,
    size: u16,
    acquire_timeout: Duration,
    in_use: u16,
    /// Calls waiting for a connection, oldest first.
    waiting: VecDeque<CallId>,
}

struct ServiceRuntime {
    workers: u16,
    queue_limit: u32,
    instances: Vec<Instance>,
    next_instance: u16,
    operation_names: Vec<Sym>,
    /// Each operation's steps with names resolved to indexes, once, before the run.
    plans: Vec<Vec<PlanStep>>,
    /// Each operation as HTTP and database semantic conventions name it.
    routes: Vec<Route>,
    /// `db.system` of a database service.
    db_system: Option<Sym>,
    /// Whether it writes spans, per-request lines and request metrics (an application), or
    /// is infrastructure that writes none.
    role: ServiceRole,
}

/// A log line's message: a template, or (rarely: a database's slow statement) text made for
/// the line and interned.
enum LineText {
    Template(&'static str),
    Interned(Sym),
}

impl From<&'static str> for LineText {
    fn from(text: &'static str) -> LineText {
        LineText::Template(text)
    }
}

impl From<Sym> for LineText {
    fn from(sym: Sym) -> LineText {
        LineText::Interned(sym)
    }
}

/// `Invocation::span` of a request that has no span and carries no context.
const NO_SPAN: u32 = u32::MAX;
/// `Invocation::span` of a call not yet at its instance.
const PENDING_SPAN: u32 = u32::MAX - 1;

/// How an operation shows in span attributes: an operation named `POST /orders` is the route
/// `/orders` with method `POST`; any other name is its own route. On a database service the
/// operation in capitals is the `db.operation.name` (`SELECT`).
struct Route {
    path: Sym,
    method: Option<Sym>,
    db_operation: Sym,
}

impl Route {
    fn new(name: &str, strings: &mut crate::telemetry::Strings) -> Route {
        const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];
        let (method, path) = match name.split_once(' ') {
            Some((method, path)) if METHODS.contains(&method) && path.starts_with('/') => {
                (Some(strings.intern(method)), path)
            }
            _ => (None, name),
        };
        Route {
            path: strings.intern(path),
            method,
            db_operation: strings.intern(&name.to_uppercase()),
        }
    }
}

/// A scenario step as the event loop runs it: no names to look up on the hot path.
#[derive(Clone)]
enum PlanStep {
    Work {
        /// Its duration in milliseconds.
        latency_ms: crate::random::LogNormal,
    },
    Call {
        service: u16,
        operation: u16,
        policy: CallPolicy,
        /// The callee operation that undoes this call, in a saga.
        compensate: Option<u16>,
        role: CallRole,
    },
}

/// `n % m` in 64-bit steps: wasm32 makes a 128-bit remainder a call to `__umodti3`.
/// (hi·2⁶⁴ + lo) mod m, with 2⁶⁴ mod m folded in; exact for any `m` below 2³².
fn rem_u128(n: u128, m: u32) -> u64 {
    let m = u64::from(m);
    let (hi, lo) = ((n >> 64) as u64 % m, n as u64 % m);
    let two_64 = (u64::MAX % m + 1) % m;
    (hi * two_64 % m + lo) % m
}

/// Service and operation indexes of names the scenario validated.
fn resolve(scenario: &Scenario, service: &str, operation: &str) -> (u16, u16) {
    let s = scenario
        .services
        .iter()
        .position(|s| s.name == service)
        .expect("validated");
    let o = scenario.services[s]
        .operations
        .iter()
        .position(|o| o.name == operation)
        .expect("validated");
    (s as u16, o as u16)
}

pub struct Simulation {
    scenario: Scenario,
    random: Random,
    now: SimTime,
    sequence: u64,
    queue: agenda::Agenda,
    /// The key of the event being handled.
    current_key: u128,
    /// The greatest key of a call timeout set so far (0: none). Most come to nothing, their
    /// attempts ended first (see `deadlines`), but the run still lasts until each would have
    /// come: metrics are sampled and the run is `finished` only once the clock has passed it.
    cancelled_until: u128,
    services: Vec<ServiceRuntime>,
    invocations: Vec<Invocation>,
    /// For a saga request, by invocation: its steps that took effect and what became of them.
    /// Beside the invocations, not in them: most requests are no saga, and an invocation that
    /// owns nothing is dropped with its vector at the end of the run, not visited one by one.
    sagas: Lookup<u32, Saga>,
    calls: Vec<Call>,
    /// Every call step's policy, once; `policy_ids[service][operation][step]` is its index.
    policies: Vec<CallPolicy>,
    policy_ids: Vec<Vec<Vec<u32>>>,
    /// Breakers, bulkheads and retry budgets per edge, by the id `edge_ids` gives it.
    edges: Vec<EdgeState>,
    /// Edge ids by key, in key order (breaker samples go out in this order).
    edge_ids: BTreeMap<EdgeKey, u32>,
    telemetry: Telemetry,
    entry_weight_total: u64,
    /// The workload's entry operations as (service, operation, weight).
    entries: Vec<(u16, u16, u64)>,
    /// Literals already interned, by (address, length): see `intern_static`.
    static_syms: Vec<(usize, usize, Sym)>,
    /// The same, direct-mapped by address: most lookups end here, in one comparison.
    static_cache: [(usize, usize, Sym); 256],
    /// A database call's attribute keys, interned at the first such call (so in the same order
    /// as one by one): four lookups a call otherwise.
    database_keys: Option<[Sym; 4]>,
    events: u64,
    truncated: bool,
    keys: Keys,
    truth: GroundTruth,
    ledger: Ledger,
    heaps: gc::Heaps,
    locks: lease::Locks,
    stores: Stores,
    series: series::OpenSeries,
    databases: infra::Databases,
    deadlines: deadlines::Deadlines,
}

/// What the data effects did: charges per trace, and the idempotency keys already charged.
/// Lookups (hash maps, never walked in order), used on every data effect: the run's totals
/// are sums over them.
#[derive(Default)]
struct Ledger {
    /// Charges made per order step, all its attempts together (never decreased by refunds).
    charges_by_order: Lookup<OrderStep, u32>,
    /// Charges asked for from outside the mesh, so by no order.
    charges_outside_orders: u32,
    charged_keys: Lookup<u64, ()>,
    /// Stock per reserving (service, operation).
    stock: Lookup<(u16, u16), StockState>,
    /// The (stock, version) each reservation in progress read, by invocation, until it writes:
    /// a few at a time, kept here rather than in every invocation.
    stock_reads: Lookup<u32, (u32, u64)>,
    /// Units reserved and payments charged (less those refunded) per order, the order being
    /// the request that called for them (a saga), so that undoing one is safe to repeat and
    /// a no-op when the step never took effect.
    reserved_by_order: Lookup<OrderStep, u32>,
    charged_by_order: Lookup<OrderStep, u32>,
    rows_by_order: Lookup<OrderStep, u32>,
    /// Saga requests that failed, to check against the ledger when the run ends.
    failed_sagas: Vec<InvId>,
}

/// An order (the request that called for a data effect) and the step of it that did: two
/// reservations of one order, at two services or by two steps, are held apart.
type OrderStep = (u32, u16);

/// What a request holds for an order, in the ledger.
#[derive(Clone, Copy)]
enum Held {
    Reservation,
    Charge,
    Row,
}

impl Ledger {
    fn held(&mut self, held: Held) -> &mut Lookup<OrderStep, u32> {
        match held {
            Held::Reservation => &mut self.reserved_by_order,
            Held::Charge => &mut self.charged_by_order,
            Held::Row => &mut self.rows_by_order,
        }
    }
}

struct StockState {
    /// What the stock count says (too high after lost updates).
    stock: u32,
    version: u64,
    /// Units actually handed out.
    sold: u32,
}

/// What was really wrong in a run, for grading: never shown to the learner before they answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroundTruth {
    /// One entry per scenario fault, in the scenario's order.
    pub faults: Vec<FaultTruth>,
    /// Charges made, and how many of them were a second (or later) charge for one order's
    /// step (the attempts of one call), whatever traces they landed in.
    pub charges: u32,
    pub duplicate_charges: u32,
    /// Units sold beyond the stock there was, summed over reserving operations.
    pub oversold_units: u32,
    /// Refunds made (a saga undoing a charge).
    pub refunds: u32,
    /// Saga requests that failed at a step after earlier steps had taken effect.
    pub sagas_failed: u32,
    /// Of those, the ones whose every earlier step was undone.
    pub sagas_compensated: u32,
    /// Steps of failed sagas whose effect stayed in place, by `service:operation` (an order
    /// saved with no stock reserved shows as `database:insert`).
    pub saga_steps_left: BTreeMap<String, u32>,
    /// Writes under a lock made with a fencing token older than the newest granted (a second
    /// holder writing after its lease ran out), that the storage accepted or rejected.
    pub stale_writes_accepted: u32,
    pub stale_writes_rejected: u32,
    /// Message deliveries that ended unacknowledged and were requeued, and messages
    /// dead-lettered after their last delivery failed.
    pub messages_redelivered: u32,
    pub messages_dead_lettered: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultTruth {
    /// The fault's kind as the catalog names it, e.g. `latency`.
    pub kind: &'static str,
    /// The root cause: the service, and the instance when the fault hit only one.
    pub service: String,
    pub instance: Option<u16>,
    pub from: SimTime,
    pub until: SimTime,
    /// When the fault first changed a request: the earliest possible symptom.
    pub first_effect: Option<SimTime>,
    /// Traces with at least one request the fault slowed or failed.
    pub affected_traces: std::collections::BTreeSet<TraceId>,
}

/// Attribute and message strings interned once.
struct Keys {
    route: Sym,
    method: Sym,
    status_code: Sym,
    peer_service: Sym,
    retry_attempt: Sym,
    error_type: Sym,
    timeout: Sym,
    duration_ms: Sym,
    queue_wait_ms: Sym,
    exception: Sym,
}

impl Simulation {
    /// Prepares a run; Err lists every problem in the scenario.
    pub fn new(scenario: Scenario, seed: u64) -> Result<Simulation, Vec<ScenarioError>> {
        let errors = scenario.validate();
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut telemetry = Telemetry::default();
        let strings = &mut telemetry.strings;
        let keys = Keys {
            route: strings.intern("http.route"),
            method: strings.intern("http.request.method"),
            status_code: strings.intern("http.response.status_code"),
            peer_service: strings.intern("peer.service"),
            retry_attempt: strings.intern("retry.attempt"),
            error_type: strings.intern("error.type"),
            timeout: strings.intern("timeout"),
            duration_ms: strings.intern("duration_ms"),
            queue_wait_ms: strings.intern("queue_wait_ms"),
            exception: strings.intern("exception"),
        };
        let roles = scenario.roles();
        let services = scenario
            .services
            .iter()
            .zip(&roles)
            .map(|(s, &role)| ServiceRuntime {
                workers: s.workers,
                queue_limit: s.queue_limit,
                instances: (0..s.instances)
                    .map(|_| Instance {
                        busy: 0,
                        waiting: VecDeque::new(),
                        pool: s.pool.as_ref().map(|p| Pool {
                            target: scenario
                                .services
                                .iter()
                                .position(|t| t.name == p.target)
                                .unwrap_or(0) as u16,
                            size: p.size,
                            acquire_timeout: Duration::from_ms(p.acquire_timeout_ms),
                            in_use: 0,
                            waiting: VecDeque::new(),
                        }),
                        edges: Vec::new(),
                    })
                    .collect(),
                next_instance: 0,
                operation_names: s
                    .operations
                    .iter()
                    .map(|o| telemetry.strings.intern(&o.name))
                    .collect(),
                plans: s
                    .operations
                    .iter()
                    .map(|o| cache_queue::plan(&scenario, &s.name, o, &mut telemetry.strings))
                    .collect(),
                routes: s
                    .operations
                    .iter()
                    .map(|o| Route::new(&o.name, &mut telemetry.strings))
                    .collect(),
                db_system: s.db_system.as_ref().map(|d| telemetry.strings.intern(d)),
                role,
            })
            .collect();
        telemetry.service_names = scenario
            .services
            .iter()
            .map(|s| telemetry.strings.intern(&s.name))
            .collect();
        let entries: Vec<(u16, u16, u64)> = scenario
            .workload
            .entries
            .iter()
            .map(|e| {
                let (service, operation) = resolve(&scenario, &e.service, &e.operation);
                (service, operation, u64::from(e.weight))
            })
            .collect();
        let entry_weight_total = entries.iter().map(|e| e.2).sum();
        let stores = Stores::new(&scenario, &mut telemetry.strings);
        let databases = infra::Databases::new(&scenario);
        let mut sim = Simulation {
            scenario,
            random: Random::new(seed),
            now: SimTime::ZERO,
            sequence: 0,
            queue: agenda::Agenda::default(),
            current_key: 0,
            cancelled_until: 0,
            services,
            invocations: Vec::new(),
            sagas: Lookup::default(),
            calls: Vec::new(),
            policies: Vec::new(),
            policy_ids: Vec::new(),
            edges: Vec::new(),
            edge_ids: BTreeMap::new(),
            telemetry,
            entry_weight_total,
            entries,
            static_syms: Vec::new(),
            static_cache: [(0, 0, Sym(0)); 256],
            database_keys: None,
            events: 0,
            truncated: false,
            keys,
            truth: GroundTruth::default(),
            ledger: Ledger::default(),
            heaps: gc::Heaps::default(),
            locks: lease::Locks::default(),
            stores,
            series: Default::default(),
            databases,
            deadlines: Default::default(),
        };
        let mut policies = Vec::new();
        sim.policy_ids = sim
            .services
            .iter()
            .map(|s| {
                s.plans
                    .iter()
                    .map(|plan| {
                        plan.iter()
                            .map(|step| match step {
                                PlanStep::Call { policy, .. } => {
                                    policies.push(policy.clone());
                                    (policies.len() - 1) as u32
                                }
                                PlanStep::Work { .. } => u32::MAX,
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        sim.deadlines = deadlines::Deadlines::new(policies.iter().map(|p| p.timeout_ms));
        sim.policies = policies;
        sim.truth.faults = sim
            .scenario
            .faults
            .iter()
            .map(|f| FaultTruth {
                kind: f.effect.name(),
                service: f.service.clone(),
                instance: f.instance,
                from: SimTime::from_ms(f.from_ms),
                until: SimTime::from_ms(f.until_ms),
                first_effect: None,
                affected_traces: Default::default(),
            })
            .collect();
        sim.start_heaps();
        sim.start_jobs();
        let first = sim.arrival_gap();
        sim.schedule(first, Event::Arrival);
        let bucket = sim.telemetry.metrics.bucket;
        sim.schedule(bucket, Event::Sample);
        for n in 0..sim.scenario.workload.bursts.len() {
            let at = Duration::from_ms(sim.scenario.workload.bursts[n].at_ms);
            sim.schedule(at, Event::Burst(n as u32));
        }
        Ok(sim)
    }

    pub fn now(&self) -> SimTime {
        self.now
    }

    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// Whether the run hit EVENTS_PER_RUN_MAX and stopped early.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Events handled so far. A call's timeout that its answer came before is not one (see
    /// `deadlines`): nearly every call's.
    pub fn events_processed(&self) -> u64 {
        self.events
    }

    /// True once no event is left: arrivals have stopped and every request has ended. `finish`
    /// then only hands over the telemetry and the ground truth.
    pub fn finished(&self) -> bool {
        self.queue.is_empty()
            && self.cancelled_until <= ((u128::from(self.now.0) << 64) | u128::from(u64::MAX))
    }

    /// Runs every event at or before `until`, then sets the clock to `until`.
    pub fn step_until(&mut self, until: SimTime) {
        while self.step_one(until) {}
        self.close_series();
        self.now = self.now.max(until);
    }

    /// Runs the next event if it is at or before `until`; false when there is none to run.
    /// Its own function in wasm, called per event: V8 swaps in optimized code for a function
    /// only at its next call (no on-stack replacement), so the loop of a run called once would
    /// stay in baseline code throughout.
    #[cfg_attr(target_arch = "wasm32", inline(never))]
    fn step_one(&mut self, until: SimTime) -> bool {
        let until_key = (u128::from(until.0) << 64) | u128::from(u64::MAX);
        let Some(next) = self.queue.pop_until(until_key) else {
            return false;
        };
        let event = match next.event {
            Event::Deadline(lane) => match self.deadline_due(lane, next.key) {
                Some(timeout) => timeout,
                // Its attempt ended in time: no event happens.
                None => return true,
            },
            event => event,
        };
        if self.events >= EVENTS_PER_RUN_MAX {
            self.truncated = true;
            self.queue.clear();
            self.deadlines.clear();
            self.cancelled_until = 0;
            return false;
        }
        self.current_key = next.key;
        let at = next.at();
        assert!(
            at >= self.now,
            "time ran backwards: {at:?} < {:?}",
            self.now
        );
        self.now = at;
        self.events += 1;
        self.handle(event);
        true
    }

    /// Runs to the end: arrivals stop at the scenario's duration and every request finishes.
    pub fn run(self) -> Telemetry {
        self.finish().0
    }

    /// Runs to the end and returns the telemetry with the ground truth of the run.
    pub fn finish(mut self) -> (Telemetry, GroundTruth) {
        self.step_until(SimTime(u64::MAX));
        self.count_failed_sagas();
        let mut truth = std::mem::take(&mut self.truth);
        let by_order = &self.ledger.charges_by_order;
        let total = |sum: u64| u32::try_from(sum).unwrap_or(u32::MAX);
        truth.charges =
            total(by_order.sum_by(|_, n| u64::from(*n))) + self.ledger.charges_outside_orders;
        truth.duplicate_charges = total(by_order.sum_by(|_, n| u64::from(n - 1)));
        truth.oversold_units = total(self.ledger.stock.sum_by(|&(service, operation), state| {
            let spec =
                &self.scenario.services[usize::from(service)].operations[usize::from(operation)];
            let initial = match spec.effect {
                Some(DataEffect::Reserve { initial_stock, .. }) => initial_stock,
                _ => 0,
            };
            u64::from(state.sold.saturating_sub(initial))
        }));
        let mut telemetry = self.telemetry;
        // The run is over: give back the growth slack of the big vectors, where it is worth a copy.
        growth::give_back_slack(&mut telemetry.spans);
        growth::give_back_slack(telemetry.attribute_list());
        growth::give_back_slack(&mut telemetry.logs);
        growth::give_back_slack(&mut telemetry.metrics.instances);
        (telemetry, truth)
    }

    /// Queues `event` after `delay`; gives back its key.
    fn schedule(&mut self, delay: Duration, event: Event) -> u128 {
        self.sequence += 1;
        let at = self.now.after(delay);
        let key = (u128::from(at.0) << 64) | u128::from(self.sequence);
        self.queue.push(self.now.0, Scheduled { key, event });
        key
    }

    fn handle(&mut self, event: Event) {
        if let Event::Arrive(inv) = event {
            if self.invocations[inv.0 as usize].span == PENDING_SPAN {
                self.open_on_arrival(inv);
            }
        }
        if self.heaps.enabled && self.stalled(event) {
            return;
        }
        match event {
            Event::Arrival => self.on_arrival(),
            Event::Arrive(inv) => self.on_arrive(inv),
            Event::WorkDone(inv) => {
                self.invocations[inv.0 as usize].step += 1;
                self.run_step(inv);
            }
            Event::Response {
                call,
                attempt,
                status,
            } => self.on_response(call, attempt, status),
            Event::Timeout { call, attempt } => self.on_timeout(call, attempt),
            Event::Sample => self.on_sample(),
            Event::Burst(n) => {
                for _ in 0..self.scenario.workload.bursts[n as usize].requests {
                    self.new_request();
                }
            }
            Event::ClientRetry {
                service,
                operation,
                user,
                attempt,
            } => {
                self.send_request(service, operation, user, attempt);
            }
            Event::PoolTimeout { call, attempt } => {
                let c = &self.calls[call.0 as usize];
                if !c.done && !c.settled && c.attempt == attempt && c.awaits_connection {
                    self.on_refused(call, attempt, Refusal::PoolExhausted);
                }
            }
            Event::Refused {
                call,
                attempt,
                reason,
            } => self.on_refused(call, attempt, reason),
            Event::Retry(call) => {
                self.calls[call.0 as usize].attempt += 1;
                self.start_attempt(call);
            }
            Event::Collect {
                service,
                instance,
                process,
            } => self.on_collect(service, instance, process),
            Event::Restart { service, instance } => self.on_restart(service, instance),
            Event::Crash {
                service,
                instance,
                fault,
            } => self.on_crash(service, instance, usize::from(fault)),
            Event::Job {
                service,
                operation,
                instance,
            } => self.on_job(service, operation, instance),
            Event::Stall {
                service,
                instance,
                fault,
            } => self.on_stall(service, instance, fault),
            Event::ConsumersWake(group) => self.on_consumers_wake(group),
            // Turned into a timeout, or into nothing, as it leaves the queue (`step_one`).
            Event::Deadline(_) => debug_assert!(false, "a deadline is never handled"),
            Event::Message(flight) => self.on_message(flight),
        }
    }

    fn arrival_gap(&mut self) -> Duration {
        let now_ms = self.now.0 / 1_000;
        let flood: f64 = self
            .scenario
            .faults
            .iter()
            .filter(|f| f.from_ms <= now_ms && now_ms < f.until_ms)
            .filter_map(|f| match f.effect {
                FaultEffect::TrafficFlood { multiplier } => Some(multiplier),
                _ => None,
            })
            .fold(1.0, f64::max);
        let rate = self.scenario.workload.rate_at(now_ms as f64);
        let mean_us = 1_000_000.0 / (rate * flood);
        Duration((self.random.exponential(mean_us) as u64).saturating_add(1))
    }

    #[cfg_attr(target_arch = "wasm32", inline(never))] // see `step_one`
    fn on_arrival(&mut self) {
        if self.now.0 >= self.scenario.duration_ms * 1_000 {
            return;
        }
        let gap = self.arrival_gap();
        self.schedule(gap, Event::Arrival);
        self.new_request();
    }

    /// One request from outside the mesh: picks its entry operation (and user), then sends it.
    fn new_request(&mut self) {
        let mut pick = self.random.below(self.entry_weight_total);
        let &(service, operation, _) = self
            .entries
            .iter()
            .find(|(_, _, weight)| {
                if pick < *weight {
                    true
                } else {
                    pick -= weight;
                    false
                }
            })
            .expect("weights sum to the total");
        let users = self.scenario.workload.users;
        let user = (users > 0).then(|| self.random.below(u64::from(users)) as u32);
        self.send_request(service, operation, user, 0);
    }

    /// Sends an outside request (or an outside client's retry of one) into the mesh.
    fn send_request(
        &mut self,
        service: u16,
        operation: u16,
        user: Option<u32>,
        client_attempt: u32,
    ) {
        // The edge load balancer health-checks: it skips crashed instances, and when every
        // instance is down the request is turned away before it reaches the mesh.
        let Some(instance) = self.pick_instance(service, true) else {
            return;
        };
        let trace_id = TraceId(self.random.trace_id());
        let inv = self.new_invocation(service, instance, operation, trace_id, None, None);
        let i = &mut self.invocations[inv.0 as usize];
        (i.user, i.client_attempt) = (user, client_attempt);
        let span = i.span as usize;
        // Room for exactly what this root span will carry: no growth slack past two.
        let extra = usize::from(user.is_some()) + usize::from(client_attempt > 0);
        self.telemetry.attributes_mut(span).reserve_exact(extra + 1);
        if let Some(user) = user {
            let key = self.intern_static("user.id");
            let value = self.telemetry.strings.intern(&format!("user-{user}"));
            self.telemetry
                .attributes_mut(span)
                .push((key, Value::Str(value)));
        }
        if client_attempt > 0 {
            let key = self.intern_static("client.retry");
            self.telemetry
                .attributes_mut(span)
                .push((key, Value::int(i64::from(client_attempt))));
        }
        self.schedule(Duration::ZERO, Event::Arrive(inv));
    }

    /// Interns a string literal, remembering it by address: log messages and attribute keys
    /// are interned on every event, and a map lookup by content each time shows in profiles.
    #[inline(always)]
    fn intern_static(&mut self, text: &'static str) -> Sym {
        let address = text.as_ptr() as usize;
        // Which slot only decides how fast, never which symbol: output stays the same.
        let mixed =
            (address as u64 ^ ((text.len() as u64) << 48)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let slot = (mixed >> 56) as usize; // the top 8 bits: one of 256 slots
        let (a, len, sym) = self.static_cache[slot];
        if a == address && len == text.len() {
            return sym;
        }
        self.intern_static_slow(text, slot)
    }

    #[inline(never)]
    fn intern_static_slow(&mut self, text: &'static str, slot: usize) -> Sym {
        let address = text.as_ptr() as usize;
        let sym = match self
            .static_syms
            .iter()
            .find(|(a, len, _)| *a == address && *len == text.len())
        {
            Some(&(_, _, sym)) => sym,
            None => {
                let sym = self.telemetry.strings.intern(text);
                self.static_syms.push((address, text.len(), sym));
                sym
            }
        };
        self.static_cache[slot] = (address, text.len(), sym);
        sym
    }

    fn new_span_id(&mut self) -> SpanId {
        SpanId(NonZeroU64::new(self.random.id()).unwrap_or(NonZeroU64::MIN))
    }

    fn open_span(
        &mut self,
        trace_id: TraceId,
        parent: Option<SpanId>,
        service: u16,
        instance: u16,
        operation: Sym,
        kind: SpanKind,
    ) -> u32 {
        let span_id = self.new_span_id();
        let index = self.telemetry.spans.len() as u32;
        self.telemetry.spans.push(Span {
            trace_id,
            span_id,
            parent,
            service: ServiceId(service),
            instance,
            operation,
            kind,
            start: self.now,
            end_time: Span::OPEN,
            status: SpanStatus::Unset,
            attributes: Attributes::default(),
            events: Events::new(),
        });
        index
    }

    /// Picks an instance of `service` by its balancer; with `skip_crashed`, as a health-checking
    /// balancer would, never a crashed one (None when all are down).
    fn pick_instance(&mut self, service: u16, skip_crashed: bool) -> Option<u16> {
        let count = self.services[usize::from(service)].instances.len() as u16;
        let usable = |sim: &Self, i: u16| !skip_crashed || !sim.instance_crashed(service, i);
        match self.scenario.services[usize::from(service)].balancer {
            Balancer::RoundRobin => {
                let start = self.services[usize::from(service)].next_instance;
                let picked = (0..count)
                    .map(|k| (start + k) % count)
                    .find(|&i| usable(self, i))?;
                self.services[usize::from(service)].next_instance = (picked + 1) % count;
                Some(picked)
            }
            Balancer::Random => {
                let healthy: Vec<u16> = (0..count).filter(|&i| usable(self, i)).collect();
                if healthy.is_empty() {
                    return None;
                }
                let pick = self.random.below(healthy.len() as u64) as usize;
                Some(healthy[pick])
            }
            Balancer::LeastOutstanding => {
                (0..count).filter(|&i| usable(self, i)).min_by_key(|&i| {
                    let slot = &self.services[usize::from(service)].instances[usize::from(i)];
                    (u32::from(slot.busy) + slot.waiting.len() as u32, i)
                })
            }
        }
    }

    fn new_invocation(
        &mut self,
        service: u16,
        instance: u16,
        operation: u16,
        trace_id: TraceId,
        parent: Option<SpanId>,
        caller: Option<(CallId, u32)>,
    ) -> InvId {
        let span = if self.services[usize::from(service)].role.instrumented() {
            self.open_server_span(service, instance, operation, trace_id, parent)
        } else {
            NO_SPAN
        };
        self.push_invocation(service, instance, operation, trace_id, span, caller)
    }

    /// Records a request with its server span: open, `PENDING_SPAN` or none.
    fn push_invocation(
        &mut self,
        service: u16,
        instance: u16,
        operation: u16,
        trace_id: TraceId,
        span: u32,
        caller: Option<(CallId, u32)>,
    ) -> InvId {
        let id = InvId(self.invocations.len() as u32);
        self.invocations.push(Invocation {
            service,
            instance,
            operation,
            step: 0,
            trace_id,
            span,
            sender: NO_SPAN,
            caller,
            arrived: self.now,
            holds_worker: false,
            held: false,
            failure: None,
            user: None,
            client_attempt: 0,
            idempotency_key: None,
            stall_mark: 0,
            cache_key: 0,
            consumer: None,
        });
        id
    }

    /// A call reached its instance: its server span starts now, with the idempotency key it
    /// carries. When the process there is gone (killed while the request was on the wire),
    /// nothing reads it: no span, and the caller's connection is reset (see `gc`).
    fn open_on_arrival(&mut self, inv: InvId) {
        let i = &self.invocations[inv.0 as usize];
        let (service, instance, operation, trace_id) =
            (i.service, i.instance, i.operation, i.trace_id);
        let (sender, key) = (i.sender, i.idempotency_key);
        if self.instance_down(service, instance) {
            self.invocations[inv.0 as usize].span = NO_SPAN;
            return;
        }
        let parent = (sender != NO_SPAN).then(|| self.telemetry.spans[sender as usize].span_id);
        let span = self.open_server_span(service, instance, operation, trace_id, parent);
        if let Some(key) = key {
            let name = self.intern_static("idempotency.key");
            let mut attributes = self.telemetry.attributes_mut(span as usize);
            attributes.reserve_exact(2); // the key, then the status
            attributes.push((name, Value::int(key.get() as i64)));
        }
        self.invocations[inv.0 as usize].span = span;
    }

    /// The server span of a request to an instrumented service, with its method and route.
    fn open_server_span(
        &mut self,
        service: u16,
        instance: u16,
        operation: u16,
        trace_id: TraceId,
        parent: Option<SpanId>,
    ) -> u32 {
        let name = self.services[usize::from(service)].operation_names[usize::from(operation)];
        let span = self.open_span(trace_id, parent, service, instance, name, SpanKind::Server);
        let route = &self.services[usize::from(service)].routes[usize::from(operation)];
        let (path, method) = (route.path, route.method);
        let mut attributes = self.telemetry.attributes_mut(span as usize);
        // Room for exactly method, route and status: past two they go to the heap.
        attributes.reserve_exact(usize::from(method.is_some()) + 2);
        if let Some(method) = method {
            attributes.push((self.keys.method, Value::Str(method)));
        }
        attributes.push((self.keys.route, Value::Str(path)));
        span
    }

    #[cfg_attr(target_arch = "wasm32", inline(never))] // see `step_one`
    fn on_arrive(&mut self, inv: InvId) {
        let (service, instance) = {
            let i = &mut self.invocations[inv.0 as usize];
            i.held = false;
            (usize::from(i.service), usize::from(i.instance))
        };
        let runtime = &mut self.services[service];
        let workers = runtime.workers;
        let queue_limit = runtime.queue_limit as usize;
        let slot = &mut runtime.instances[instance];
        if slot.busy < workers {
            self.start(inv);
        } else if slot.waiting.len() < queue_limit
            || self.invocations[inv.0 as usize].consumer.is_some()
        {
            // A message the broker delivered waits in the client's buffer (at most the
            // prefetch count of them), never rejected.
            slot.waiting.push_back(inv);
        } else {
            self.invocations[inv.0 as usize].failure = Some(503);
            self.complete(inv);
        }
    }

    fn start(&mut self, inv: InvId) {
        let i = &self.invocations[inv.0 as usize];
        let (service, instance, trace, span) = (i.service, i.instance, i.trace_id, i.span as usize);
        if self.scenario.services[usize::from(service)].log_level == LogLevel::Debug
            && self.services[usize::from(service)].role.instrumented()
        {
            let span_id = self.telemetry.spans[span].span_id;
            self.log(
                service,
                instance,
                Level::Debug,
                Some((trace, span_id)),
                "request started",
                smallvec![],
            );
        }
        let i = &mut self.invocations[inv.0 as usize];
        i.holds_worker = true;
        let slot = &mut self.services[usize::from(i.service)].instances[usize::from(i.instance)];
        slot.busy += 1;
        assert!(
            slot.busy <= self.services[usize::from(i.service)].workers,
            "worker limit exceeded"
        );
        if self.locks.enabled {
            self.take_lock(inv);
        }
        self.run_step(inv);
    }

    #[cfg_attr(target_arch = "wasm32", inline(never))] // see `step_one`
    fn run_step(&mut self, inv: InvId) {
        let i = &self.invocations[inv.0 as usize];
        let steps = &self.services[usize::from(i.service)].plans[usize::from(i.operation)];
        if i.failure.is_some() || usize::from(i.step) >= steps.len() {
            self.complete(inv);
            return;
        }
        match steps[usize::from(i.step)] {
            PlanStep::Work { latency_ms } => {
                let ms = self.random.sample(latency_ms);
                let extra_ms = self.active_latency(i.service, i.instance);
                let us =
                    ((ms * 1_000.0) as u64).saturating_add(time::saturating_mul(extra_ms, 1_000));
                if extra_ms > 0 {
                    let trace = i.trace_id;
                    let acting: Vec<usize> = self
                        .active_fault_indexes(i.service, i.instance)
                        .filter(|f| matches!(self.scenario.faults[*f].effect, FaultEffect::Latency { extra_ms } if extra_ms > 0))
                        .collect();
                    for f in acting {
                        self.fault_acted(f, trace);
                    }
                }
                let us = self.work_time_us(inv, us);
                self.schedule(Duration(us), Event::WorkDone(inv));
            }
            PlanStep::Call {
                service,
                operation,
                role,
                ..
            } => {
                let step = i.step;
                self.begin_store_call(inv, role);
                self.call(inv, service, operation, step, false, role);
            }
        }
    }

    fn call(
        &mut self,
        inv: InvId,
        service: u16,
        operation: u16,
        step: u16,
        compensation: bool,
        role: CallRole,
    ) {
        let call = CallId(self.calls.len() as u32);
        let i = &self.invocations[inv.0 as usize];
        let key = (i.service, i.instance, service, operation);
        let policy_id =
            self.policy_ids[usize::from(i.service)][usize::from(i.operation)][usize::from(step)];
        let known = self.services[usize::from(i.service)].instances[usize::from(i.instance)]
            .edges
            .iter()
            .find(|(s, o, _)| (*s, *o) == (service, operation));
        let edge = match known {
            Some(&(_, _, edge)) => edge,
            None => {
                let policy = &self.policies[policy_id as usize];
                let edge = self.edges.len() as u32;
                self.edges.push(EdgeState {
                    breaker: policy.breaker.clone().map(Breaker::new),
                    bulkhead: policy.bulkhead.clone().map(Bulkhead::new),
                    attempts: VecDeque::new(),
                });
                self.edge_ids.insert(key, edge);
                let (caller_service, caller_instance) = (key.0, key.1);
                self.services[usize::from(caller_service)].instances[usize::from(caller_instance)]
                    .edges
                    .push((service, operation, edge));
                edge
            }
        };
        self.calls.push(Call {
            caller: inv,
            service,
            operation,
            step,
            policy: policy_id,
            edge,
            attempt: 0,
            attempt_span: 0,
            done: false,
            probe: None,
            holds_slot: false,
            queued: false,
            settled: false,
            holds_connection: false,
            awaits_connection: false,
            compensation,
            timed_out: false,
            role,
            cache_hit: false,
        });
        self.start_attempt(call);
    }

    /// A call's client policy (timeout, retries, breaker...), its plan step's.
    fn policy(&self, call: CallId) -> &CallPolicy {
        &self.policies[self.calls[call.0 as usize].policy as usize]
    }

    /// The current plan step of an invocation, when it is a call with a compensation.
    fn compensable_step(&self, inv: InvId) -> Option<u16> {
        let i = &self.invocations[inv.0 as usize];
        let plan = &self.services[usize::from(i.service)].plans[usize::from(i.operation)];
        match plan.get(usize::from(i.step)) {
            Some(PlanStep::Call {
                compensate: Some(_),
                ..
            }) => Some(i.step),
            _ => None,
        }
    }

    /// A call step answered: a compensation moves the saga on, any other call moves to the
    /// next step (remembering it in the saga when it can be undone).
    fn call_succeeded(&mut self, call: CallId) {
        let c = &mut self.calls[call.0 as usize];
        c.done = true;
        let (caller, compensation) = (c.caller, c.compensation);
        if compensation {
            self.undo_next(caller);
            return;
        }
        if let Some(step) = self.compensable_step(caller) {
            self.sagas.or_default(caller.0).done.push(step);
        }
        self.read_stock(caller);
        let steps = self.steps_after_success(call);
        self.invocations[caller.0 as usize].step += steps;
        self.run_step(caller);
    }

    /// A call step failed for good with `status`: a compensation leaves its step's effect in
    /// place and the saga goes on undoing; any other call fails the request.
    fn call_failed(&mut self, call: CallId, status: u16) {
        let c = &mut self.calls[call.0 as usize];
        c.done = true;
        let (caller, compensation) = (c.caller, c.compensation);
        if compensation {
            let saga = self
                .sagas
                .get_mut(&caller.0)
                .expect("a compensation runs in a saga");
            if let Some(step) = saga.undoing.take() {
                saga.stuck.push(step);
            }
            self.undo_next(caller);
            return;
        }
        self.invocations[caller.0 as usize].failure = Some(status);
        // A step that timed out may have taken effect where the caller cannot see: it is undone
        // too, and its compensation must be safe when there is nothing to undo.
        if let Some(step) = self
            .compensable_step(caller)
            .filter(|_| self.calls[call.0 as usize].timed_out)
        {
            self.sagas.or_default(caller.0).done.push(step);
        }
        let undo = self.sagas.get(&caller.0).map_or(0, |s| s.done.len());
        if undo == 0 {
            self.complete(caller);
            return;
        }
        let i = &self.invocations[caller.0 as usize];
        let (service, instance, trace_id) = (i.service, i.instance, i.trace_id);
        let span_id = self.telemetry.spans[i.span as usize].span_id;
        let skip = self.active_fault_indexes(service, instance).find(|f| {
            matches!(
                self.scenario.faults[*f].effect,
                FaultEffect::SagaNoCompensation
            )
        });
        if let Some(fault) = skip {
            // The compensation handler is gone: the request just fails, its steps left done.
            self.fault_acted(fault, trace_id);
            self.complete(caller);
            return;
        }
        let peer = self.telemetry.service_names[usize::from(self.calls[call.0 as usize].service)];
        let undo_key = self.intern_static("saga.undo_steps");
        self.log(
            service,
            instance,
            Level::Warn,
            Some((trace_id, span_id)),
            "saga step failed, compensating",
            smallvec![
                (self.keys.peer_service, Value::Str(peer)),
                (undo_key, Value::int(undo as i64)),
            ],
        );
        self.undo_next(caller);
    }

    /// Runs the compensation of the latest step still in effect, or, when none is left,
    /// answers the saga's failure.
    fn undo_next(&mut self, inv: InvId) {
        let i = &mut self.invocations[inv.0 as usize];
        let saga = self.sagas.get_mut(&inv.0).expect("undo runs in a saga");
        let Some(step) = saga.done.pop() else {
            saga.undoing = None;
            let stuck = saga.stuck.len();
            let (service, instance, trace_id) = (i.service, i.instance, i.trace_id);
            let span_id = self.telemetry.spans[i.span as usize].span_id;
            let (level, message) = if stuck == 0 {
                (Level::Info, "saga compensated")
            } else {
                (
                    Level::Error,
                    "saga compensation failed, steps left in effect",
                )
            };
            let key = self.intern_static("saga.steps_left");
            self.log(
                service,
                instance,
                level,
                Some((trace_id, span_id)),
                message,
                smallvec![(key, Value::int(stuck as i64))],
            );
            self.complete(inv);
            return;
        };
        saga.undoing = Some(step);
        let plan = &self.services[usize::from(i.service)].plans[usize::from(i.operation)];
        let PlanStep::Call {
            service,
            compensate: Some(undo),
            ..
        } = &plan[usize::from(step)]
        else {
            unreachable!("only steps with a compensation are recorded");
        };
        let (service, undo) = (*service, *undo);
        self.call(inv, service, undo, step, true, CallRole::Plain);
    }

    /// Faults in force now on one instance.
    fn active_faults(&self, service: u16, instance: u16) -> impl Iterator<Item = &FaultEffect> {
        self.active_fault_indexes(service, instance)
            .map(|f| &self.scenario.faults[f].effect)
    }

    /// Indexes of the faults in force now on one instance.
    fn active_fault_indexes(
        &self,
        service: u16,
        instance: u16,
    ) -> impl Iterator<Item = usize> + '_ {
        // Asked several times per request: with no faults, nothing to look up.
        let faults = &self.scenario.faults;
        let (name, now_ms) = match faults.is_empty() {
            true => ("", 0),
            false => (
                self.scenario.services[usize::from(service)].name.as_str(),
                self.now.0 / 1_000,
            ),
        };
        faults.iter().enumerate().filter_map(move |(index, f)| {
            let active = f.service == name
                && f.instance.is_none_or(|i| i == instance)
                && f.from_ms <= now_ms
                && now_ms < f.until_ms;
            active.then_some(index)
        })
    }

    /// The stock-reservation settings of an invocation's operation, if it reserves.
    fn reservation(&self, inv: InvId) -> Option<(u16, u16, u32, bool)> {
        let i = &self.invocations[inv.0 as usize];
        let spec =
            &self.scenario.services[usize::from(i.service)].operations[usize::from(i.operation)];
        match spec.effect {
            Some(DataEffect::Reserve {
                initial_stock,
                optimistic_locking,
            }) => Some((i.service, i.operation, initial_stock, optimistic_locking)),
            _ => None,
        }
    }

    /// A reservation reads stock and version when its first call (the select) returns.
    fn read_stock(&mut self, inv: InvId) {
        let Some((service, operation, initial, _)) = self.reservation(inv) else {
            return;
        };
        if self.ledger.stock_reads.contains_key(&inv.0) {
            return;
        }
        let stock = self.ledger.stock.or_insert(
            (service, operation),
            StockState {
                stock: initial,
                version: 0,
                sold: 0,
            },
        );
        let read = (stock.stock, stock.version);
        self.ledger.stock_reads.insert(inv.0, read);
    }

    /// Writes a reservation back: Ok when a unit was taken, Err(409) when out of stock. Under
    /// optimistic locking a version that moved since the read is caught and the write retried
    /// on the current count; without it the stale count is written (a lost update).
    fn write_stock(&mut self, inv: InvId) -> Result<(), u16> {
        let Some((service, operation, _, locking)) = self.reservation(inv) else {
            return Ok(());
        };
        self.read_stock(inv);
        let (read_stock, read_version) =
            self.ledger.stock_reads.remove(&inv.0).expect("read above");
        let i = &self.invocations[inv.0 as usize];
        let (instance, trace) = (i.instance, i.trace_id);
        let race = self
            .active_fault_indexes(service, instance)
            .find(|f| matches!(self.scenario.faults[*f].effect, FaultEffect::StockRace));
        let locking = locking && race.is_none();
        let span_id = self.telemetry.spans[self.invocations[inv.0 as usize].span as usize].span_id;
        let state = self
            .ledger
            .stock
            .get_mut(&(service, operation))
            .expect("read above");
        // Someone wrote since this request read: writing its count would lose their update.
        let lost_update = state.version != read_version;
        // With a version check the conflict is caught and the write retried on a fresh read.
        let base = if locking && lost_update {
            state.stock
        } else {
            read_stock
        };
        if base == 0 {
            self.log(
                service,
                instance,
                Level::Warn,
                Some((trace, span_id)),
                "out of stock",
                smallvec![],
            );
            return Err(409);
        }
        state.stock = base - 1;
        state.version += 1;
        state.sold += 1;
        let left = i64::from(state.stock);
        if let Some(order) = self.order_of(inv) {
            *self.ledger.reserved_by_order.or_default(order) += 1;
        }
        if locking && lost_update {
            self.log(
                service,
                instance,
                Level::Info,
                Some((trace, span_id)),
                "stock version conflict, retried",
                smallvec![],
            );
        }
        if let Some(fault) = race.filter(|_| lost_update) {
            self.fault_acted(fault, trace);
        }
        let key = self.intern_static("stock_left");
        self.log(
            service,
            instance,
            Level::Info,
            Some((trace, span_id)),
            "stock reserved",
            smallvec![(key, Value::int(left))],
        );
        Ok(())
    }

    /// The order a data request is for: the request that called it, and the step of that
    /// request it serves (None from outside).
    fn order_of(&self, inv: InvId) -> Option<OrderStep> {
        let (call, _) = self.invocations[inv.0 as usize].caller?;
        let c = &self.calls[call.0 as usize];
        Some((c.caller.0, c.step))
    }

    /// Undoes one reservation (or one charge) of the request's order, when it has one left:
    /// false when there is nothing to undo, so a compensation can be repeated safely.
    fn take_back(&mut self, inv: InvId, held: Held) -> bool {
        let Some(order) = self.order_of(inv) else {
            return false;
        };
        match self.ledger.held(held).get_mut(&order) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }

    /// Gives one unit back to the stock of the service's reserving operation (validation made
    /// sure it has one) and returns the stock left.
    fn release_stock(&mut self, service: u16) -> u32 {
        let spec = &self.scenario.services[usize::from(service)];
        let Some((operation, initial)) =
            spec.operations
                .iter()
                .enumerate()
                .find_map(|(o, op)| match op.effect {
                    Some(DataEffect::Reserve { initial_stock, .. }) => {
                        Some((o as u16, initial_stock))
                    }
                    _ => None,
                })
        else {
            return 0;
        };
        let state = self.ledger.stock.or_insert(
            (service, operation),
            StockState {
                stock: initial,
                version: 0,
                sold: 0,
            },
        );
        state.stock = state.stock.saturating_add(1);
        state.version += 1;
        state.sold = state.sold.saturating_sub(1);
        state.stock
    }

    /// The non_idempotent_retry fault in force on a caller instance, if any.
    fn non_idempotent_retry(&self, service: u16, instance: u16) -> Option<usize> {
        self.active_fault_indexes(service, instance).find(|f| {
            matches!(
                self.scenario.faults[*f].effect,
                FaultEffect::NonIdempotentRetry
            )
        })
    }

    /// Applies a successful request's lasting effect: a charge is made, or, when its
    /// idempotency key was charged before, answered from that first charge. Its lines go in
    /// `span` (None only for infrastructure, whose effects write none).
    fn apply_effect(&mut self, inv: InvId, span: Option<SpanId>) {
        let i = &self.invocations[inv.0 as usize];
        let (service, instance, operation, trace_id, key) = (
            i.service,
            i.instance,
            i.operation,
            i.trace_id,
            i.idempotency_key.map(std::num::NonZeroU64::get),
        );
        let effect =
            self.scenario.services[usize::from(service)].operations[usize::from(operation)].effect;
        if effect.is_none() {
            return;
        }
        // An order's amount follows from its trace: a second charge repeats the same sum.
        let amount = 10 + rem_u128(trace_id.0, 490) as i64;
        let amount_key = self.intern_static("amount");
        let undone = match effect {
            Some(DataEffect::Charge) => None,
            Some(DataEffect::Refund) => Some(if self.take_back(inv, Held::Charge) {
                self.truth.refunds += 1;
                (
                    "payment refunded",
                    smallvec![(amount_key, Value::int(amount))],
                )
            } else {
                (
                    "refund skipped, nothing charged for this order",
                    smallvec![],
                )
            }),
            Some(DataEffect::Release) => Some(if self.take_back(inv, Held::Reservation) {
                let left = i64::from(self.release_stock(service));
                let key = self.intern_static("stock_left");
                ("stock released", smallvec![(key, Value::int(left))])
            } else {
                (
                    "release skipped, nothing reserved for this order",
                    smallvec![],
                )
            }),
            Some(DataEffect::Insert) => {
                if let Some(order) = self.order_of(inv) {
                    *self.ledger.rows_by_order.or_default(order) += 1;
                }
                return;
            }
            Some(DataEffect::Delete) => {
                self.take_back(inv, Held::Row);
                return;
            }
            _ => return,
        };
        if let Some((message, fields)) = undone {
            let context = span.map(|s| (trace_id, s));
            self.log(service, instance, Level::Info, context, message, fields);
            return;
        }
        if let Some(key) = key {
            if self.ledger.charged_keys.insert(key, ()).is_some() {
                let fields = smallvec![(
                    self.intern_static("idempotency.key"),
                    Value::int(key as i64),
                )];
                self.log(
                    service,
                    instance,
                    Level::Info,
                    span.map(|s| (trace_id, s)),
                    "duplicate charge request, answered from the first charge",
                    fields,
                );
                return;
            }
        }
        match self.order_of(inv) {
            Some(order) => {
                *self.ledger.charges_by_order.or_default(order) += 1;
                *self.ledger.charged_by_order.or_default(order) += 1;
            }
            None => self.ledger.charges_outside_orders += 1,
        }
        self.log(
            service,
            instance,
            Level::Info,
            span.map(|s| (trace_id, s)),
            "payment charged",
            smallvec![(amount_key, Value::int(amount))],
        );
    }

    fn instance_crashed(&self, service: u16, instance: u16) -> bool {
        self.active_faults(service, instance)
            .any(|f| matches!(f, FaultEffect::Crash))
            || self.instance_down(service, instance)
    }

    /// Notes that fault `index` changed what happened to a request of `trace`.
    fn fault_acted(&mut self, index: usize, trace: TraceId) {
        let now = self.now;
        let effect = &mut self.truth.faults[index];
        effect.first_effect.get_or_insert(now);
        effect.affected_traces.insert(trace);
    }

    fn active_latency(&self, service: u16, instance: u16) -> u64 {
        self.active_faults(service, instance)
            .map(|f| match f {
                FaultEffect::Latency { extra_ms } => *extra_ms,
                _ => 0,
            })
            .sum()
    }

    fn network_delay(&mut self) -> Duration {
        Duration(NETWORK_US.0 + self.random.below(NETWORK_US.1 - NETWORK_US.0))
    }

    #[cfg_attr(target_arch = "wasm32", inline(never))] // see `step_one`
    fn start_attempt(&mut self, call: CallId) {
        let c = &self.calls[call.0 as usize];
        let (caller, service, operation, attempt, timeout_ms) = (
            c.caller,
            c.service,
            c.operation,
            c.attempt,
            self.policy(call).timeout_ms,
        );
        let parent_inv = &self.invocations[caller.0 as usize];
        let (trace_id, parent_span, caller_service, caller_instance) = (
            parent_inv.trace_id,
            self.telemetry.spans[parent_inv.span as usize].span_id,
            parent_inv.service,
            parent_inv.instance,
        );
        let name = self.services[usize::from(service)].operation_names[usize::from(operation)];
        let span = self.open_span(
            trace_id,
            Some(parent_span),
            caller_service,
            caller_instance,
            name,
            SpanKind::Client,
        );
        let peer = self.telemetry.service_names[usize::from(service)];
        let c = &self.calls[call.0 as usize];
        let callee = &self.services[usize::from(service)];
        let db_system = callee
            .db_system
            .filter(|_| matches!(c.role, CallRole::Plain));
        // Room for exactly what this client span will carry when it succeeds: the peer, the
        // HTTP status if it has one, and the rest.
        let extra = usize::from(attempt > 0)
            + usize::from(c.compensation)
            + infra::DATABASE_ATTRIBUTES * usize::from(db_system.is_some())
            + cache_queue::store_attribute_count(c.role)
            + usize::from(self.call_is_http(call));
        let mut attrs = self.telemetry.attributes_mut(span as usize);
        attrs.reserve_exact(extra + 1);
        attrs.push((self.keys.peer_service, Value::Str(peer)));
        if attempt > 0 {
            attrs.push((self.keys.retry_attempt, Value::int(i64::from(attempt))));
        }
        if self.calls[call.0 as usize].compensation {
            let key = self.intern_static("saga.compensation");
            self.telemetry
                .attributes_mut(span as usize)
                .push((key, Value::Bool(true)));
        }
        self.store_call_attributes(call, span);
        if let Some(system) = db_system {
            self.database_call_attributes(call, span, system);
        }
        let c = &mut self.calls[call.0 as usize];
        c.attempt_span = span;
        c.probe = None;
        c.holds_slot = false;
        c.queued = false;
        c.settled = false;
        if let Some(ms) = timeout_ms {
            self.set_deadline(call, attempt, ms);
        }
        // Retry wraps breaker wraps bulkhead: the breaker sees bulkhead refusals as failures.
        let edge_id = self.calls[call.0 as usize].edge as usize;
        let budget = self.policy(call).retry_budget.is_some();
        let edge = &mut self.edges[edge_id];
        if budget {
            let horizon = SimTime(self.now.0.saturating_sub(RETRY_BUDGET_WINDOW.0));
            while edge.attempts.front().is_some_and(|(t, _)| *t < horizon) {
                edge.attempts.pop_front();
            }
            edge.attempts.push_back((self.now, attempt > 0));
        }
        if let Some(breaker) = &mut edge.breaker {
            let (admission, transition) = breaker.admit(self.now);
            if let Some(t) = transition {
                self.on_transition(call, t);
            }
            match admission {
                Admission::Rejected => {
                    self.refuse(call, attempt, Refusal::CircuitOpen);
                    return;
                }
                Admission::Allowed { probe } => self.calls[call.0 as usize].probe = probe,
            }
        }
        let edge = &mut self.edges[edge_id];
        if let Some(bulkhead) = &mut edge.bulkhead {
            match bulkhead.enter(call.0) {
                Entry::Run => self.calls[call.0 as usize].holds_slot = true,
                Entry::Queued => {
                    self.calls[call.0 as usize].queued = true;
                    return;
                }
                Entry::Rejected => {
                    self.refuse(call, attempt, Refusal::BulkheadFull);
                    return;
                }
            }
        }
        self.dispatch(call);
    }

    /// The caller instance's pool, when calls to `service` go through it.
    fn pool_of(&mut self, call: CallId) -> Option<&mut Pool> {
        let c = &self.calls[call.0 as usize];
        let target = c.service;
        let caller = &self.invocations[c.caller.0 as usize];
        let (service, instance) = (usize::from(caller.service), usize::from(caller.instance));
        self.services[service].instances[instance]
            .pool
            .as_mut()
            .filter(|p| p.target == target)
    }

    /// Takes a pool connection for the attempt, or queues it for one; then sends it.
    fn dispatch(&mut self, call: CallId) {
        let attempt = self.calls[call.0 as usize].attempt;
        let Some(pool) = self.pool_of(call) else {
            self.send(call);
            return;
        };
        if pool.in_use < pool.size {
            pool.in_use += 1;
            self.calls[call.0 as usize].holds_connection = true;
            self.send(call);
        } else {
            pool.waiting.push_back(call);
            let timeout = pool.acquire_timeout;
            self.calls[call.0 as usize].awaits_connection = true;
            self.schedule(timeout, Event::PoolTimeout { call, attempt });
        }
    }

    /// Gives the attempt's pool connection back (unless a leak keeps it) or stops it waiting
    /// for one; a freed connection goes to the oldest waiting call.
    fn return_connection(&mut self, call: CallId) {
        let (holds, awaits) = {
            let c = &mut self.calls[call.0 as usize];
            let flags = (c.holds_connection, c.awaits_connection);
            (c.holds_connection, c.awaits_connection) = (false, false);
            flags
        };
        if awaits {
            if let Some(pool) = self.pool_of(call) {
                pool.waiting.retain(|c| *c != call);
            }
            return;
        }
        if !holds {
            return;
        }
        let c = &self.calls[call.0 as usize];
        let caller = &self.invocations[c.caller.0 as usize];
        let (service, instance, trace) = (caller.service, caller.instance, caller.trace_id);
        let leak = self.active_fault_indexes(service, instance).find_map(|f| {
            match self.scenario.faults[f].effect {
                FaultEffect::ConnectionLeak { rate } => Some((f, rate)),
                _ => None,
            }
        });
        if let Some((fault, rate)) = leak {
            if self.random.chance(rate) {
                self.fault_acted(fault, trace);
                return; // never returned: the pool is one connection smaller for good
            }
        }
        let Some(pool) = self.pool_of(call) else {
            return;
        };
        assert!(pool.in_use > 0, "returned a connection nobody held");
        match pool.waiting.pop_front() {
            Some(next) => {
                let n = &mut self.calls[next.0 as usize];
                n.awaits_connection = false;
                n.holds_connection = true;
                self.send(next);
            }
            None => pool.in_use -= 1,
        }
    }

    /// Sends the current attempt of a call over the network to a callee instance.
    fn send(&mut self, call: CallId) {
        let c = &self.calls[call.0 as usize];
        let (service, operation, attempt, span) =
            (c.service, c.operation, c.attempt, c.attempt_span);
        let caller = &self.invocations[c.caller.0 as usize];
        let (caller_service, caller_instance) = (caller.service, caller.instance);
        let trace_id = self.telemetry.spans[span as usize].trace_id;
        let peer_name = &self.scenario.services[usize::from(service)].name;
        let partition = self.active_fault_indexes(caller_service, caller_instance).find(|f| {
            matches!(&self.scenario.faults[*f].effect, FaultEffect::Partition { peer } if peer == peer_name)
        });
        if let Some(fault) = partition {
            // Lost on the wire: nothing answers; the caller's timeout, if any, ends the wait.
            self.fault_acted(fault, trace_id);
            return;
        }
        // Inside the mesh, callers do not health-check: a crashed instance still gets picked.
        let target = self
            .pick_instance(service, false)
            .expect("a service has instances");
        let crash = self.active_fault_indexes(service, target).find(|f| {
            matches!(
                self.scenario.faults[*f].effect,
                FaultEffect::Crash | FaultEffect::CacheOutage
            )
        });
        let down = self.instance_down(service, target);
        if crash.is_some() || down {
            if let Some(fault) = crash.or_else(|| self.down_fault(service, target)) {
                self.fault_acted(fault, trace_id);
            }
            let delay = self.network_delay();
            self.schedule(
                delay,
                Event::Refused {
                    call,
                    attempt,
                    reason: Refusal::ConnectionRefused,
                },
            );
            return;
        }
        let dropped = self
            .active_fault_indexes(caller_service, caller_instance)
            .find(|f| matches!(self.scenario.faults[*f].effect, FaultEffect::ContextDropped));
        // A database or a cache reads no trace context; a broker passes it on in the message.
        let role = self.services[usize::from(service)].role;
        let reads_context = role.instrumented() || role == ServiceRole::Broker;
        if let Some(fault) = dropped.filter(|_| reads_context) {
            self.fault_acted(fault, trace_id);
        }
        let propagates = self.policy(call).propagate_context && dropped.is_none();
        let trace_id = if propagates || !role.instrumented() {
            trace_id
        } else {
            // The callee sees no traceparent header and starts a trace of its own.
            TraceId(self.random.trace_id())
        };
        // An instrumented callee's span opens when the request reaches it (`open_on_arrival`).
        let (child_span, sender) = match (role.instrumented(), propagates) {
            (true, true) => (PENDING_SPAN, span),
            (true, false) => (PENDING_SPAN, NO_SPAN),
            (false, true) => (span, NO_SPAN),
            (false, false) => (NO_SPAN, NO_SPAN),
        };
        let child = self.push_invocation(
            service,
            target,
            operation,
            trace_id,
            child_span,
            Some((call, attempt)),
        );
        self.invocations[child.0 as usize].sender = sender;
        let unkeyed = self.non_idempotent_retry(caller_service, caller_instance);
        if let Some(fault) = unkeyed.filter(|_| attempt > 0) {
            self.fault_acted(fault, trace_id);
        }
        if self.policy(call).idempotency_key && unkeyed.is_none() {
            // One key per call, so every retry of it carries the same one.
            let key = u64::from(call.0) + 1;
            self.invocations[child.0 as usize].idempotency_key = std::num::NonZeroU64::new(key);
        }
        let delay = self.network_delay();
        self.invocations[child.0 as usize].arrived = self.now.after(delay);
        self.schedule(delay, Event::Arrive(child));
    }

    /// Refuses an attempt on the client side; handled as an event so refusals never recurse.
    fn refuse(&mut self, call: CallId, attempt: u32, reason: Refusal) {
        self.schedule(
            Duration::ZERO,
            Event::Refused {
                call,
                attempt,
                reason,
            },
        );
    }

    #[cfg_attr(target_arch = "wasm32", inline(never))] // see `step_one`
    fn on_refused(&mut self, call: CallId, attempt: u32, reason: Refusal) {
        let c = &self.calls[call.0 as usize];
        if c.done || c.settled || c.attempt != attempt {
            return;
        }
        let span = c.attempt_span as usize;
        if reason != Refusal::CircuitOpen {
            self.record_outcome(call, false);
        } else {
            // The breaker refused it, so it has nothing to learn from it.
            self.calls[call.0 as usize].settled = true;
        }
        let key = self.keys.error_type;
        let reason_sym = self.telemetry.strings.intern(reason.name());
        let s = &mut self.telemetry.spans[span];
        s.set_end(self.now);
        s.status = SpanStatus::Error;
        self.telemetry
            .attributes_mut(span)
            .push((key, Value::Str(reason_sym)));
        self.attempt_failed(call, 503, reason.name());
    }

    /// Ends the current attempt from the client's side: frees its bulkhead slot (handing it to
    /// the next waiting call) and tells the breaker how it went.
    fn record_outcome(&mut self, call: CallId, succeeded: bool) {
        self.return_connection(call);
        let edge_id = self.calls[call.0 as usize].edge as usize;
        let (probe, holds_slot, queued) = {
            let c = &mut self.calls[call.0 as usize];
            c.settled = true;
            let flags = (c.probe, c.holds_slot, c.queued);
            (c.probe, c.holds_slot, c.queued) = (None, false, false);
            flags
        };
        let edge = &mut self.edges[edge_id];
        let mut next = None;
        if let Some(bulkhead) = &mut edge.bulkhead {
            if holds_slot {
                next = bulkhead.leave();
            } else if queued {
                bulkhead.cancel(call.0);
            }
        }
        let transition = match &mut edge.breaker {
            Some(breaker) => breaker.record(self.now, succeeded, probe),
            None => None,
        };
        if let Some(t) = transition {
            self.on_transition(call, t);
        }
        if let Some(next) = next {
            let next = CallId(next);
            let n = &mut self.calls[next.0 as usize];
            n.queued = false;
            n.holds_slot = true;
            self.dispatch(next);
        }
    }

    /// Records a breaker transition on the attempt's span and in the caller's log.
    fn on_transition(&mut self, call: CallId, t: Transition) {
        let c = &self.calls[call.0 as usize];
        let (span, service) = (c.attempt_span as usize, c.service);
        let inv = &self.invocations[c.caller.0 as usize];
        let (caller_service, caller_instance, trace_id) = (inv.service, inv.instance, inv.trace_id);
        let strings = &mut self.telemetry.strings;
        let name = strings.intern("breaker.transition");
        let from_key = strings.intern("breaker.from");
        let to_key = strings.intern("breaker.state");
        let from = strings.intern(t.from.name());
        let to = strings.intern(t.to.name());
        let span_id = self.telemetry.spans[span].span_id;
        self.telemetry.spans[span].events.push(SpanEvent {
            time: self.now,
            name,
            attributes: vec![(from_key, Value::Str(from)), (to_key, Value::Str(to))],
        });
        let peer = self.telemetry.service_names[usize::from(service)];
        let level = if t.to == crate::edge::BreakerState::Closed {
            Level::Info
        } else {
            Level::Warn
        };
        let fields = smallvec![
            (self.keys.peer_service, Value::Str(peer)),
            (from_key, Value::Str(from)),
            (to_key, Value::Str(to)),
        ];
        self.log(
            caller_service,
            caller_instance,
            level,
            Some((trace_id, span_id)),
            "circuit breaker changed state",
            fields,
        );
    }

    #[cfg_attr(target_arch = "wasm32", inline(never))] // see `step_one`
    fn on_response(&mut self, call: CallId, attempt: u32, status: u16) {
        let c = &self.calls[call.0 as usize];
        if c.done || c.settled || c.attempt != attempt {
            return; // the caller gave up on this attempt already: a late answer nobody reads
        }
        let span = c.attempt_span as usize;
        self.record_outcome(call, status < 500);
        let (key, http) = (self.keys.status_code, self.call_is_http(call));
        if http {
            self.telemetry
                .attributes_mut(span)
                .push((key, Value::int(i64::from(status))));
        }
        let s = &mut self.telemetry.spans[span];
        s.set_end(self.now);
        if (400..500).contains(&status) {
            // A client error (out of stock, a version conflict) is an answer, not a fault to
            // retry: the caller fails with it.
            self.call_failed(call, status);
        } else if status < 500 {
            s.status = SpanStatus::Unset;
            self.call_succeeded(call);
        } else {
            s.status = SpanStatus::Error;
            let reason = if http {
                "error"
            } else {
                self.store_error(call, status)
            };
            self.attempt_failed(call, status, reason);
        }
    }

    #[cfg_attr(target_arch = "wasm32", inline(never))] // see `step_one`
    fn on_timeout(&mut self, call: CallId, attempt: u32) {
        let c = &self.calls[call.0 as usize];
        if c.done || c.settled || c.attempt != attempt {
            return;
        }
        let span = c.attempt_span as usize;
        let timeout_ms = self.policy(call).timeout_ms.unwrap_or_default();
        self.calls[call.0 as usize].timed_out = true;
        self.record_outcome(call, false);
        let (key, timeout, exception) =
            (self.keys.error_type, self.keys.timeout, self.keys.exception);
        let s = &mut self.telemetry.spans[span];
        s.set_end(self.now);
        s.status = SpanStatus::Error;
        self.telemetry
            .attributes_mut(span)
            .push((key, Value::Str(timeout)));
        let message = self.intern_static("deadline exceeded");
        let message_key = self.intern_static("exception.message");
        let timeout_key = self.intern_static("timeout_ms");
        self.telemetry.spans[span].events.push(SpanEvent {
            time: self.now,
            name: exception,
            attributes: vec![
                (message_key, Value::Str(message)),
                (timeout_key, Value::int(timeout_ms as i64)),
            ],
        });
        self.attempt_failed(call, 504, "timeout");
    }

    /// After a failed attempt: retry with backoff if the policy allows, else fail the caller.
    fn attempt_failed(&mut self, call: CallId, status: u16, reason: &str) {
        let c = &self.calls[call.0 as usize];
        let (caller, attempt, service, edge) = (c.caller, c.attempt, c.service, c.edge);
        let p = self.policy(call);
        let (mut retries, mut backoff_base_ms, backoff_max_ms, mut jitter, mut retry_budget) = (
            p.retries,
            p.backoff_base_ms,
            p.backoff_max_ms,
            p.jitter,
            p.retry_budget,
        );
        let inv = &self.invocations[caller.0 as usize];
        let (trace_id, span_id) = (
            inv.trace_id,
            self.telemetry.spans[inv.span as usize].span_id,
        );
        let (caller_service, caller_instance) = (inv.service, inv.instance);
        let peer = self.telemetry.service_names[usize::from(service)];
        let reason = self.telemetry.strings.intern(reason);
        let mut fields = smallvec![
            (self.keys.peer_service, Value::Str(peer)),
            (self.keys.error_type, Value::Str(reason)),
            (self.keys.retry_attempt, Value::int(i64::from(attempt))),
        ];
        let storm = self
            .active_fault_indexes(caller_service, caller_instance)
            .find(|f| matches!(self.scenario.faults[*f].effect, FaultEffect::RetryStorm));
        if storm.is_some() {
            // Retry at once, three times, with nothing to hold it back.
            retries = retries.max(3);
            (backoff_base_ms, jitter, retry_budget) = (0, false, None);
        }
        if self
            .non_idempotent_retry(caller_service, caller_instance)
            .is_some()
        {
            retries = retries.max(1);
        }
        let within_budget = match retry_budget {
            None => true,
            Some(ratio) => {
                let a = &self.edges[edge as usize].attempts;
                let retries_sent = a.iter().filter(|(_, retry)| *retry).count();
                let firsts = a.len() - retries_sent;
                (retries_sent + 1) as f64 <= ratio * firsts as f64
            }
        };
        if attempt < retries && !within_budget {
            let budget_key = self.intern_static("retry.budget_exhausted");
            fields.push((budget_key, Value::Bool(true)));
        }
        if attempt < retries && within_budget {
            if let Some(fault) = storm {
                self.fault_acted(fault, trace_id);
            }
            let now = self.now;
            self.telemetry
                .metrics
                .observe_retry(ServiceId(caller_service), caller_instance, now);
            let exponent = attempt.min(20);
            let backoff_ms =
                time::saturating_mul(backoff_base_ms, 1 << exponent).min(backoff_max_ms);
            let wait_us = if jitter {
                self.random.below(backoff_ms * 1_000 + 1)
            } else {
                backoff_ms * 1_000
            };
            let backoff_key = self.intern_static("backoff_ms");
            fields.push((backoff_key, Value::int((wait_us / 1_000) as i64)));
            // The failed attempt's span records the decision, as retry middleware logs it.
            let event = SpanEvent {
                time: self.now,
                name: self.intern_static("retry"),
                attributes: vec![
                    (self.keys.retry_attempt, Value::int(i64::from(attempt) + 1)),
                    (backoff_key, Value::int((wait_us / 1_000) as i64)),
                ],
            };
            let span = self.calls[call.0 as usize].attempt_span as usize;
            self.telemetry.spans[span].events.push(event);
            self.log(
                caller_service,
                caller_instance,
                Level::Warn,
                Some((trace_id, span_id)),
                "call failed, retrying",
                fields,
            );
            self.schedule(Duration(wait_us), Event::Retry(call));
        } else {
            if self.cache_call_gave_up(call, fields.clone()) {
                return;
            }
            self.log(
                caller_service,
                caller_instance,
                Level::Error,
                Some((trace_id, span_id)),
                "call failed, giving up",
                fields,
            );
            // A timed-out dependency makes a gateway timeout; a failed one a bad gateway.
            self.call_failed(call, if status == 504 { 504 } else { 502 });
        }
    }

    /// Counts a failed saga in the ground truth, with the steps it left in effect.
    fn settle_saga(&mut self, inv: InvId, status: u16) {
        if status >= 400 && self.sagas.contains_key(&inv.0) {
            self.ledger.failed_sagas.push(inv);
        }
    }

    /// Counts the failed sagas in the ground truth once the run is over, each step by what the
    /// ledger says is still in effect for its order (a timed-out step may have landed, and an
    /// undo that timed out may have landed too); a step whose operation keeps no ledger counts
    /// as left when its compensation never succeeded.
    fn count_failed_sagas(&mut self) {
        for inv in std::mem::take(&mut self.ledger.failed_sagas) {
            let i = &self.invocations[inv.0 as usize];
            let saga = self.sagas.get(&inv.0).expect("a failed saga");
            let plan = &self.services[usize::from(i.service)].plans[usize::from(i.operation)];
            let mut left = 0;
            for (k, step) in plan.iter().enumerate().take(usize::from(i.step) + 1) {
                let PlanStep::Call {
                    service,
                    operation,
                    compensate: Some(_),
                    ..
                } = step
                else {
                    continue;
                };
                let spec = &self.scenario.services[usize::from(*service)];
                let held = match spec.operations[usize::from(*operation)].effect {
                    Some(DataEffect::Reserve { .. }) => Some(Held::Reservation),
                    Some(DataEffect::Charge) => Some(Held::Charge),
                    Some(DataEffect::Insert) => Some(Held::Row),
                    _ => None,
                };
                let k = k as u16;
                let in_effect = match held {
                    Some(held) => self
                        .ledger
                        .held(held)
                        .get(&(inv.0, k))
                        .is_some_and(|n| *n > 0),
                    None => {
                        saga.done.contains(&k) || saga.stuck.contains(&k) || saga.undoing == Some(k)
                    }
                };
                if in_effect {
                    left += 1;
                    let name = format!(
                        "{}:{}",
                        spec.name,
                        spec.operations[usize::from(*operation)].name
                    );
                    *self.truth.saga_steps_left.entry(name).or_default() += 1;
                }
            }
            self.truth.sagas_failed += 1;
            if left == 0 {
                self.truth.sagas_compensated += 1;
            }
        }
    }

    fn complete(&mut self, inv: InvId) {
        let i = &self.invocations[inv.0 as usize];
        let (service, instance) = (i.service, i.instance);
        let mut status = i.failure.unwrap_or(200);
        if status == 200 {
            // The strongest error-rate fault in force decides, and is the one credited.
            let strongest = self
                .active_fault_indexes(service, instance)
                .filter_map(|f| match self.scenario.faults[f].effect {
                    FaultEffect::ErrorRate { rate } => Some((f, rate)),
                    _ => None,
                })
                .fold(None, |best: Option<(usize, f64)>, (f, rate)| match best {
                    Some((_, r)) if r >= rate => best,
                    _ => Some((f, rate)),
                });
            if let Some((fault, rate)) = strongest {
                if rate > 0.0 && self.random.chance(rate) {
                    status = 500;
                    let trace = self.invocations[inv.0 as usize].trace_id;
                    self.fault_acted(fault, trace);
                }
            }
        }
        if status == 200 {
            if let Err(code) = self.write_stock(inv) {
                status = code;
            }
        }
        // A scheduled job's run is no request: no request metrics, and its own log line.
        let job = self.locks.enabled && self.is_job_run(inv);
        let skipped = job && self.job_run_skipped(inv);
        if self.locks.enabled {
            status = self.release_lock(inv, status);
        }
        // Settled on the final status: a saga failing after its last step (an injected error,
        // a rejected write) answers at once, its steps left in effect.
        self.settle_saga(inv, status);
        let i = &self.invocations[inv.0 as usize];
        let (caller, arrived, holds_worker) = (i.caller, i.arrived, i.holds_worker);
        let elapsed = self.now.since(arrived);
        if self.services[usize::from(service)].role.instrumented() {
            self.answered(inv, status, job, skipped, elapsed);
        } else {
            if status < 500 {
                // Validation leaves infrastructure no effect but insert and delete, which write
                // no line: no span to tie one to is needed.
                self.apply_effect(inv, None);
            }
            self.infrastructure_answered(inv, status, elapsed);
        }
        if holds_worker {
            self.invocations[inv.0 as usize].holds_worker = false;
            self.release_worker(service, instance);
        }
        if status >= 500 {
            self.client_retry(inv);
        }
        if let Some((call, attempt)) = caller {
            let delay = self.network_delay();
            self.schedule(
                delay,
                Event::Response {
                    call,
                    attempt,
                    status,
                },
            );
        }
        self.served(inv, status);
    }

    /// An instrumented service answered: its server span ends with the status, the request
    /// counts in the request metrics, its effect takes place, and it writes its line.
    fn answered(&mut self, inv: InvId, status: u16, job: bool, skipped: bool, elapsed: Duration) {
        let i = &self.invocations[inv.0 as usize];
        let (service, instance, trace_id, span) =
            (i.service, i.instance, i.trace_id, i.span as usize);
        // A consumer span is not an HTTP request: it carries no status code.
        let http = !job && i.consumer.is_none();
        let key = self.keys.status_code;
        if http {
            self.telemetry
                .attributes_mut(span)
                .push((key, Value::int(i64::from(status))));
        }
        let s = &mut self.telemetry.spans[span];
        s.set_end(self.now);
        s.status = if status >= 500 {
            SpanStatus::Error
        } else {
            SpanStatus::Unset
        };
        let (span_id, operation) = (s.span_id, s.operation);
        if !job {
            self.observe_request((ServiceId(service), instance, operation), elapsed, status);
        }
        if status < 500 {
            self.apply_effect(inv, Some(span_id));
        }
        let (level, message) = match status {
            s if job && s >= 500 => (Level::Error, "job run failed"),
            s if job && s >= 400 => (Level::Warn, "job run refused"),
            _ if skipped => (Level::Info, "job run skipped"),
            _ if job => (Level::Info, "job run completed"),
            503 => (Level::Warn, "request rejected, queue full"),
            s if (400..500).contains(&s) => (Level::Warn, "request refused"),
            s if s >= 500 => (Level::Error, "request failed"),
            _ => (Level::Info, "request completed"),
        };
        let (message, mut fields) = match self.invocations[inv.0 as usize].consumer {
            Some(group) => self.consumer_log(group, status, elapsed),
            None => (
                message,
                smallvec![
                    (
                        self.keys.route,
                        Value::Str(
                            self.services[usize::from(service)].routes
                                [usize::from(self.invocations[inv.0 as usize].operation)]
                            .path,
                        ),
                    ),
                    (self.keys.status_code, Value::int(i64::from(status))),
                    (
                        self.keys.duration_ms,
                        Value::int((elapsed.0 / 1_000) as i64),
                    ),
                ],
            ),
        };
        let leak = self.active_fault_indexes(service, instance).find(|f| {
            matches!(
                self.scenario.faults[*f].effect,
                FaultEffect::CardNumbersLogged
            )
        });
        if let Some(fault) = leak {
            // Well-known test card numbers, picked by trace: no real data, and no draw from the
            // random stream, so the rest of the run is as it would have been.
            const TEST_CARDS: [&str; 4] = [
                "4111111111111111",
                "5555555555554444",
                "378282246310005",
                "4012888888881881",
            ];
            let card = self
                .telemetry
                .strings
                .intern(TEST_CARDS[(trace_id.0 % 4) as usize]);
            let key = self.intern_static("card_number");
            fields.push((key, Value::Str(card)));
            self.fault_acted(fault, trace_id);
        }
        self.log(
            service,
            instance,
            level,
            Some((trace_id, span_id)),
            message,
            fields,
        );
    }

    /// Samples every instance's gauges and every breaker's state for the bucket that just
    /// ended, then schedules the next sample while anything else is still to happen.
    #[cfg_attr(target_arch = "wasm32", inline(never))] // see `step_one`
    fn on_sample(&mut self) {
        let bucket = self.telemetry.metrics.bucket_of(self.now).saturating_sub(1);
        for (s, runtime) in self.services.iter().enumerate() {
            for (i, slot) in runtime.instances.iter().enumerate() {
                self.telemetry.metrics.instances.push(InstanceSample {
                    bucket,
                    service: ServiceId(s as u16),
                    instance: i as u16,
                    busy_workers: slot.busy,
                    queue_depth: slot.waiting.len() as u32,
                    pool_in_use: slot.pool.as_ref().map_or(0, |p| p.in_use),
                    pool_waiters: slot.pool.as_ref().map_or(0, |p| p.waiting.len() as u32),
                });
            }
        }
        self.sample_stores(bucket);
        self.sample_databases(bucket);
        for (&(service, instance, peer, operation), &edge) in &self.edge_ids {
            if let Some(breaker) = &self.edges[edge as usize].breaker {
                let state = match breaker.state() {
                    crate::edge::BreakerState::Closed => 0,
                    crate::edge::BreakerState::HalfOpen => 1,
                    crate::edge::BreakerState::Open => 2,
                };
                self.telemetry.metrics.breakers.push(BreakerSample {
                    bucket,
                    service: ServiceId(service),
                    instance,
                    peer: ServiceId(peer),
                    operation: self.services[usize::from(peer)].operation_names
                        [usize::from(operation)],
                    state,
                });
            }
        }
        if self.heaps.enabled {
            self.sample_heaps(bucket);
        }
        self.reserve_ahead();
        let arrivals_over = self.now.0 >= self.scenario.duration_ms * 1_000;
        if !arrivals_over || !self.queue.is_empty() || self.cancelled_until > self.current_key {
            let bucket = self.telemetry.metrics.bucket;
            self.schedule(bucket, Event::Sample);
        }
    }

    /// An outside client tries a failed request of theirs again, 200 ms later, as a new trace,
    /// while it has tries left (a consumer's message or a job run is no client's request).
    fn client_retry(&mut self, inv: InvId) {
        let i = &self.invocations[inv.0 as usize];
        if i.caller.is_none()
            && i.consumer.is_none()
            && i.client_attempt < self.scenario.workload.client_retries
        {
            let retry = Event::ClientRetry {
                service: i.service,
                operation: i.operation,
                user: i.user,
                attempt: i.client_attempt + 1,
            };
            self.schedule(Duration::from_ms(200), retry);
        }
    }

    fn release_worker(&mut self, service: u16, instance: u16) {
        let slot = &mut self.services[usize::from(service)].instances[usize::from(instance)];
        assert!(slot.busy > 0, "released a worker nobody held");
        slot.busy -= 1;
        if let Some(next) = slot.waiting.pop_front() {
            if self.services[usize::from(service)].role.instrumented() {
                let waited = self.now.since(self.invocations[next.0 as usize].arrived);
                let span = self.invocations[next.0 as usize].span as usize;
                let key = self.keys.queue_wait_ms;
                self.telemetry
                    .attributes_mut(span)
                    .push((key, Value::int((waited.0 / 1_000) as i64)));
            }
            self.start(next);
        }
    }

    fn log(
        &mut self,
        service: u16,
        instance: u16,
        level: Level,
        context: Option<(TraceId, SpanId)>,
        message: impl Into<LineText>,
        fields: Fields,
    ) {
        let threshold = match self.scenario.services[usize::from(service)].log_level {
            LogLevel::Debug => Level::Debug,
            LogLevel::Info => Level::Info,
            LogLevel::Warn => Level::Warn,
            LogLevel::Error => Level::Error,
        };
        if level < threshold {
            return;
        }
        if level < Level::Warn {
            let muted = self
                .active_fault_indexes(service, instance)
                .find(|f| matches!(self.scenario.faults[*f].effect, FaultEffect::LogLevelWarn));
            if let Some(fault) = muted {
                if let Some((trace, _)) = context {
                    self.fault_acted(fault, trace);
                }
                return;
            }
        }
        let (mut clock_offset_us, mut zone_minutes) = (0i64, 0i16);
        let clocks: Vec<usize> = self
            .active_fault_indexes(service, instance)
            .filter(|f| {
                matches!(
                    self.scenario.faults[*f].effect,
                    FaultEffect::ClockSkew { .. } | FaultEffect::LocalTimeLogs { .. }
                )
            })
            .collect();
        for fault in clocks {
            let spec = &self.scenario.faults[fault];
            match spec.effect {
                FaultEffect::ClockSkew {
                    offset_ms,
                    drift_ppm,
                } => {
                    let elapsed_us = self.now.since(SimTime::from_ms(spec.from_ms)).0 as i64;
                    clock_offset_us += offset_ms * 1_000 + drift_ppm * elapsed_us / 1_000_000;
                }
                FaultEffect::LocalTimeLogs { zone_minutes: zone } => zone_minutes = zone,
                _ => {}
            }
            match context {
                Some((trace, _)) => self.fault_acted(fault, trace),
                // A line of no request (a database's, a runtime's) is a symptom all the same.
                None => {
                    let now = self.now;
                    self.truth.faults[fault].first_effect.get_or_insert(now);
                }
            }
        }
        let message = match message.into() {
            LineText::Template(text) => self.intern_static(text),
            LineText::Interned(sym) => sym,
        };
        self.telemetry.logs.push(LogLine {
            time: self.now,
            clock_offset_us,
            zone_minutes,
            service: ServiceId(service),
            instance,
            level,
            trace_id: context.map(|c| c.0),
            span_id: context.map(|c| c.1),
            message,
            fields,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::mesh::default_mesh;
    use crate::scenario::FaultSpec;

    #[test]
    fn rem_u128_is_the_remainder() {
        let values = [
            0,
            1,
            489,
            490,
            u128::from(u64::MAX),
            u128::from(u64::MAX) + 1,
            u128::MAX,
        ];
        let mixed = (0..200u128).map(|k| k.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835));
        for n in values.into_iter().chain(mixed) {
            for m in [1, 2, 7, 490, 65_537, u32::MAX] {
                assert_eq!(u128::from(rem_u128(n, m)), n % u128::from(m), "{n} % {m}");
            }
        }
    }

    fn run(scenario: &Scenario, seed: u64) -> Telemetry {
        crate::run(scenario, seed).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn server_spans<'a>(t: &'a Telemetry, service: &str) -> impl Iterator<Item = &'a Span> {
        let id = t
            .service_names
            .iter()
            .position(|s| t.text(*s) == service)
            .expect("service") as u16;
        t.spans
            .iter()
            .filter(move |s| s.kind == SpanKind::Server && s.service == ServiceId(id))
    }

    /// Client spans of queries to a database service (`db.system` with `server.address`).
    fn database_calls<'a>(t: &'a Telemetry, service: &str) -> impl Iterator<Item = &'a Span> {
        let (system, server) = (
            t.strings.lookup("db.system"),
            t.strings.lookup("server.address"),
        );
        let name = t.strings.lookup(service);
        t.spans.iter().filter(move |s| {
            s.kind == SpanKind::Client
                && t.attributes(s).iter().any(|(k, _)| Some(*k) == system)
                && t.attributes(s)
                    .iter()
                    .any(|(k, v)| Some(*k) == server && Some(v) == name.map(Value::Str).as_ref())
        })
    }

    fn duration_us(s: &Span) -> u64 {
        s.end().expect("ended").since(s.start).0
    }

    fn p99(mut values: Vec<u64>) -> u64 {
        values.sort_unstable();
        values[(values.len() * 99 / 100).min(values.len() - 1)]
    }

    fn status(t: &Telemetry, s: &Span) -> i64 {
        let key = t.strings.lookup("http.response.status_code").unwrap();
        t.attributes(s)
            .iter()
            .find_map(|(k, v)| match v {
                Value::Int(n) if *k == key => Some(n.get()),
                _ => None,
            })
            .unwrap_or(0)
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes() {
        let scenario = default_mesh(50.0, 5_000);
        let a = run(&scenario, 7).digest_hex();
        assert_eq!(a, run(&scenario, 7).digest_hex());
        assert_ne!(a, run(&scenario, 8).digest_hex());
    }

    #[test]
    fn every_span_ends_inside_its_trace_with_its_parent_present() {
        for seed in 0..5 {
            let t = run(&default_mesh(100.0, 3_000), seed);
            assert!(
                t.spans.len() > 1_000,
                "seed {seed}: {} spans",
                t.spans.len()
            );
            let mut by_trace: BTreeMap<TraceId, BTreeMap<SpanId, &Span>> = BTreeMap::new();
            for s in &t.spans {
                by_trace.entry(s.trace_id).or_default().insert(s.span_id, s);
            }
            for s in &t.spans {
                let end = s
                    .end()
                    .unwrap_or_else(|| panic!("seed {seed}: open span {s:?}"));
                assert!(end >= s.start, "seed {seed}: {s:?}");
                if let Some(parent) = s.parent {
                    let p = by_trace[&s.trace_id]
                        .get(&parent)
                        .unwrap_or_else(|| panic!("seed {seed}: orphan {s:?}"));
                    // A child may outlive a parent that timed out, so only the starts are ordered.
                    assert!(p.start <= s.start, "seed {seed}: {s:?} starts before {p:?}");
                }
            }
        }
    }

    #[test]
    fn each_server_span_has_one_completion_log_line_in_its_trace() {
        let t = run(&default_mesh(50.0, 2_000), 3);
        let servers = t
            .spans
            .iter()
            .filter(|s| s.kind == SpanKind::Server)
            .count();
        let request_lines = t
            .logs
            .iter()
            .filter(|l| t.text(l.message).starts_with("request "))
            .count();
        assert_eq!(servers, request_lines);
        // Every line but the collector's belongs to a trace.
        assert!(
            t.logs
                .iter()
                .all(|l| l.trace_id.is_some() || t.text(l.message) == "GC pause")
        );
    }

    /// Samples where an orders instance had all 32 workers busy and 128 requests waiting.
    fn orders_saturation(t: &Telemetry) -> usize {
        let orders = ServiceId(2);
        t.metrics
            .instances
            .iter()
            .filter(|i| i.service == orders && i.busy_workers == 32 && i.queue_depth == 128)
            .count()
    }

    #[test]
    fn metrics_count_what_the_spans_show() {
        let mut scenario = default_mesh(50.0, 5_000);
        scenario.faults.push(FaultSpec::new(
            "auth",
            None,
            0,
            5_000,
            FaultEffect::ErrorRate { rate: 0.2 },
        ));
        let t = run(&scenario, 12);
        // Consumers processing messages count as requests served, under their operation.
        let servers = t
            .spans
            .iter()
            .filter(|s| matches!(s.kind, SpanKind::Server | SpanKind::Consumer));
        let (count, errors) = servers.fold((0u64, 0u64), |(c, e), s| {
            (c + 1, e + u64::from(s.status == SpanStatus::Error))
        });
        let m_count: u64 = t
            .metrics
            .requests
            .values()
            .map(|r| u64::from(r.count))
            .sum();
        let m_errors: u64 = t
            .metrics
            .requests
            .values()
            .map(|r| u64::from(r.errors))
            .sum();
        assert_eq!((m_count, m_errors), (count, errors));
        let retries: u64 = t.metrics.retries.values().map(|n| u64::from(*n)).sum();
        let warnings = t
            .logs
            .iter()
            .filter(|l| t.text(l.message) == "call failed, retrying")
            .count() as u64;
        assert_eq!(retries, warnings);
        // One gauge sample per instance per second of the run, and no more after it drained
        // (the last event is the 2 s timeout of a create sent just before arrivals stopped).
        let instances: u64 = scenario
            .services
            .iter()
            .map(|s| u64::from(s.instances))
            .sum();
        let seconds = t.metrics.instances.len() as u64 / instances;
        assert!((5..=8).contains(&seconds), "{seconds}");
        let gateway = t.metrics.red(ServiceId(0), None, None);
        assert!(
            gateway
                .iter()
                .take(5)
                .all(|p| p.requests_per_s > 20.0 && p.p99.is_some())
        );
    }

    #[test]
    fn a_healthy_mesh_answers_nearly_everything() {
        let t = run(&default_mesh(50.0, 10_000), 1);
        let roots: Vec<&Span> = t.spans.iter().filter(|s| s.parent.is_none()).collect();
        let failed = roots
            .iter()
            .filter(|s| s.status == SpanStatus::Error)
            .count();
        assert!(roots.len() > 400, "{} requests", roots.len());
        assert!(
            failed * 100 <= roots.len(),
            "{failed} of {} failed",
            roots.len()
        );
    }

    #[test]
    fn latency_fault_shows_in_the_targets_spans_inside_its_window_only() {
        let mut scenario = default_mesh(50.0, 20_000);
        scenario.faults.push(FaultSpec::new(
            "database",
            None,
            10_000,
            20_000,
            FaultEffect::Latency { extra_ms: 150 },
        ));
        let t = run(&scenario, 11);
        // The database writes no spans: its callers' queries show it.
        let (before, during): (Vec<&Span>, Vec<&Span>) = database_calls(&t, "database")
            .filter(|s| s.status != SpanStatus::Error)
            .partition(|s| s.start.0 < 10_000_000);
        let p99_before = p99(before.iter().map(|s| duration_us(s)).collect());
        let p99_during = p99(during.iter().map(|s| duration_us(s)).collect());
        assert!(p99_before < 40_000, "{p99_before}");
        assert!(p99_during > 150_000, "{p99_during}");
        // The symptom climbs: callers of the database time out (its clients allow 200 ms).
        let gateway_errors_during = server_spans(&t, "gateway")
            .filter(|s| s.start.0 >= 10_000_000 && s.status == SpanStatus::Error)
            .count();
        assert!(gateway_errors_during > 0);
    }

    #[test]
    fn error_rate_fault_concentrates_errors_on_its_instance() {
        let mut scenario = default_mesh(80.0, 10_000);
        scenario.faults.push(FaultSpec::new(
            "orders",
            Some(1),
            0,
            10_000,
            FaultEffect::ErrorRate { rate: 0.5 },
        ));
        let t = run(&scenario, 5);
        let mut errors_by_instance = [0u32; 3];
        let mut total_by_instance = [0u32; 3];
        for s in server_spans(&t, "orders") {
            total_by_instance[usize::from(s.instance)] += 1;
            if status(&t, s) == 500 {
                errors_by_instance[usize::from(s.instance)] += 1;
            }
        }
        assert_eq!(
            errors_by_instance[0] + errors_by_instance[2],
            0,
            "{errors_by_instance:?}"
        );
        let share = f64::from(errors_by_instance[1]) / f64::from(total_by_instance[1]);
        assert!((0.4..0.6).contains(&share), "{share}");
    }

    #[test]
    fn retries_carry_their_attempt_number_and_a_warning() {
        let mut scenario = default_mesh(50.0, 5_000);
        scenario.faults.push(FaultSpec::new(
            "auth",
            None,
            0,
            5_000,
            FaultEffect::ErrorRate { rate: 0.3 },
        ));
        let t = run(&scenario, 2);
        let attempt = t.strings.lookup("retry.attempt").unwrap();
        let retried = t
            .spans
            .iter()
            .filter(|s| {
                s.kind == SpanKind::Client && t.attributes(s).iter().any(|(k, _)| *k == attempt)
            })
            .count();
        let warnings = t
            .logs
            .iter()
            .filter(|l| l.level == Level::Warn && t.text(l.message) == "call failed, retrying")
            .count();
        assert!(retried > 10);
        assert_eq!(retried, warnings);
        // Each failed attempt that was retried says so in a span event, with the next attempt.
        let retry_events: Vec<i64> = t
            .spans
            .iter()
            .flat_map(|s| &s.events)
            .filter(|e| t.text(e.name) == "retry")
            .filter_map(|e| match e.attributes[0] {
                (k, Value::Int(n)) if k == attempt => Some(n.get()),
                _ => None,
            })
            .collect();
        assert_eq!(retry_events.len(), retried);
        assert!(retry_events.iter().all(|n| *n >= 1));
    }

    #[test]
    fn spans_carry_http_and_database_semantic_conventions() {
        let t = run(&default_mesh(40.0, 5_000), 4);
        let attribute = |s: &Span, key: &str| {
            t.attributes(s)
                .iter()
                .find(|(k, _)| t.text(*k) == key)
                .map(|(_, v)| t.value_text(v))
        };
        let post = server_spans(&t, "gateway")
            .find(|s| t.text(s.operation) == "POST /orders")
            .expect("an order");
        assert_eq!(
            attribute(post, "http.request.method").as_deref(),
            Some("POST")
        );
        assert_eq!(attribute(post, "http.route").as_deref(), Some("/orders"));
        // Operations that are not HTTP routes keep their name as the route, with no method.
        let verify = server_spans(&t, "auth").next().unwrap();
        assert_eq!(attribute(verify, "http.route").as_deref(), Some("verify"));
        assert_eq!(attribute(verify, "http.request.method"), None);
        let database_calls: Vec<&Span> = t
            .spans
            .iter()
            .filter(|s| {
                s.kind == SpanKind::Client
                    && attribute(s, "peer.service").as_deref() == Some("database")
            })
            .collect();
        assert!(database_calls.len() > 50);
        for s in database_calls {
            assert_eq!(attribute(s, "db.system").as_deref(), Some("postgresql"));
            assert_eq!(attribute(s, "http.response.status_code"), None);
            assert_eq!(
                attribute(s, "db.operation.name"),
                Some(t.text(s.operation).to_uppercase())
            );
        }
    }

    #[test]
    fn a_missing_timeout_exhausts_workers_upstream() {
        // Long enough for orders' workers and then its queues to fill and stay full a while.
        let mut scenario = default_mesh(60.0, 30_000);
        // orders waits on payments with no timeout; payments gets 5 s slower.
        assert_eq!(
            scenario.edit_calls("orders", "payments", |policy| {
                policy.timeout_ms = None;
            }),
            1
        );
        scenario.faults.push(FaultSpec::new(
            "payments",
            None,
            5_000,
            30_000,
            FaultEffect::Latency { extra_ms: 5_000 },
        ));
        let t = run(&scenario, 4);
        // The reads (GET) never touch payments, yet they fail once orders' workers are all held.
        let get = t.strings.lookup("GET /orders/{id}").unwrap();
        let failed_reads = server_spans(&t, "gateway")
            .filter(|s| {
                s.operation == get && s.start.0 > 10_000_000 && s.status == SpanStatus::Error
            })
            .count();
        let rejected = server_spans(&t, "orders")
            .filter(|s| status(&t, s) == 503)
            .count();
        assert!(rejected > 50, "orders rejected {rejected}");
        // The gauges show why: every orders worker busy and the queue full.
        let saturated = orders_saturation(&t);
        assert!(saturated > 5, "{saturated} saturated samples");
        assert!(failed_reads > 50, "failed reads {failed_reads}");
    }

    #[test]
    fn ground_truth_names_the_cause_its_first_effect_and_the_traces_it_touched() {
        let mut scenario = default_mesh(50.0, 10_000);
        scenario.faults.push(FaultSpec::new(
            "inventory",
            Some(1),
            2_000,
            8_000,
            FaultEffect::ErrorRate { rate: 0.5 },
        ));
        let (t, truth) = Simulation::new(scenario, 13).unwrap().finish();
        let fault = &truth.faults[0];
        assert_eq!(
            (fault.kind, fault.service.as_str(), fault.instance),
            ("error_rate", "inventory", Some(1))
        );
        // Its first effect is the first answer inventory-1 failed (a request may arrive
        // before the window and be answered in it).
        let first = fault.first_effect.expect("the fault acted");
        let failed_spans: Vec<&Span> = server_spans(&t, "inventory")
            .filter(|s| s.instance == 1 && status(&t, s) == 500)
            .collect();
        let first_failed = failed_spans.iter().map(|s| s.end().unwrap()).min();
        assert_eq!(Some(first), first_failed);
        assert!(first >= SimTime::from_ms(2_000), "{first}");
        // Exactly the traces holding an inventory-1 span that failed with 500.
        let failed: std::collections::BTreeSet<TraceId> =
            failed_spans.iter().map(|s| s.trace_id).collect();
        assert_eq!(fault.affected_traces, failed);
        assert!(failed.len() > 10);
    }

    #[test]
    fn least_outstanding_sends_less_to_a_slow_instance_than_round_robin() {
        let share_to_slow = |balancer: Balancer| {
            let mut scenario = default_mesh(60.0, 10_000);
            scenario.services[3].balancer = balancer; // payments
            scenario.faults.push(FaultSpec::new(
                "payments",
                Some(0),
                0,
                10_000,
                FaultEffect::Latency { extra_ms: 300 },
            ));
            let t = run(&scenario, 21);
            let (slow, all) = server_spans(&t, "payments").fold((0, 0), |(s, a), span| {
                (s + u32::from(span.instance == 0), a + 1)
            });
            f64::from(slow) / f64::from(all)
        };
        let round_robin = share_to_slow(Balancer::RoundRobin);
        let least = share_to_slow(Balancer::LeastOutstanding);
        let random = share_to_slow(Balancer::Random);
        assert!((0.45..0.55).contains(&round_robin), "{round_robin}");
        assert!((0.35..0.65).contains(&random), "{random}");
        assert!(least < round_robin - 0.1, "{least} vs {round_robin}");
    }

    #[test]
    fn bad_scenarios_name_the_field() {
        let mut scenario = default_mesh(10.0, 1_000);
        scenario.services[0].operations[0].steps.push(Step::Call {
            service: "ledger".into(),
            operation: "post".into(),
            policy: CallPolicy::default(),
            compensate: None,
        });
        scenario.faults.push(FaultSpec::new(
            "orders",
            Some(9),
            5,
            1,
            FaultEffect::ErrorRate { rate: 2.0 },
        ));
        let errors: Vec<String> = Simulation::new(scenario, 1)
            .err()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            [
                "`services[0].operations[0].steps[3].service`: no service is named `ledger`",
                "`faults[0].instance`: `orders` has 3 instances",
                "`faults[0].until_ms`: must be after from_ms",
                "`faults[0].effect.rate`: must be between 0 and 1",
            ]
        );
    }

    #[test]
    fn extreme_values_are_refused_at_the_boundary_not_panicked_on() {
        // Each of these once panicked or overflowed inside the engine (regression, session 1).
        let mut scenario = default_mesh(10.0, 1_000);
        scenario.services[8].operations[0].steps.clear();
        scenario.services[7].queue_limit = u32::MAX;
        scenario.workload.rate_per_s = 1e-300;
        if let Step::Call { policy, .. } = &mut scenario.services[0].operations[0].steps[1] {
            (policy.backoff_base_ms, policy.backoff_max_ms) = (u64::MAX / 999, u64::MAX / 999);
        }
        scenario.faults = vec![
            FaultSpec::new(
                "auth",
                None,
                0,
                10,
                FaultEffect::ClockSkew {
                    offset_ms: i64::MIN,
                    drift_ppm: i64::MIN,
                },
            ),
            FaultSpec::new(
                "auth",
                None,
                0,
                10,
                FaultEffect::LocalTimeLogs {
                    zone_minutes: i16::MIN,
                },
            ),
            FaultSpec::new(
                "auth",
                None,
                0,
                10,
                FaultEffect::Latency {
                    extra_ms: u64::MAX / 1_000,
                },
            ),
        ];
        let fields: Vec<String> = scenario.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "services[0].operations[0].steps[1].policy.backoff_max_ms",
                "services[7].queue_limit",
                "services[8].operations[0].steps",
                "workload.rate_per_s",
                "faults[0].effect",
                "faults[1].effect.zone_minutes",
                "faults[2].effect.extra_ms",
            ]
        );
    }

    #[test]
    fn calls_to_one_operation_must_agree_on_breaker_and_bulkhead() {
        let mut scenario = default_mesh(10.0, 1_000);
        // orders calls database:select from `get` with a breaker, and from nowhere else; add a
        // second call to it from `create` without one.
        if let Step::Call { policy, .. } = &mut scenario.services[2].operations[1].steps[1] {
            policy.breaker = Some(crate::edge::BreakerPolicy::default());
        }
        scenario.services[2].operations[0].steps.push(Step::Call {
            service: "database".into(),
            operation: "select".into(),
            policy: CallPolicy::default(),
            compensate: None,
        });
        let errors = scenario.validate();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "services[2].operations[1].steps[1].policy");
    }

    #[test]
    fn a_compensation_that_fails_leaves_its_step_in_effect_and_the_saga_goes_on() {
        let mut scenario = default_mesh(50.0, 6_000);
        // Releasing stock goes through notifications, which is down; every charge fails.
        let release = &mut scenario.services[4].operations[1];
        assert_eq!(release.name, "release");
        release.steps = vec![Step::Call {
            service: "notifications".into(),
            operation: "send".into(),
            policy: CallPolicy::default(),
            compensate: None,
        }];
        scenario.faults = vec![
            FaultSpec::new("notifications", None, 0, 20_000, FaultEffect::Crash),
            FaultSpec::new(
                "payments",
                None,
                0,
                20_000,
                FaultEffect::ErrorRate { rate: 1.0 },
            ),
        ];
        let (t, truth) = Simulation::new(scenario, 3).unwrap().finish();
        assert!(truth.sagas_failed > 20, "{}", truth.sagas_failed);
        assert_eq!(truth.sagas_compensated, 0);
        // The order was still cancelled after the release failed: only the stock stays taken.
        assert_eq!(
            truth.saga_steps_left,
            BTreeMap::from([("inventory:reserve".to_string(), truth.sagas_failed)])
        );
        let stuck = t
            .logs
            .iter()
            .filter(|l| {
                l.level == Level::Error
                    && t.text(l.message) == "saga compensation failed, steps left in effect"
            })
            .count();
        assert_eq!(stuck as u32, truth.sagas_failed);
        assert_eq!(truth.refunds, 0);
    }

    /// A call step of orders' `create` saga, undone by `undo`.
    fn saga_step(service: &str, operation: &str, undo: &str, policy: CallPolicy) -> Step {
        Step::Call {
            service: service.into(),
            operation: operation.into(),
            policy,
            compensate: Some(undo.into()),
        }
    }

    #[test]
    fn two_steps_of_one_kind_are_held_apart_in_the_ledger() {
        let mut scenario = default_mesh(20.0, 6_000);
        // Two rows per order, the second undone by a select that takes nothing back; then a
        // charge that always fails.
        scenario.services[2].operations[0].steps = vec![
            saga_step("database", "insert", "delete", CallPolicy::default()),
            saga_step("database", "insert", "select", CallPolicy::default()),
            saga_step("payments", "charge", "refund", CallPolicy::default()),
        ];
        scenario.faults = vec![FaultSpec::new(
            "payments",
            None,
            0,
            6_000,
            FaultEffect::ErrorRate { rate: 1.0 },
        )];
        let (_, truth) = Simulation::new(scenario, 3).unwrap().finish();
        assert!(truth.sagas_failed > 10, "{}", truth.sagas_failed);
        // One row per failed saga stays (the second step's); the first was deleted.
        assert_eq!(
            truth.saga_steps_left,
            BTreeMap::from([("database:insert".to_string(), truth.sagas_failed)])
        );
    }

    #[test]
    fn a_release_gives_back_only_what_its_own_step_reserved() {
        let mut scenario = default_mesh(20.0, 6_000);
        // A second, slow stock service: the saga times out on it and releases there first,
        // where nothing is reserved yet, then at inventory, where a unit is.
        let mut warehouse = scenario.services[4].clone();
        warehouse.name = "warehouse".into();
        warehouse.operations[0].steps.insert(
            0,
            Step::Work {
                p50_ms: 500.0,
                p99_ms: 600.0,
            },
        );
        scenario.services.push(warehouse);
        let quick = CallPolicy {
            timeout_ms: Some(100),
            ..CallPolicy::default()
        };
        scenario.services[2].operations[0].steps = vec![
            saga_step("inventory", "reserve", "release", CallPolicy::default()),
            saga_step("warehouse", "reserve", "release", quick),
        ];
        let (t, truth) = Simulation::new(scenario, 3).unwrap().finish();
        let lines = |service: &str, message: &str| {
            t.logs
                .iter()
                .filter(|l| t.service_name(l.service) == service && t.text(l.message) == message)
                .count()
        };
        let skipped = "release skipped, nothing reserved for this order";
        assert!(truth.sagas_failed > 10, "{}", truth.sagas_failed);
        // Inventory's reservation always landed before its release: never skipped there.
        assert_eq!(lines("inventory", skipped), 0);
        assert_eq!(
            lines("inventory", "stock released") as u32,
            truth.sagas_failed
        );
        // The warehouse's release comes before its slow reservation lands: nothing to give
        // back then, and the unit it reserves later stays taken.
        assert_eq!(lines("warehouse", skipped) as u32, truth.sagas_failed);
        assert_eq!(
            truth.saga_steps_left,
            BTreeMap::from([("warehouse:reserve".to_string(), truth.sagas_failed)])
        );
    }

    #[test]
    fn a_compensation_must_name_an_operation_of_the_callee() {
        let mut scenario = default_mesh(10.0, 1_000);
        if let Step::Call { compensate, .. } = &mut scenario.services[2].operations[0].steps[2] {
            *compensate = Some("unreserve".into());
        }
        scenario.services[4].operations[0].effect = None; // release has no stock to return to
        let errors: Vec<String> = scenario.validate().iter().map(|e| e.to_string()).collect();
        assert_eq!(
            errors,
            [
                "`services[2].operations[0].steps[2].compensate`: `inventory` has no operation `unreserve`",
                "`services[4].operations[1].effect`: `inventory` has no `reserve` operation to give stock back to",
            ]
        );
    }

    #[test]
    fn call_cycles_are_rejected() {
        let mut scenario = default_mesh(10.0, 1_000);
        scenario.services[4].operations[0].steps.push(Step::Call {
            service: "orders".into(),
            operation: "create".into(),
            policy: CallPolicy::default(),
            compensate: None,
        });
        let errors = Simulation::new(scenario, 1).err().unwrap();
        assert_eq!(
            errors[0].to_string(),
            "`services`: calls form a cycle: orders:create -> inventory:reserve -> orders:create"
        );
    }

    fn error_type<'a>(t: &'a Telemetry, s: &Span) -> Option<&'a str> {
        let key = t.strings.lookup("error.type")?;
        t.attributes(s).iter().find_map(|(k, v)| match v {
            Value::Str(sym) if *k == key => Some(t.text(*sym)),
            _ => None,
        })
    }

    #[test]
    fn a_breaker_opens_fails_fast_probes_and_closes_again() {
        let mut scenario = default_mesh(60.0, 20_000);
        scenario.edit_calls("orders", "payments", |p| {
            p.breaker = Some(crate::edge::BreakerPolicy {
                consecutive_failures: 5,
                open_ms: 2_000,
                ..Default::default()
            });
        });
        scenario.faults.push(FaultSpec::new(
            "payments",
            None,
            3_000,
            9_000,
            FaultEffect::ErrorRate { rate: 1.0 },
        ));
        let t = run(&scenario, 6);
        let fast = t
            .spans
            .iter()
            .filter(|s| error_type(&t, s) == Some("circuit_open"))
            .count();
        assert!(fast > 20, "{fast} fast failures");
        // Per orders instance, transitions read closed→open→half_open→(open→half_open)*→closed.
        let to_key = t.strings.lookup("breaker.state").unwrap();
        let mut by_instance: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
        for l in t
            .logs
            .iter()
            .filter(|l| t.text(l.message) == "circuit breaker changed state")
        {
            let to = l.fields.iter().find_map(|(k, v)| match v {
                Value::Str(s) if *k == to_key => Some(t.text(*s)),
                _ => None,
            });
            by_instance.entry(l.instance).or_default().push(to.unwrap());
        }
        assert_eq!(by_instance.len(), 3, "{by_instance:?}");
        for (instance, states) in &by_instance {
            assert_eq!(
                states.first(),
                Some(&"open"),
                "instance {instance}: {states:?}"
            );
            assert_eq!(
                states.last(),
                Some(&"closed"),
                "instance {instance}: {states:?}"
            );
            assert!(states.contains(&"half_open"));
        }
        // The sampled breaker state is open (2) at some point for every orders instance.
        for instance in 0..3 {
            assert!(
                t.metrics
                    .breakers
                    .iter()
                    .any(|b| b.instance == instance && b.state == 2)
            );
        }
        // No fast failures once the fault is long over.
        assert!(
            !t.spans
                .iter()
                .any(|s| s.start.0 > 15_000_000 && error_type(&t, s) == Some("circuit_open"))
        );
    }

    #[test]
    fn a_bulkhead_bounds_concurrency_on_its_edge() {
        let mut scenario = default_mesh(60.0, 10_000);
        scenario.edit_calls("orders", "payments", |p| {
            p.bulkhead = Some(crate::edge::BulkheadPolicy {
                max_concurrent: 2,
                max_queue: 0,
            });
        });
        scenario.faults.push(FaultSpec::new(
            "payments",
            None,
            2_000,
            8_000,
            FaultEffect::Latency { extra_ms: 400 },
        ));
        let t = run(&scenario, 9);
        let payments = t.strings.lookup("payments").unwrap();
        let peer = t.strings.lookup("peer.service").unwrap();
        let rejected = t
            .spans
            .iter()
            .filter(|s| error_type(&t, s) == Some("bulkhead_full"))
            .count();
        assert!(rejected > 10, "{rejected} rejected");
        for instance in 0..3u16 {
            // +1 at each dispatched attempt's start, -1 at its end; the running sum is the load.
            let mut changes: Vec<(SimTime, i32)> = Vec::new();
            for s in t.spans.iter().filter(|s| {
                s.kind == SpanKind::Client
                    && s.instance == instance
                    && t.attributes(s).contains(&(peer, Value::Str(payments)))
                    && error_type(&t, s) != Some("bulkhead_full")
            }) {
                changes.push((s.start, 1));
                changes.push((s.end().unwrap(), -1));
            }
            changes.sort();
            let mut load = 0;
            for (_, d) in changes {
                load += d;
                assert!(load <= 2, "instance {instance} had {load} calls in flight");
            }
        }
    }
}
