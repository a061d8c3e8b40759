//! What a run simulates: the services and their instances, the operations each serves (a list
//! of steps), the call policies on each edge, the workload, and the faults. Plain serde data;
//! `validate` checks it once, at the boundary, and names the field path of every problem.

use serde::{Deserialize, Serialize};

use crate::edge::{BreakerPolicy, BulkheadPolicy};

mod roles;
pub use roles::{LOG_MIN_DURATION_STATEMENT_MS_DEFAULT, ServiceRole};

/// A whole simulated world. `Simulation::new` accepts only a scenario that validates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// How long arrivals keep coming; requests in flight at the end still finish.
    pub duration_ms: u64,
    pub services: Vec<ServiceSpec>,
    pub workload: Workload,
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: String,
    pub instances: u16,
    /// Requests one instance handles at once; a request holds its worker until it responds,
    /// including while it waits on the services it calls.
    pub workers: u16,
    /// Requests that may wait for a worker; past this an instance answers 503 at once.
    pub queue_limit: u32,
    pub operations: Vec<OperationSpec>,
    /// How callers pick one of this service's instances.
    #[serde(default)]
    pub balancer: Balancer,
    /// The lowest level the service writes; lines below it are not logged.
    #[serde(default)]
    pub log_level: LogLevel,
    /// A connection pool per instance for calls to one service (its database): a call first
    /// takes a connection, waiting up to `acquire_timeout_ms`, and returns it when it ends.
    #[serde(default)]
    pub pool: Option<PoolSpec>,
    /// A managed runtime with a garbage-collected heap (a JVM, .NET or Go service): each
    /// instance collects when its heap fills, stopping the world for a pause.
    #[serde(default)]
    pub gc: Option<GcSpec>,
    /// Competing consumers of this service's queue bound to `topic` on the `queue` broker: each
    /// instance runs `concurrency` consumers that take messages and run `operation` for each.
    #[serde(default)]
    pub consumer: Option<ConsumerSpec>,
    /// The database system the service is, as OpenTelemetry's `db.system` names it
    /// (`postgresql`, `mysql`). A database writes no spans (see `ServiceRole`): its callers'
    /// client spans are named by the operation in capitals (`SELECT`) and carry `db.system`,
    /// `db.operation.name`, `db.namespace` and `server.address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_system: Option<String>,
    /// A database logs each statement that ran at least this long, as PostgreSQL's
    /// `log_min_duration_statement` (0 logs every one); None for the default, 500 ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_min_duration_statement_ms: Option<u64>,
}

/// One instance's heap and its collector. Garbage is allocated at a steady rate; when the heap
/// is full a stop-the-world collection frees all but the live data, pausing the instance for
/// `pause_ms_per_gb` per GB of live heap, times heap / (heap - live) as the heap crowds. An
/// instance whose live heap fills 98% of it is killed out of memory and restarts after
/// `restart_ms`, its heap reset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcSpec {
    pub heap_mb: u32,
    /// Data still reachable after a collection, when healthy.
    pub live_mb: u32,
    pub alloc_mb_per_s: u32,
    pub pause_ms_per_gb: u32,
    #[serde(default = "GcSpec::default_restart_ms")]
    pub restart_ms: u64,
}

impl GcSpec {
    fn default_restart_ms() -> u64 {
        5_000
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSpec {
    pub queue: String,
    pub topic: String,
    /// This service's operation that processes one message.
    pub operation: String,
    /// Consumers per instance, each with a prefetch count of one: the broker lets an instance
    /// hold this many unacknowledged messages.
    pub concurrency: u16,
    /// A message whose processing fails is requeued; after this many deliveries it is
    /// dead-lettered instead (a quorum queue's delivery limit).
    #[serde(default = "ConsumerSpec::default_max_deliveries")]
    pub max_deliveries: u16,
    /// The wait before the first redelivery, doubled for each one after, up to a minute.
    #[serde(default = "ConsumerSpec::default_redelivery_delay_ms")]
    pub redelivery_delay_ms: u64,
}

impl ConsumerSpec {
    pub fn default_max_deliveries() -> u16 {
        5
    }
    pub fn default_redelivery_delay_ms() -> u64 {
        500
    }
}

/// How often each key of a cache's key space is asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Popularity {
    /// Key k is asked for about 1/(k+1) as often as key 0: a few hot keys, a long tail.
    #[default]
    Zipf,
    Uniform,
}

/// A service's log level threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Everything, including a line when each request starts.
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

/// Load-balancing strategies, as client-side balancers in service meshes offer them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balancer {
    /// Each instance in turn.
    #[default]
    RoundRobin,
    /// Uniformly at random.
    Random,
    /// The instance with the fewest requests in progress or waiting (lowest index on ties).
    LeastOutstanding,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    /// The service whose calls go through the pool.
    pub target: String,
    pub size: u16,
    pub acquire_timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationSpec {
    /// As a client sees it, e.g. `POST /orders` or `charge`.
    pub name: String,
    pub steps: Vec<Step>,
    /// What a successful request changes in the world, for the data faults.
    #[serde(default)]
    pub effect: Option<DataEffect>,
    /// Runs as a scheduled job as well: each instance starts it `every_ms` after its last run
    /// ended (fixed delay), as a trace of its own.
    #[serde(default)]
    pub every_ms: Option<u64>,
    /// A lock with a lease that the operation takes before its first step, and a write guarded
    /// by it when it succeeds.
    #[serde(default)]
    pub lock: Option<LockSpec>,
}

/// A distributed lock with a lease (as Chubby, ZooKeeper or etcd give): acquiring it when it is
/// free, or its lease has expired, makes the caller the holder with the next fencing token until
/// `lease_ms` later. The operation's write carries the token; with `fencing` the storage
/// rejects a token lower than the highest it has seen. A job that finds the lock held skips
/// its run; a request fails with 409.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockSpec {
    pub name: String,
    pub lease_ms: u64,
    pub fencing: bool,
}

/// A lasting change a request makes when it succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataEffect {
    /// Charges the customer. A request carrying an idempotency key already charged is
    /// answered from the first charge instead; without a key every success charges again.
    Charge,
    /// Takes one unit of stock by read-modify-write: the count is read when the operation's
    /// first call returns and written when it succeeds. With optimistic locking a write whose
    /// version moved since the read is retried on a fresh read; without it, concurrent writes
    /// lose updates and more units are sold than there were. Out of stock answers 409.
    Reserve {
        initial_stock: u32,
        optimistic_locking: bool,
    },
    /// Gives back one unit the order (the request that called it) reserved from the stock of
    /// the service's `reserve` operation, when it holds one: a saga's compensation.
    Release,
    /// Refunds a charge made for the order (the request that called it), when there is one
    /// left: a saga's compensation for a charge, safe to repeat.
    Refund,
    /// Writes a row for the order that called it, such as the order itself.
    Insert,
    /// Deletes a row `insert` wrote for the order, when there is one: a saga's compensation.
    Delete,
}

/// One step of an operation, run in order by the instance that received the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// CPU or IO time spent locally, log-normal between the given median and 99th percentile.
    Work { p50_ms: f64, p99_ms: f64 },
    /// A call to another service's operation under a client policy.
    Call {
        service: String,
        operation: String,
        #[serde(default)]
        policy: CallPolicy,
        /// The operation of the same service that undoes this call's effect. An operation with
        /// such steps is a saga: when a later step fails, the steps that succeeded are undone
        /// by their compensating calls, latest first, before the request answers its error.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        compensate: Option<String>,
    },
    /// A read-through cache lookup of a key drawn from `keys`: a hit skips the next
    /// `miss_steps` steps (the backing read); a miss runs them, then sets the key for `ttl_ms`
    /// through `set_operation`. A failed lookup counts as a miss.
    CacheGet {
        service: String,
        #[serde(default = "default_cache_get")]
        operation: String,
        #[serde(default = "default_cache_set")]
        set_operation: String,
        keys: u32,
        #[serde(default)]
        popularity: Popularity,
        ttl_ms: u64,
        miss_steps: u16,
        #[serde(default)]
        policy: CallPolicy,
    },
    /// Publishes a message to the `topic` exchange of a queue service, carrying the trace
    /// context; each consuming service's queue bound to it gets a copy to process later.
    Publish {
        service: String,
        #[serde(default = "default_publish")]
        operation: String,
        topic: String,
        #[serde(default)]
        policy: CallPolicy,
    },
}

fn default_cache_get() -> String {
    "get".into()
}
fn default_cache_set() -> String {
    "set".into()
}
fn default_publish() -> String {
    "publish".into()
}

impl Step {
    /// The calls this step makes on its way, as (service, operation, policy); a compensating
    /// call is apart (`compensation`).
    pub fn calls(&self) -> Vec<(&str, &str, &CallPolicy)> {
        match self {
            Step::Work { .. } => vec![],
            Step::Call {
                service,
                operation,
                policy,
                ..
            }
            | Step::Publish {
                service,
                operation,
                policy,
                ..
            } => vec![(service, operation, policy)],
            Step::CacheGet {
                service,
                operation,
                set_operation,
                policy,
                ..
            } => vec![
                (service, operation, policy),
                (service, set_operation, policy),
            ],
        }
    }

    /// The call that undoes this step in a saga, if it names one.
    pub fn compensation(&self) -> Option<(&str, &str, &CallPolicy)> {
        match self {
            Step::Call {
                service,
                policy,
                compensate: Some(undo),
                ..
            } => Some((service, undo, policy)),
            _ => None,
        }
    }
}

/// The client side of one call edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallPolicy {
    /// None: wait forever, the classic missing timeout.
    pub timeout_ms: Option<u64>,
    /// Attempts after the first one.
    pub retries: u32,
    /// Backoff before retry n is `base * 2^(n-1)`, capped at `backoff_max_ms`.
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// Full jitter: wait a uniform time between zero and the backoff.
    pub jitter: bool,
    /// Send an idempotency key, the same on every attempt of the call.
    pub idempotency_key: bool,
    /// Send the W3C `traceparent` header, so the callee's spans join the caller's trace.
    pub propagate_context: bool,
    /// Retries allowed as a share of first attempts over the last 10 s on this edge (as
    /// Finagle's and Envoy's retry budgets); None for no budget.
    pub retry_budget: Option<f64>,
    /// A circuit breaker per caller instance on this edge; None for no breaker.
    pub breaker: Option<BreakerPolicy>,
    /// A bulkhead per caller instance on this edge; None for unlimited concurrency.
    pub bulkhead: Option<BulkheadPolicy>,
}

impl Default for CallPolicy {
    fn default() -> Self {
        CallPolicy {
            timeout_ms: Some(1_000),
            retries: 0,
            backoff_base_ms: 50,
            backoff_max_ms: 2_000,
            jitter: true,
            idempotency_key: false,
            propagate_context: true,
            retry_budget: None,
            breaker: None,
            bulkhead: None,
        }
    }
}

/// Where requests come from: Poisson arrivals at a rate, spread over entry operations by weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    pub rate_per_s: f64,
    pub entries: Vec<Entry>,
    /// Rate changes over the run, applied in order: each moves the rate linearly to its
    /// target between `from_ms` and `until_ms`, where it stays.
    #[serde(default)]
    pub ramps: Vec<Ramp>,
    /// Extra requests that all arrive at one instant.
    #[serde(default)]
    pub bursts: Vec<Burst>,
    /// Distinct users sending requests (each request is from one of them, uniformly); 0 for
    /// anonymous traffic.
    #[serde(default)]
    pub users: u32,
    /// Times an outside client retries a request that failed with 5xx, 200 ms later, as a
    /// new trace.
    #[serde(default)]
    pub client_retries: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ramp {
    pub from_ms: u64,
    pub until_ms: u64,
    pub to_rate_per_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Burst {
    pub at_ms: u64,
    pub requests: u32,
}

impl Workload {
    /// The arrival rate at `at_ms`, after the ramps.
    pub fn rate_at(&self, at_ms: f64) -> f64 {
        let mut rate = self.rate_per_s;
        for r in &self.ramps {
            let (from, until) = (r.from_ms as f64, r.until_ms as f64);
            if at_ms >= until {
                rate = r.to_rate_per_s;
            } else if at_ms > from {
                rate += (r.to_rate_per_s - rate) * (at_ms - from) / (until - from);
            }
        }
        rate
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub service: String,
    pub operation: String,
    pub weight: u32,
}

/// A fault injected into one service (all its instances, or one) during a time window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub service: String,
    /// Index of the one instance affected; None affects every instance.
    #[serde(default)]
    pub instance: Option<u16>,
    pub from_ms: u64,
    pub until_ms: u64,
    pub effect: FaultEffect,
}

impl FaultSpec {
    /// A fault on `service` (one instance, or all with None) in [from_ms, until_ms).
    pub fn new(
        service: &str,
        instance: Option<u16>,
        from_ms: u64,
        until_ms: u64,
        effect: FaultEffect,
    ) -> FaultSpec {
        FaultSpec {
            service: service.into(),
            instance,
            from_ms,
            until_ms,
            effect,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultEffect {
    /// Every work step takes this much longer.
    Latency { extra_ms: u64 },
    /// Each request fails with HTTP 500 with this probability (0 to 1), after its work.
    ErrorRate { rate: f64 },
    /// The instance's process dies when the window opens, with every request it holds, and is
    /// down until it closes: new connections to it are refused. Requests from outside the mesh
    /// are routed around it by the edge load balancer, which health-checks.
    #[serde(rename = "instance_crash")]
    Crash,
    /// Requests from this service to `peer` are lost on the way: no answer ever comes, so
    /// only the caller's timeout ends the wait.
    Partition { peer: String },
    /// Requests arrive `multiplier` times as fast as the workload says.
    TrafficFlood { multiplier: f64 },
    /// Someone raised the service's log level to WARN: its info and debug lines vanish.
    LogLevelWarn,
    /// A debug statement prints the full card number on every request the service answers.
    CardNumbersLogged,
    /// The service stops passing trace context on its calls: callees start new traces.
    ContextDropped,
    /// The service's calls retry up to three times at once, with no backoff and no budget.
    RetryStorm,
    /// The service's stock writes skip the version check: lost updates oversell.
    StockRace,
    /// The service retries its calls once more on failure and stops sending idempotency keys:
    /// a timed-out charge that did go through is charged again.
    NonIdempotentRetry,
    /// The node's clock is off by `offset_ms` (either way) and drifts `drift_ppm` microseconds
    /// per second more as the fault goes on; its log timestamps carry the error.
    ClockSkew {
        offset_ms: i64,
        #[serde(default)]
        drift_ppm: i64,
    },
    /// The node logs its local wall time with a zone offset (`+02:00`) instead of UTC.
    LocalTimeLogs { zone_minutes: i16 },
    /// The service forgets to return this share of its pool's connections (0 to 1).
    ConnectionLeak { rate: f64 },
    /// The live heap grows by `mb_per_s` while the fault is in force: collections come more
    /// often and pause longer, until the instance is killed out of memory.
    MemoryLeak { mb_per_s: u32 },
    /// The service's sagas lose their compensation handler: a failed saga answers its error
    /// and leaves the steps that succeeded in effect (an order saved, its stock not reserved).
    SagaNoCompensation,
    /// Each time the instance takes a lock while the fault is in force, a full collection
    /// stops its world for `pause_ms`: longer than the lease, another instance takes the lock
    /// and the paused holder writes with a stale fencing token when it wakes.
    LeaseExpiry { pause_ms: u64 },
    /// The cache service is down: connections to it are refused and its contents are lost,
    /// so every read falls through to what backs it, and it comes back cold.
    CacheOutage,
    /// The service's consumers stop processing messages while staying connected: the broker
    /// fills their prefetch, those messages wait unacknowledged, and (when every instance
    /// stalls) the backlog grows until the window ends.
    ConsumerStall,
}

impl FaultEffect {
    /// The catalog name, as scenario files and lessons write it.
    pub fn name(&self) -> &'static str {
        match self {
            FaultEffect::Latency { .. } => "latency",
            FaultEffect::ErrorRate { .. } => "error_rate",
            FaultEffect::Crash => "instance_crash",
            FaultEffect::Partition { .. } => "partition",
            FaultEffect::TrafficFlood { .. } => "traffic_flood",
            FaultEffect::LogLevelWarn => "log_level_warn",
            FaultEffect::CardNumbersLogged => "card_numbers_logged",
            FaultEffect::ContextDropped => "context_dropped",
            FaultEffect::NonIdempotentRetry => "non_idempotent_retry",
            FaultEffect::RetryStorm => "retry_storm",
            FaultEffect::StockRace => "stock_race",
            FaultEffect::ClockSkew { .. } => "clock_skew",
            FaultEffect::LocalTimeLogs { .. } => "local_time_logs",
            FaultEffect::ConnectionLeak { .. } => "connection_leak",
            FaultEffect::MemoryLeak { .. } => "memory_leak",
            FaultEffect::SagaNoCompensation => "saga_no_compensation",
            FaultEffect::LeaseExpiry { .. } => "lease_expiry",
            FaultEffect::CacheOutage => "cache_outage",
            FaultEffect::ConsumerStall => "consumer_stall",
        }
    }
}

/// Every fault the catalog names, implemented or not yet; lessons may only cite these.
pub const FAULT_CATALOG: [&str; 20] = [
    "latency",
    "error_rate",
    "instance_crash",
    "partition",
    "connection_leak",
    "missing_timeout",
    "retry_storm",
    "non_idempotent_retry",
    "log_level_warn",
    "local_time_logs",
    "clock_skew",
    "context_dropped",
    "stock_race",
    "lease_expiry",
    "saga_no_compensation",
    "cache_outage",
    "consumer_stall",
    "traffic_flood",
    "memory_leak",
    "card_numbers_logged",
];

/// Bounds that keep any accepted scenario's run finite and its memory bounded.
pub const SERVICES_MAX: usize = 64;
pub const INSTANCES_MAX: u16 = 32;
pub const WORKERS_MAX: u16 = 4_096;
pub const STEPS_MAX: usize = 32;
pub const RETRIES_MAX: u32 = 10;
pub const DURATION_MS_MAX: u64 = 3_600_000;
pub const RATE_PER_S_MAX: f64 = 100_000.0;
/// One request every 1,000 s: slower rates would put the next arrival past any run.
pub const RATE_PER_S_MIN: f64 = 0.001;
/// Longest queue an instance may have, and longest backoff or injected latency.
pub const QUEUE_LIMIT_MAX: u32 = 100_000;
pub const BACKOFF_MS_MAX: u64 = 600_000;
pub const EXTRA_LATENCY_MS_MAX: u64 = 600_000;
pub const BURST_REQUESTS_MAX: u32 = 100_000;
pub const CLIENT_RETRIES_MAX: u32 = 5;
pub const WORK_MS_MAX: f64 = 600_000.0;
/// Largest heap, allocation rate and pause rate a runtime may declare; longest restart.
pub const HEAP_MB_MAX: u32 = 65_536;
pub const ALLOC_MB_PER_S_MAX: u32 = 100_000;
pub const PAUSE_MS_PER_GB_MAX: u32 = 60_000;
pub const RESTART_MS_MAX: u64 = 600_000;
/// A heap must take at least this long to fill from live data alone (the shortest time the
/// collector leaves between two collections).
pub const HEAP_FILL_US_MIN: u64 = 1_000;
/// Most faults in a scenario, and operations in one service (both indexed by `u16` in the
/// engine, and scanned per event).
pub const FAULTS_MAX: usize = 256;
pub const OPERATIONS_MAX: usize = 256;
/// Shortest period of a scheduled job; longest lease and lease-expiry pause.
pub const EVERY_MS_MIN: u64 = 10;
pub const LEASE_MS_MAX: u64 = 600_000;
/// Deepest chain of nested calls from any entry operation.
pub const CALL_DEPTH_MAX: usize = 16;
/// Largest key space of one cache step (below 2^17), and longest cache TTL.
pub const CACHE_KEYS_MAX: u32 = 100_000;
pub const CACHE_TTL_MS_MAX: u64 = 86_400_000;
pub const CONSUMER_CONCURRENCY_MAX: u16 = 1_024;
/// Deliveries of one message before it is dead-lettered, and the first redelivery's wait
/// (doubled each time, up to a minute).
pub const MAX_DELIVERIES_MAX: u16 = 20;
pub const REDELIVERY_DELAY_MS_MAX: u64 = 60_000;

/// One problem in a scenario, with the path of the field that has it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {problem}")]
pub struct ScenarioError {
    /// Like `services[2].operations[0].steps[1].service`.
    pub field: String,
    pub problem: String,
}

impl Scenario {
    /// Changes the client policy of every call service `caller` makes to service `callee` (in
    /// any of its operations), as a learner tuning one edge in the sandbox would; returns how
    /// many calls it changed.
    pub fn edit_calls(
        &mut self,
        caller: &str,
        callee: &str,
        edit: impl FnMut(&mut CallPolicy),
    ) -> usize {
        self.edit_calls_to(caller, callee, None, edit)
    }

    /// As `edit_calls`, limited to the calls to one of the callee's operations when given.
    pub fn edit_calls_to(
        &mut self,
        caller: &str,
        callee: &str,
        callee_operation: Option<&str>,
        mut edit: impl FnMut(&mut CallPolicy),
    ) -> usize {
        let mut changed = 0;
        for service in self.services.iter_mut().filter(|s| s.name == caller) {
            for operation in &mut service.operations {
                for step in &mut operation.steps {
                    if let Step::Call {
                        service,
                        operation,
                        policy,
                        ..
                    } = step
                    {
                        if service == callee && callee_operation.is_none_or(|o| o == operation) {
                            edit(policy);
                            changed += 1;
                        }
                    }
                }
            }
        }
        changed
    }

    /// Every problem in the scenario, empty when it can run.
    pub fn validate(&self) -> Vec<ScenarioError> {
        let mut errors = Vec::new();
        let mut bad =
            |field: String, problem: String| errors.push(ScenarioError { field, problem });
        if self.duration_ms == 0 || self.duration_ms > DURATION_MS_MAX {
            bad(
                "duration_ms".into(),
                format!("must be 1..={DURATION_MS_MAX}"),
            );
        }
        if self.services.is_empty() || self.services.len() > SERVICES_MAX {
            bad(
                "services".into(),
                format!("need 1..={SERVICES_MAX} services"),
            );
        }
        for (s, service) in self.services.iter().enumerate() {
            let at = format!("services[{s}]");
            if self.services[..s].iter().any(|o| o.name == service.name) {
                bad(
                    format!("{at}.name"),
                    format!("`{}` is named twice", service.name),
                );
            }
            if service.instances == 0 || service.instances > INSTANCES_MAX {
                bad(
                    format!("{at}.instances"),
                    format!("must be 1..={INSTANCES_MAX}"),
                );
            }
            if service.queue_limit > QUEUE_LIMIT_MAX {
                bad(
                    format!("{at}.queue_limit"),
                    format!("at most {QUEUE_LIMIT_MAX}"),
                );
            }
            if service.operations.len() > OPERATIONS_MAX {
                bad(
                    format!("{at}.operations"),
                    format!("at most {OPERATIONS_MAX} operations"),
                );
            }
            if service.workers == 0 || service.workers > WORKERS_MAX {
                bad(
                    format!("{at}.workers"),
                    format!("must be 1..={WORKERS_MAX}"),
                );
            }
            if let Some(pool) = &service.pool {
                if !self.services.iter().any(|s| s.name == pool.target) {
                    bad(
                        format!("{at}.pool.target"),
                        format!("no service is named `{}`", pool.target),
                    );
                }
                if pool.size == 0 || pool.acquire_timeout_ms == 0 {
                    bad(
                        format!("{at}.pool"),
                        "size and acquire_timeout_ms must be positive".into(),
                    );
                }
            }
            if let Some(gc) = &service.gc {
                let at = format!("{at}.gc");
                if gc.heap_mb == 0 || gc.heap_mb > HEAP_MB_MAX {
                    bad(
                        format!("{at}.heap_mb"),
                        format!("must be 1..={HEAP_MB_MAX}"),
                    );
                }
                if u64::from(gc.live_mb) * 10 >= u64::from(gc.heap_mb) * 9 {
                    bad(
                        format!("{at}.live_mb"),
                        "must be below 90% of heap_mb".into(),
                    );
                }
                if gc.alloc_mb_per_s == 0 || gc.alloc_mb_per_s > ALLOC_MB_PER_S_MAX {
                    bad(
                        format!("{at}.alloc_mb_per_s"),
                        format!("must be 1..={ALLOC_MB_PER_S_MAX}"),
                    );
                } else if u64::from(gc.live_mb) * 10 < u64::from(gc.heap_mb) * 9
                    && u64::from(gc.heap_mb - gc.live_mb) * 1_000_000
                        < u64::from(gc.alloc_mb_per_s) * HEAP_FILL_US_MIN
                {
                    bad(
                        format!("{at}.alloc_mb_per_s"),
                        format!(
                            "fills the free heap (heap_mb - live_mb) in under {} ms; at most {} MB/s",
                            HEAP_FILL_US_MIN / 1_000,
                            u64::from(gc.heap_mb - gc.live_mb) * 1_000_000 / HEAP_FILL_US_MIN
                        ),
                    );
                }
                if gc.pause_ms_per_gb > PAUSE_MS_PER_GB_MAX {
                    bad(
                        format!("{at}.pause_ms_per_gb"),
                        format!("at most {PAUSE_MS_PER_GB_MAX}"),
                    );
                }
                if gc.restart_ms == 0 || gc.restart_ms > RESTART_MS_MAX {
                    bad(
                        format!("{at}.restart_ms"),
                        format!("must be 1..={RESTART_MS_MAX}"),
                    );
                }
            }
            if let Some(c) = &service.consumer {
                if let Err(problem) = self.operation(&service.name, &c.operation) {
                    bad(format!("{at}.consumer.operation"), problem);
                }
                if !self.services.iter().any(|s| s.name == c.queue) || c.queue == service.name {
                    bad(
                        format!("{at}.consumer.queue"),
                        format!("no other service is named `{}`", c.queue),
                    );
                }
                if c.topic.is_empty() {
                    bad(format!("{at}.consumer.topic"), "must not be empty".into());
                }
                if c.concurrency == 0 || c.concurrency > CONSUMER_CONCURRENCY_MAX {
                    bad(
                        format!("{at}.consumer.concurrency"),
                        format!("must be 1..={CONSUMER_CONCURRENCY_MAX}"),
                    );
                }
                if c.max_deliveries == 0 || c.max_deliveries > MAX_DELIVERIES_MAX {
                    bad(
                        format!("{at}.consumer.max_deliveries"),
                        format!("must be 1..={MAX_DELIVERIES_MAX}"),
                    );
                }
                if c.redelivery_delay_ms > REDELIVERY_DELAY_MS_MAX {
                    bad(
                        format!("{at}.consumer.redelivery_delay_ms"),
                        format!("at most {REDELIVERY_DELAY_MS_MAX}"),
                    );
                }
            }
            // A caller instance keeps one breaker and one bulkhead per callee operation, so every
            // call from this service to that operation must agree on them.
            let mut edge_policies: Vec<(&str, &str, &CallPolicy, String)> = Vec::new();
            for (o, op) in service.operations.iter().enumerate() {
                for (i, step) in op.steps.iter().enumerate() {
                    // A compensating call goes out under its step's policy.
                    for (target, operation, policy) in
                        step.calls().into_iter().chain(step.compensation())
                    {
                        let here = format!("{at}.operations[{o}].steps[{i}].policy");
                        match edge_policies
                            .iter()
                            .find(|(t, p, _, _)| *t == target && *p == operation)
                        {
                            Some((_, _, first, first_at))
                                if first.breaker != policy.breaker
                                    || first.bulkhead != policy.bulkhead =>
                            {
                                bad(
                                    here,
                                    format!(
                                        "sets another breaker or bulkhead for `{target}:{operation}` than {first_at}; one caller instance keeps one of each per operation"
                                    ),
                                );
                            }
                            Some(_) => {}
                            None => edge_policies.push((target, operation, policy, here)),
                        }
                    }
                }
            }
            for (o, op) in service.operations.iter().enumerate() {
                let at = format!("{at}.operations[{o}]");
                if service.operations[..o].iter().any(|p| p.name == op.name) {
                    bad(
                        format!("{at}.name"),
                        format!("`{}` is named twice", op.name),
                    );
                }
                let reserves = service
                    .operations
                    .iter()
                    .any(|o| matches!(o.effect, Some(DataEffect::Reserve { .. })));
                if op.effect == Some(DataEffect::Release) && !reserves {
                    bad(
                        format!("{at}.effect"),
                        format!(
                            "`{}` has no `reserve` operation to give stock back to",
                            service.name
                        ),
                    );
                }
                if op
                    .every_ms
                    .is_some_and(|ms| !(EVERY_MS_MIN..=DURATION_MS_MAX).contains(&ms))
                {
                    bad(
                        format!("{at}.every_ms"),
                        format!("must be {EVERY_MS_MIN}..={DURATION_MS_MAX}"),
                    );
                }
                if let Some(lock) = &op.lock {
                    if lock.name.is_empty() {
                        bad(format!("{at}.lock.name"), "must not be empty".into());
                    }
                    // One lock guards one storage, which checks tokens or does not.
                    let earlier = self.services[..=s]
                        .iter()
                        .enumerate()
                        .flat_map(|(t, other)| {
                            let upto = if t == s { o } else { other.operations.len() };
                            other.operations[..upto]
                                .iter()
                                .enumerate()
                                .map(move |(p, op)| (t, p, op))
                        });
                    let first = earlier
                        .filter_map(|(t, p, op)| op.lock.as_ref().map(|l| (t, p, l)))
                        .find(|(_, _, l)| l.name == lock.name);
                    if let Some((t, p, first)) = first.filter(|f| f.2.fencing != lock.fencing) {
                        bad(
                            format!("{at}.lock.fencing"),
                            format!(
                                "lock `{}` has fencing = {} in services[{t}].operations[{p}]; every operation taking it must agree",
                                lock.name, first.fencing
                            ),
                        );
                    }
                    if lock.lease_ms == 0 || lock.lease_ms > LEASE_MS_MAX {
                        bad(
                            format!("{at}.lock.lease_ms"),
                            format!("must be 1..={LEASE_MS_MAX}"),
                        );
                    }
                }
                if op.steps.is_empty() || op.steps.len() > STEPS_MAX {
                    bad(format!("{at}.steps"), format!("need 1..={STEPS_MAX} steps"));
                }
                for (i, step) in op.steps.iter().enumerate() {
                    let at = format!("{at}.steps[{i}]");
                    match step {
                        Step::Work { p50_ms, p99_ms } => {
                            let ok = p50_ms.is_finite()
                                && p99_ms.is_finite()
                                && *p50_ms >= 0.0
                                && p50_ms <= p99_ms
                                && *p99_ms <= WORK_MS_MAX;
                            if !ok {
                                bad(at, format!("need 0 <= p50_ms <= p99_ms <= {WORK_MS_MAX}"));
                            }
                        }
                        Step::Call { .. } | Step::CacheGet { .. } | Step::Publish { .. } => {
                            if let Step::Call {
                                service: target,
                                compensate: Some(undo),
                                ..
                            } = step
                            {
                                if let Err(problem) = self.operation(target, undo) {
                                    bad(format!("{at}.compensate"), problem);
                                }
                            }
                            for (target, operation, policy) in step.calls() {
                                match self.operation(target, operation) {
                                    Err(problem) => bad(format!("{at}.service"), problem),
                                    Ok(_) if target == service.name => bad(
                                        format!("{at}.service"),
                                        "a service cannot call itself".into(),
                                    ),
                                    Ok(_) => {}
                                }
                                if policy.retries > RETRIES_MAX {
                                    bad(
                                        format!("{at}.policy.retries"),
                                        format!("at most {RETRIES_MAX}"),
                                    );
                                }
                                if policy.timeout_ms == Some(0) {
                                    bad(
                                        format!("{at}.policy.timeout_ms"),
                                        "must be positive, or absent for none".into(),
                                    );
                                }
                                if let Some(b) = &policy.breaker {
                                    let at = format!("{at}.policy.breaker");
                                    if b.consecutive_failures == 0 && b.failure_rate == 0.0 {
                                        bad(
                                            at.clone(),
                                            "set consecutive_failures or failure_rate".into(),
                                        );
                                    }
                                    if !(0.0..=1.0).contains(&b.failure_rate) {
                                        bad(
                                            format!("{at}.failure_rate"),
                                            "must be between 0 and 1".into(),
                                        );
                                    }
                                    if b.open_ms == 0 {
                                        bad(format!("{at}.open_ms"), "must be positive".into());
                                    }
                                    if b.half_open_probes == 0 {
                                        bad(
                                            format!("{at}.half_open_probes"),
                                            "must be at least 1".into(),
                                        );
                                    }
                                }
                                if policy
                                    .bulkhead
                                    .as_ref()
                                    .is_some_and(|b| b.max_concurrent == 0)
                                {
                                    bad(
                                        format!("{at}.policy.bulkhead.max_concurrent"),
                                        "must be at least 1".into(),
                                    );
                                }
                                if policy
                                    .retry_budget
                                    .is_some_and(|b| !(0.0..=1.0).contains(&b))
                                {
                                    bad(
                                        format!("{at}.policy.retry_budget"),
                                        "must be between 0 and 1".into(),
                                    );
                                }
                                if policy.backoff_max_ms > BACKOFF_MS_MAX {
                                    bad(
                                        format!("{at}.policy.backoff_max_ms"),
                                        format!("at most {BACKOFF_MS_MAX}"),
                                    );
                                }
                                if policy.backoff_base_ms > policy.backoff_max_ms {
                                    bad(
                                        format!("{at}.policy.backoff_base_ms"),
                                        "exceeds backoff_max_ms".into(),
                                    );
                                }
                            }
                            self.check_store_step(&at, step, op, i, &mut bad);
                        }
                    }
                }
            }
        }
        self.check_roles(&mut bad);
        if !(self.workload.rate_per_s >= RATE_PER_S_MIN
            && self.workload.rate_per_s <= RATE_PER_S_MAX)
        {
            bad(
                "workload.rate_per_s".into(),
                format!("must be in [{RATE_PER_S_MIN}, {RATE_PER_S_MAX}]"),
            );
        }
        for (i, r) in self.workload.ramps.iter().enumerate() {
            if r.from_ms >= r.until_ms {
                bad(
                    format!("workload.ramps[{i}].until_ms"),
                    "must be after from_ms".into(),
                );
            }
            if !(r.to_rate_per_s >= RATE_PER_S_MIN && r.to_rate_per_s <= RATE_PER_S_MAX) {
                bad(
                    format!("workload.ramps[{i}].to_rate_per_s"),
                    format!("must be in [{RATE_PER_S_MIN}, {RATE_PER_S_MAX}]"),
                );
            }
        }
        for (i, b) in self.workload.bursts.iter().enumerate() {
            if b.requests > BURST_REQUESTS_MAX {
                bad(
                    format!("workload.bursts[{i}].requests"),
                    format!("at most {BURST_REQUESTS_MAX}"),
                );
            }
        }
        if self.workload.client_retries > CLIENT_RETRIES_MAX {
            bad(
                "workload.client_retries".into(),
                format!("at most {CLIENT_RETRIES_MAX}"),
            );
        }
        if self.workload.entries.iter().all(|e| e.weight == 0) {
            bad(
                "workload.entries".into(),
                "need at least one entry with a positive weight".into(),
            );
        }
        for (e, entry) in self.workload.entries.iter().enumerate() {
            if let Err(problem) = self.operation(&entry.service, &entry.operation) {
                bad(format!("workload.entries[{e}].service"), problem);
            }
        }
        if self.faults.len() > FAULTS_MAX {
            bad("faults".into(), format!("at most {FAULTS_MAX} faults"));
        }
        for (f, fault) in self.faults.iter().enumerate() {
            let at = format!("faults[{f}]");
            match self.services.iter().find(|s| s.name == fault.service) {
                None => bad(
                    format!("{at}.service"),
                    format!("no service is named `{}`", fault.service),
                ),
                Some(s) => {
                    if fault.instance.is_some_and(|i| i >= s.instances) {
                        bad(
                            format!("{at}.instance"),
                            format!("`{}` has {} instances", s.name, s.instances),
                        );
                    }
                }
            }
            if fault.from_ms >= fault.until_ms {
                bad(format!("{at}.until_ms"), "must be after from_ms".into());
            }
            if let FaultEffect::Latency { extra_ms } = fault.effect {
                if extra_ms > EXTRA_LATENCY_MS_MAX {
                    bad(
                        format!("{at}.effect.extra_ms"),
                        format!("at most {EXTRA_LATENCY_MS_MAX}"),
                    );
                }
            }
            if let FaultEffect::Partition { peer } = &fault.effect {
                if !self.services.iter().any(|s| &s.name == peer) {
                    bad(
                        format!("{at}.effect.peer"),
                        format!("no service is named `{peer}`"),
                    );
                }
            }
            if let FaultEffect::TrafficFlood { multiplier } = fault.effect {
                if !(multiplier.is_finite() && (1.0..=100.0).contains(&multiplier)) {
                    bad(
                        format!("{at}.effect.multiplier"),
                        "must be between 1 and 100".into(),
                    );
                }
            }
            if let FaultEffect::ClockSkew {
                offset_ms,
                drift_ppm,
            } = fault.effect
            {
                if offset_ms.unsigned_abs() > 3_600_000 || drift_ppm.unsigned_abs() > 100_000 {
                    bad(
                        format!("{at}.effect"),
                        "offset_ms within an hour and drift_ppm within 100000".into(),
                    );
                }
            }
            if let FaultEffect::LocalTimeLogs { zone_minutes } = fault.effect {
                if zone_minutes.unsigned_abs() > 14 * 60 {
                    bad(
                        format!("{at}.effect.zone_minutes"),
                        "must be within -840..=840 (UTC-14 to UTC+14)".into(),
                    );
                }
            }
            if let FaultEffect::ConnectionLeak { rate } = fault.effect {
                if !(0.0..=1.0).contains(&rate) {
                    bad(
                        format!("{at}.effect.rate"),
                        "must be between 0 and 1".into(),
                    );
                }
                if self
                    .services
                    .iter()
                    .any(|s| s.name == fault.service && s.pool.is_none())
                {
                    bad(
                        format!("{at}.service"),
                        format!("`{}` has no pool to leak from", fault.service),
                    );
                }
            }
            if let FaultEffect::MemoryLeak { mb_per_s } = fault.effect {
                if mb_per_s > ALLOC_MB_PER_S_MAX {
                    bad(
                        format!("{at}.effect.mb_per_s"),
                        format!("at most {ALLOC_MB_PER_S_MAX}"),
                    );
                }
                if self
                    .services
                    .iter()
                    .any(|s| s.name == fault.service && s.gc.is_none())
                {
                    bad(
                        format!("{at}.service"),
                        format!("`{}` has no gc runtime to leak in", fault.service),
                    );
                }
            }
            if let FaultEffect::LeaseExpiry { pause_ms } = fault.effect {
                if pause_ms == 0 || pause_ms > LEASE_MS_MAX {
                    bad(
                        format!("{at}.effect.pause_ms"),
                        format!("must be 1..={LEASE_MS_MAX}"),
                    );
                }
                let target = self.services.iter().find(|s| s.name == fault.service);
                if target.is_some_and(|s| s.gc.is_none()) {
                    bad(
                        format!("{at}.service"),
                        format!("`{}` has no gc runtime to pause", fault.service),
                    );
                } else if target.is_some_and(|s| s.operations.iter().all(|o| o.lock.is_none())) {
                    bad(
                        format!("{at}.service"),
                        format!("`{}` takes no lock", fault.service),
                    );
                }
            }
            let target = self.services.iter().find(|s| s.name == fault.service);
            if fault.effect == FaultEffect::CacheOutage
                && !self.services.iter().any(|s| {
                    s.operations.iter().flat_map(|o| &o.steps).any(
                        |step| matches!(step, Step::CacheGet { service, .. } if service == &fault.service),
                    )
                })
            {
                bad(
                    format!("{at}.service"),
                    format!("no cache_get step reads from `{}`", fault.service),
                );
            }
            if fault.effect == FaultEffect::CacheOutage && fault.instance.is_some() {
                bad(
                    format!("{at}.instance"),
                    "a cache outage takes the whole cache (one keyspace): leave it out".into(),
                );
            }
            if fault.effect == FaultEffect::ConsumerStall {
                if target.is_some_and(|s| s.consumer.is_none()) {
                    bad(
                        format!("{at}.service"),
                        format!("`{}` has no consumer to stall", fault.service),
                    );
                }
                // The backlog drains after the window: keep the window inside a bounded run.
                if fault.until_ms > DURATION_MS_MAX {
                    bad(
                        format!("{at}.until_ms"),
                        format!("at most {DURATION_MS_MAX} for a consumer stall"),
                    );
                }
            }
            if let FaultEffect::ErrorRate { rate } = fault.effect {
                if !(0.0..=1.0).contains(&rate) {
                    bad(
                        format!("{at}.effect.rate"),
                        "must be between 0 and 1".into(),
                    );
                }
            }
        }
        if errors.is_empty() {
            if let Some(cycle) = self.call_cycle() {
                errors.push(ScenarioError {
                    field: "services".into(),
                    problem: format!("calls form a cycle: {cycle}"),
                });
            } else if self.call_depth() > CALL_DEPTH_MAX {
                errors.push(ScenarioError {
                    field: "services".into(),
                    problem: format!("calls nest deeper than {CALL_DEPTH_MAX}"),
                });
            } else {
                // A consumer that published would feed queues from queues, maybe forever.
                for (s, service) in self.services.iter().enumerate() {
                    if let Some(c) = &service.consumer {
                        if self.publishes(&service.name, &c.operation, CALL_DEPTH_MAX + 1) {
                            errors.push(ScenarioError {
                                field: format!("services[{s}].consumer.operation"),
                                problem: "a consumer's operation may not publish, itself or through its calls".into(),
                            });
                        }
                    }
                }
            }
        }
        errors
    }

    /// Checks what is particular to cache and queue steps: key space, TTL, the steps a miss
    /// runs, and the topic.
    fn check_store_step(
        &self,
        at: &str,
        step: &Step,
        op: &OperationSpec,
        index: usize,
        bad: &mut impl FnMut(String, String),
    ) {
        match step {
            Step::CacheGet {
                keys,
                ttl_ms,
                miss_steps,
                ..
            } => {
                if *keys == 0 || *keys > CACHE_KEYS_MAX {
                    bad(
                        format!("{at}.keys"),
                        format!("must be 1..={CACHE_KEYS_MAX}"),
                    );
                }
                if *ttl_ms == 0 || *ttl_ms > CACHE_TTL_MS_MAX {
                    bad(
                        format!("{at}.ttl_ms"),
                        format!("must be 1..={CACHE_TTL_MS_MAX}"),
                    );
                }
                let after = &op.steps[index + 1..];
                if usize::from(*miss_steps) > after.len() {
                    bad(
                        format!("{at}.miss_steps"),
                        format!("only {} steps follow this one", after.len()),
                    );
                } else if after[..usize::from(*miss_steps)]
                    .iter()
                    .any(|s| matches!(s, Step::CacheGet { .. }))
                {
                    bad(
                        format!("{at}.miss_steps"),
                        "the steps a miss runs may not hold another cache_get".into(),
                    );
                }
            }
            Step::Publish { topic, .. } if topic.is_empty() => {
                bad(format!("{at}.topic"), "must not be empty".into());
            }
            _ => {}
        }
    }

    /// Whether an operation publishes to a queue, itself or through what it calls.
    fn publishes(&self, service: &str, operation: &str, budget: usize) -> bool {
        let Ok(op) = self.operation(service, operation) else {
            return false;
        };
        budget > 0
            && (op.steps.iter().any(|s| matches!(s, Step::Publish { .. }))
                || self
                    .callees(op)
                    .any(|(s, o)| self.publishes(s, o, budget - 1)))
    }

    /// Finds an operation by service and name.
    pub fn operation(&self, service: &str, operation: &str) -> Result<&OperationSpec, String> {
        let s = self
            .services
            .iter()
            .find(|s| s.name == service)
            .ok_or_else(|| format!("no service is named `{service}`"))?;
        s.operations
            .iter()
            .find(|o| o.name == operation)
            .ok_or_else(|| format!("`{service}` has no operation `{operation}`"))
    }

    /// Calls one operation may make, compensations included, as (service, operation) pairs.
    fn callees<'a>(&'a self, op: &'a OperationSpec) -> impl Iterator<Item = (&'a str, &'a str)> {
        op.steps.iter().flat_map(|s| {
            s.calls()
                .into_iter()
                .chain(s.compensation())
                .map(|(s, o, _)| (s, o))
        })
    }

    /// A cycle of operation calls, written `a:x -> b:y -> a:x`, if there is one.
    fn call_cycle(&self) -> Option<String> {
        let mut path: Vec<(&str, &str)> = Vec::new();
        for s in &self.services {
            for o in &s.operations {
                if let Some(cycle) = self.find_cycle((&s.name, &o.name), &mut path) {
                    return Some(cycle);
                }
            }
        }
        None
    }

    fn find_cycle<'a>(
        &'a self,
        node: (&'a str, &'a str),
        path: &mut Vec<(&'a str, &'a str)>,
    ) -> Option<String> {
        if let Some(start) = path.iter().position(|p| *p == node) {
            let mut names: Vec<String> = path[start..]
                .iter()
                .map(|(s, o)| format!("{s}:{o}"))
                .collect();
            names.push(format!("{}:{}", node.0, node.1));
            return Some(names.join(" -> "));
        }
        if path.len() > CALL_DEPTH_MAX + 1 {
            return None; // deep enough; call_depth reports it
        }
        let op = self.operation(node.0, node.1).ok()?;
        path.push(node);
        for callee in self.callees(op) {
            if let Some(cycle) = self.find_cycle(callee, path) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }

    /// The longest chain of nested calls from any operation (no cycles assumed).
    fn call_depth(&self) -> usize {
        fn depth(s: &Scenario, node: (&str, &str), budget: usize) -> usize {
            if budget == 0 {
                return 1;
            }
            let Ok(op) = s.operation(node.0, node.1) else {
                return 0;
            };
            s.callees(op)
                .map(|c| 1 + depth(s, c, budget - 1))
                .max()
                .unwrap_or(0)
        }
        self.services
            .iter()
            .flat_map(|s| {
                s.operations
                    .iter()
                    .map(move |o| depth(self, (&s.name, &o.name), CALL_DEPTH_MAX + 1))
            })
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_calls_changes_one_edge_and_counts_it() {
        let mut scenario = crate::mesh::default_mesh(50.0, 1_000);
        let changed = scenario.edit_calls("orders", "payments", |p| p.retries = 7);
        assert_eq!(changed, 1);
        let retries: Vec<u32> = scenario
            .services
            .iter()
            .flat_map(|s| &s.operations)
            .flat_map(|o| &o.steps)
            .filter_map(|step| match step {
                Step::Call {
                    service, policy, ..
                } if service == "payments" => Some(policy.retries),
                _ => None,
            })
            .collect();
        assert_eq!(retries, vec![7]);
        assert_eq!(
            scenario.edit_calls("payments", "orders", |p| p.retries = 0),
            0
        );
    }
}
