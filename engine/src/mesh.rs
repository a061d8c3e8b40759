//! The default mesh every lesson starts from: a gateway in front of auth, orders, payments,
//! inventory and notifications, backed by a database, a read-through cache and a message queue
//! (orders publishes `order.created`; notifications consumes it and sends the email). Latencies
//! are typical of a small production system; policies are sensible defaults to break.

use crate::scenario::{
    Balancer, CallPolicy, ConsumerSpec, DataEffect, Entry, GcSpec, LockSpec, LogLevel,
    OperationSpec, PoolSpec, Popularity, Scenario, ServiceSpec, Step, Workload,
};

fn work(p50_ms: f64, p99_ms: f64) -> Step {
    Step::Work { p50_ms, p99_ms }
}

fn call(service: &str, operation: &str, timeout_ms: u64, retries: u32) -> Step {
    Step::Call {
        service: service.into(),
        operation: operation.into(),
        policy: CallPolicy {
            timeout_ms: Some(timeout_ms),
            retries,
            ..CallPolicy::default()
        },
        compensate: None,
    }
}

/// A read-through lookup in the cache: a hit skips the next `miss_steps` steps.
fn cache_get(keys: u32, ttl_ms: u64, miss_steps: u16) -> Step {
    Step::CacheGet {
        service: "cache".into(),
        operation: "get".into(),
        set_operation: "set".into(),
        keys,
        popularity: Popularity::Zipf,
        ttl_ms,
        miss_steps,
        policy: CallPolicy {
            timeout_ms: Some(50),
            ..CallPolicy::default()
        },
    }
}

fn publish(topic: &str) -> Step {
    Step::Publish {
        service: "queue".into(),
        operation: "publish".into(),
        topic: topic.into(),
        policy: CallPolicy {
            timeout_ms: Some(100),
            retries: 2,
            ..CallPolicy::default()
        },
    }
}

fn service(
    name: &str,
    instances: u16,
    workers: u16,
    operations: Vec<(&str, Vec<Step>)>,
) -> ServiceSpec {
    ServiceSpec {
        name: name.into(),
        instances,
        workers,
        queue_limit: u32::from(workers) * 4,
        balancer: Balancer::RoundRobin,
        log_level: LogLevel::Info,
        pool: None,
        gc: None,
        consumer: None,
        db_system: None,
        log_min_duration_statement_ms: None,
        operations: operations
            .into_iter()
            .map(|(name, steps)| OperationSpec {
                effect: match name {
                    "charge" => Some(DataEffect::Charge),
                    // Plenty of stock, guarded by a version check: the healthy setting.
                    "reserve" => Some(DataEffect::Reserve {
                        initial_stock: 1_000_000,
                        optimistic_locking: true,
                    }),
                    "release" => Some(DataEffect::Release),
                    "insert" => Some(DataEffect::Insert),
                    "delete" => Some(DataEffect::Delete),
                    "refund" => Some(DataEffect::Refund),
                    _ => None,
                },
                name: name.into(),
                steps,
                every_ms: None,
                lock: None,
            })
            .collect(),
    }
}

/// The caller sends an idempotency key on this call.
fn with_idempotency_key(mut step: Step) -> Step {
    if let Step::Call { policy, .. } = &mut step {
        policy.idempotency_key = true;
    }
    step
}

/// In a saga, `undo` (an operation of the same callee) undoes this call when a later step fails.
fn compensated_by(mut step: Step, undo: &str) -> Step {
    if let Step::Call { compensate, .. } = &mut step {
        *compensate = Some(undo.into());
    }
    step
}

/// Gives a service a pool of `size` database connections (100 ms to get one).
fn with_pool(mut service: ServiceSpec, size: u16) -> ServiceSpec {
    service.pool = Some(PoolSpec {
        target: "database".into(),
        size,
        acquire_timeout_ms: 100,
    });
    service
}

/// Gives a service a managed runtime: a 512 MB heap with 64 MB live, filled at 64 MB/s, so each
/// instance collects every 7 s or so with a pause of about 3 ms.
fn with_gc(mut service: ServiceSpec) -> ServiceSpec {
    service.gc = Some(GcSpec {
        heap_mb: 512,
        live_mb: 64,
        alloc_mb_per_s: 64,
        pause_ms_per_gb: 40,
        restart_ms: 5_000,
    });
    service
}

/// Makes `settle` a job each instance runs every 3 s, guarded by the `settlement` lock: a
/// 1 s lease, and storage that checks fencing tokens (the safe setting).
fn with_settlement(mut service: ServiceSpec) -> ServiceSpec {
    for op in service.operations.iter_mut().filter(|o| o.name == "settle") {
        op.every_ms = Some(3_000);
        op.lock = Some(LockSpec {
            name: "settlement".into(),
            lease_ms: 1_000,
            fencing: true,
        });
    }
    service
}

/// The default mesh under `rate_per_s` requests a second for `duration_ms`, with no faults.
pub fn default_mesh(rate_per_s: f64, duration_ms: u64) -> Scenario {
    Scenario {
        name: "default mesh".into(),
        duration_ms,
        services: vec![
            service(
                "gateway",
                2,
                64,
                vec![
                    (
                        "POST /orders",
                        vec![
                            work(0.3, 1.0),
                            call("auth", "verify", 300, 1),
                            call("orders", "create", 2_000, 0),
                        ],
                    ),
                    (
                        "GET /orders/{id}",
                        vec![
                            work(0.2, 0.8),
                            call("auth", "verify", 300, 1),
                            call("orders", "get", 500, 1),
                        ],
                    ),
                ],
            ),
            service(
                "auth",
                2,
                32,
                vec![(
                    "verify",
                    vec![
                        // Sessions: a miss reads the session row.
                        cache_get(2_000, 60_000, 1),
                        call("database", "select", 200, 0),
                        work(0.5, 2.0),
                    ],
                )],
            ),
            with_gc(with_pool(
                service(
                    "orders",
                    3,
                    32,
                    vec![
                        (
                            // A saga: save the order, reserve its stock, charge for it; a
                            // failed step undoes the ones before it, latest first.
                            "create",
                            vec![
                                work(1.0, 4.0),
                                compensated_by(call("database", "insert", 200, 0), "delete"),
                                compensated_by(call("inventory", "reserve", 300, 1), "release"),
                                compensated_by(
                                    with_idempotency_key(call("payments", "charge", 1_000, 0)),
                                    "refund",
                                ),
                                publish("order.created"),
                            ],
                        ),
                        (
                            "get",
                            vec![
                                cache_get(1_000, 30_000, 1),
                                call("database", "select", 200, 1),
                                work(0.3, 1.0),
                            ],
                        ),
                    ],
                ),
                10,
            )),
            with_settlement(with_gc(with_pool(
                service(
                    "payments",
                    2,
                    16,
                    vec![
                        (
                            "charge",
                            vec![work(40.0, 180.0), call("database", "insert", 200, 0)],
                        ),
                        (
                            "refund",
                            vec![work(20.0, 90.0), call("database", "insert", 200, 0)],
                        ),
                        (
                            "settle",
                            vec![work(20.0, 60.0), call("database", "insert", 200, 0)],
                        ),
                    ],
                ),
                8,
            ))),
            with_pool(
                service(
                    "inventory",
                    2,
                    16,
                    vec![
                        (
                            "reserve",
                            vec![
                                call("database", "select", 200, 0),
                                work(0.5, 2.0),
                                call("database", "update", 200, 0),
                            ],
                        ),
                        (
                            "release",
                            vec![work(0.5, 2.0), call("database", "update", 200, 0)],
                        ),
                    ],
                ),
                8,
            ),
            // Emails go out from the queue: four consumers take each order.created message; a
            // failed one is redelivered after 0.5 s, 1 s, 2 s, 4 s, then dead-lettered.
            ServiceSpec {
                consumer: Some(ConsumerSpec {
                    queue: "queue".into(),
                    topic: "order.created".into(),
                    operation: "send".into(),
                    concurrency: 4,
                    max_deliveries: ConsumerSpec::default_max_deliveries(),
                    redelivery_delay_ms: ConsumerSpec::default_redelivery_delay_ms(),
                }),
                ..service(
                    "notifications",
                    1,
                    16,
                    vec![("send", vec![work(0.5, 2.0), work(20.0, 120.0)])],
                )
            },
            ServiceSpec {
                db_system: Some("postgresql".into()),
                ..service(
                    "database",
                    1,
                    64,
                    vec![
                        ("select", vec![work(2.0, 15.0)]),
                        ("insert", vec![work(3.0, 20.0)]),
                        ("update", vec![work(3.0, 25.0)]),
                        ("delete", vec![work(3.0, 20.0)]),
                    ],
                )
            },
            service(
                "cache",
                1,
                128,
                vec![("get", vec![work(0.3, 2.0)]), ("set", vec![work(0.3, 2.0)])],
            ),
            service("queue", 1, 64, vec![("publish", vec![work(0.5, 3.0)])]),
        ],
        workload: Workload {
            ramps: vec![],
            bursts: vec![],
            users: 0,
            client_retries: 0,
            rate_per_s,
            entries: vec![
                Entry {
                    service: "gateway".into(),
                    operation: "POST /orders".into(),
                    weight: 3,
                },
                Entry {
                    service: "gateway".into(),
                    operation: "GET /orders/{id}".into(),
                    weight: 7,
                },
            ],
        },
        faults: vec![],
    }
}
