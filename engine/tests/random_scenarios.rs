//! Property tests over random scenarios: any scenario that validates runs to the end without a
//! panic (the engine asserts its own invariants as it goes: time never runs back, no worker or
//! bulkhead limit is exceeded, breaker transitions are legal), twice to the same digest, and
//! its traces hang together, as the index files them too. Every failure prints the scenario
//! and seed that caused it.

use faultline_engine::SimTime;
use faultline_engine::Simulation;
use faultline_engine::edge::{BreakerPolicy, BulkheadPolicy};
use faultline_engine::query::{TraceQuery, search_traces};
use faultline_engine::scenario::{
    Balancer, CallPolicy, ConsumerSpec, DataEffect, Entry, FaultEffect, FaultSpec, GcSpec,
    LockSpec, LogLevel, OperationSpec, PoolSpec, Popularity, Scenario, ServiceRole, ServiceSpec,
    Step, Workload,
};
use faultline_engine::telemetry::{Level, SpanId, SpanKind, SpanStatus, Telemetry, TraceId};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// A call policy with every knob in reach, including the dangerous settings. Its breaker and
/// bulkhead are left out here: `guards` draws them per call edge.
fn policy() -> impl Strategy<Value = CallPolicy> {
    (
        prop::option::of(1u64..400),
        0u32..4,
        0u64..50,
        any::<bool>(),
    )
        .prop_map(|(timeout_ms, retries, backoff, jitter)| CallPolicy {
            timeout_ms,
            retries,
            backoff_base_ms: backoff,
            backoff_max_ms: backoff * 8 + 1,
            jitter,
            idempotency_key: jitter,
            propagate_context: retries != 2,
            retry_budget: (retries > 1).then_some(0.2),
            breaker: None,
            bulkhead: None,
        })
}

/// The breaker and bulkhead one caller keeps for one callee: a caller instance keeps one of
/// each per callee operation, so every call, lookup, publish and compensation from one service
/// to another goes out under the same pair (`guard_edges`).
type Guards = (Option<BreakerPolicy>, Option<BulkheadPolicy>);

fn guards() -> impl Strategy<Value = Guards> {
    (
        prop::option::of((1u32..6, 0.0f64..1.0, 1u64..3_000, 1u32..3)),
        prop::option::of((1u32..5, 0u32..5)),
    )
        .prop_map(|(breaker, bulkhead)| {
            (
                breaker.map(|(n, rate, open_ms, probes)| BreakerPolicy {
                    consecutive_failures: n,
                    failure_rate: rate,
                    window_ms: 2_000,
                    min_requests: 5,
                    open_ms,
                    half_open_probes: probes,
                }),
                bulkhead.map(|(max_concurrent, max_queue)| BulkheadPolicy {
                    max_concurrent,
                    max_queue,
                }),
            )
        })
}

/// Steps whose calls to service `sN` all carry `guards[N]`.
fn guard_edges(mut steps: Vec<Step>, guards: &[Guards]) -> Vec<Step> {
    for step in &mut steps {
        if let Step::Call {
            service, policy, ..
        }
        | Step::CacheGet {
            service, policy, ..
        }
        | Step::Publish {
            service, policy, ..
        } = step
        {
            let target: usize = service[1..].parse().expect("services are named sN");
            (policy.breaker, policy.bulkhead) = guards[target].clone();
        }
    }
    steps
}

/// A step of application `s` out of `apps` (then come the database `s{apps}`, the cache
/// `s{apps + 1}` and the broker `s{apps + 2}`): work, or a call to a later application or the
/// database (so calls never cycle), a cache lookup, or a publish (but for the last
/// application, which consumes what the others publish).
fn step(s: usize, apps: usize) -> impl Strategy<Value = Step> {
    let work = (0.0f64..5.0, 0.0f64..30.0).prop_map(|(a, b)| Step::Work {
        p50_ms: a,
        p99_ms: a + b,
    });
    let (database, cache, broker) = (apps, apps + 1, apps + 2);
    let call =
        (s + 1..=database, policy(), any::<bool>()).prop_map(|(target, policy, saga)| Step::Call {
            service: format!("s{target}"),
            operation: "op".into(),
            policy,
            compensate: saga.then(|| "undo".into()),
        });
    let lookup = (1u32..60, 1u64..600, 0u16..3, any::<bool>(), policy()).prop_map(
        move |(keys, ttl_ms, miss_steps, zipf, policy)| Step::CacheGet {
            service: format!("s{cache}"),
            operation: "op".into(),
            set_operation: "op".into(),
            keys,
            popularity: if zipf {
                Popularity::Zipf
            } else {
                Popularity::Uniform
            },
            ttl_ms,
            miss_steps,
            policy,
        },
    );
    if s + 1 >= apps {
        return prop_oneof![work, call, lookup].boxed();
    }
    prop_oneof![
        work,
        call,
        lookup,
        policy().prop_map(move |policy| Step::Publish {
            service: format!("s{broker}"),
            operation: "op".into(),
            topic: "t".into(),
            policy,
        }),
    ]
    .boxed()
}

/// Steps whose cache lookups skip no more steps than follow them, and no other lookup.
fn fit_miss_steps(mut steps: Vec<Step>) -> Vec<Step> {
    for i in 0..steps.len() {
        let after = &steps[i + 1..];
        let room = after
            .iter()
            .position(|s| matches!(s, Step::CacheGet { .. }))
            .unwrap_or(after.len()) as u16;
        if let Step::CacheGet { miss_steps, .. } = &mut steps[i] {
            *miss_steps = (*miss_steps).min(room);
        }
    }
    steps
}

fn fault(n: usize) -> impl Strategy<Value = FaultSpec> {
    let effect = prop_oneof![
        (0u64..300).prop_map(|extra_ms| FaultEffect::Latency { extra_ms }),
        (0.0f64..1.0).prop_map(|rate| FaultEffect::ErrorRate { rate }),
        Just(FaultEffect::Crash),
        (0..n).prop_map(|p| FaultEffect::Partition {
            peer: format!("s{p}")
        }),
        (1.0f64..5.0).prop_map(|multiplier| FaultEffect::TrafficFlood { multiplier }),
        Just(FaultEffect::LogLevelWarn),
        Just(FaultEffect::CardNumbersLogged),
        Just(FaultEffect::ContextDropped),
        Just(FaultEffect::NonIdempotentRetry),
        Just(FaultEffect::RetryStorm),
        Just(FaultEffect::StockRace),
        Just(FaultEffect::SagaNoCompensation),
        (-500i64..500, -1_000i64..1_000).prop_map(|(offset_ms, drift_ppm)| {
            FaultEffect::ClockSkew {
                offset_ms,
                drift_ppm,
            }
        }),
        (-840i16..840).prop_map(|zone_minutes| FaultEffect::LocalTimeLogs { zone_minutes }),
        (0u32..300).prop_map(|mb_per_s| FaultEffect::MemoryLeak { mb_per_s }),
        (1u64..800).prop_map(|pause_ms| FaultEffect::LeaseExpiry { pause_ms }),
        Just(FaultEffect::CacheOutage),
        Just(FaultEffect::ConsumerStall),
    ];
    (
        0..n,
        prop::option::of(0u16..2),
        0u64..1_500,
        1u64..1_500,
        effect,
    )
        .prop_map(move |(s, instance, from, len, effect)| FaultSpec {
            service: format!("s{s}"),
            instance,
            from_ms: from,
            until_ms: from + len,
            effect,
        })
}

/// A managed runtime small and busy enough to collect, thrash and run out of memory in a run.
fn gc() -> impl Strategy<Value = Option<GcSpec>> {
    prop::option::weighted(
        0.7,
        (4u32..64, 0u32..90, 1u32..400, 0u32..3_000, 1u64..600).prop_map(
            |(heap_mb, live_percent, alloc_mb_per_s, pause_ms_per_gb, restart_ms)| GcSpec {
                heap_mb,
                live_mb: heap_mb * live_percent / 100,
                alloc_mb_per_s,
                pause_ms_per_gb,
                restart_ms,
            },
        ),
    )
}

/// Points each fault that needs something to act on (a cache, a consumer, a runtime, a lock)
/// at the first service from the one drawn on that has it, and leaves the fault out when no
/// service has; an instance drawn past a service's count is its last one.
fn aim(faults: Vec<FaultSpec>, services: &[ServiceSpec]) -> Vec<FaultSpec> {
    let caches: BTreeSet<&str> = services
        .iter()
        .flat_map(|s| &s.operations)
        .flat_map(|o| &o.steps)
        .filter_map(|s| match s {
            Step::CacheGet { service, .. } => Some(service.as_str()),
            _ => None,
        })
        .collect();
    let fits = |effect: &FaultEffect, s: &ServiceSpec| match effect {
        FaultEffect::CacheOutage => caches.contains(s.name.as_str()),
        FaultEffect::ConsumerStall => s.consumer.is_some(),
        FaultEffect::MemoryLeak { .. } => s.gc.is_some(),
        FaultEffect::LeaseExpiry { .. } => {
            s.gc.is_some() && s.operations.iter().any(|o| o.lock.is_some())
        }
        _ => true,
    };
    let n = services.len();
    faults
        .into_iter()
        .filter_map(|mut f| {
            let drawn = services.iter().position(|s| s.name == f.service)?;
            let s = (drawn..drawn + n)
                .map(|i| &services[i % n])
                .find(|s| fits(&f.effect, s))?;
            f.service = s.name.clone();
            f.instance = match f.effect {
                FaultEffect::CacheOutage => None,
                _ => f.instance.map(|i| i.min(s.instances - 1)),
            };
            Some(f)
        })
        .collect()
}

/// Application `s` of `apps`, with `n` services in all (the infrastructure last).
fn application(s: usize, apps: usize, n: usize) -> impl Strategy<Value = ServiceSpec> {
    (
        1u16..3,
        1u16..8,
        0u32..8,
        prop::collection::vec(step(s, apps), 1..4).prop_map(fit_miss_steps),
        any::<bool>(),
        0usize..3,
        gc(),
        prop::option::of(10u64..700),
        prop::option::of((0u8..2, 1u64..500)),
        1u16..4,
        prop::collection::vec(guards(), n),
    )
        .prop_map(
            move |(
                instances,
                workers,
                queue_limit,
                steps,
                pooled,
                balancer,
                gc,
                every_ms,
                lock,
                consumers,
                guards,
            )| {
                let steps = guard_edges(steps, &guards);
                let last = s + 1 == apps;
                ServiceSpec {
                    name: format!("s{s}"),
                    instances,
                    workers,
                    queue_limit,
                    operations: vec![
                        OperationSpec {
                            name: "op".into(),
                            steps,
                            effect: last.then_some(DataEffect::Charge),
                            every_ms,
                            // Two lock names, so services share one sometimes; all that take
                            // one agree on its fencing.
                            lock: lock.map(|(name, lease_ms)| LockSpec {
                                name: format!("lock{name}"),
                                lease_ms,
                                fencing: name == 0,
                            }),
                        },
                        // What a saga calls to undo `op`.
                        OperationSpec {
                            name: "undo".into(),
                            steps: vec![Step::Work {
                                p50_ms: 1.0,
                                p99_ms: 5.0,
                            }],
                            effect: last.then_some(DataEffect::Refund),
                            every_ms: None,
                            lock: None,
                        },
                    ],
                    log_level: [LogLevel::Debug, LogLevel::Info, LogLevel::Warn][balancer],
                    balancer: [
                        Balancer::RoundRobin,
                        Balancer::Random,
                        Balancer::LeastOutstanding,
                    ][balancer],
                    // To the next service: an application, or the database.
                    pool: pooled.then(|| PoolSpec {
                        target: format!("s{}", s + 1),
                        size: 2,
                        acquire_timeout_ms: 20,
                    }),
                    gc,
                    // The last application (which never publishes) consumes topic `t` of the
                    // broker.
                    consumer: (last && apps >= 2 && pooled).then(|| ConsumerSpec {
                        queue: format!("s{}", apps + 2),
                        topic: "t".into(),
                        operation: "op".into(),
                        concurrency: consumers,
                        // Derived, to keep the tuple small: from one delivery (dead-lettered at
                        // once) to four.
                        max_deliveries: 1 + consumers % 4,
                        redelivery_delay_ms: u64::from(consumers) * 40,
                    }),
                    db_system: None,
                    log_min_duration_statement_ms: None,
                }
            },
        )
}

/// Infrastructure service `s` (the database, the cache or the broker, by `kind` 0, 1, 2):
/// work steps only; the database inserts a row and deletes it to undo, and logs statements
/// slower than a threshold low enough to be met.
fn infrastructure(s: usize, kind: usize) -> impl Strategy<Value = ServiceSpec> {
    (
        1u16..3,
        1u16..16,
        0u32..8,
        (0.0f64..3.0, 0.0f64..20.0),
        gc(),
        prop::option::of(0u64..40),
        0usize..3,
    )
        .prop_map(
            move |(instances, workers, queue_limit, (p50, spread), gc, slow_ms, level)| {
                let work = vec![Step::Work {
                    p50_ms: p50,
                    p99_ms: p50 + spread,
                }];
                let database = kind == 0;
                ServiceSpec {
                    name: format!("s{s}"),
                    instances,
                    workers,
                    queue_limit,
                    operations: vec![
                        OperationSpec {
                            name: "op".into(),
                            steps: work.clone(),
                            effect: database.then_some(DataEffect::Insert),
                            every_ms: None,
                            lock: None,
                        },
                        OperationSpec {
                            name: "undo".into(),
                            steps: work,
                            effect: database.then_some(DataEffect::Delete),
                            every_ms: None,
                            lock: None,
                        },
                    ],
                    balancer: Balancer::RoundRobin,
                    log_level: [LogLevel::Debug, LogLevel::Info, LogLevel::Warn][level],
                    pool: None,
                    gc,
                    consumer: None,
                    db_system: database.then(|| "postgresql".into()),
                    log_min_duration_statement_ms: slow_ms.filter(|_| database),
                }
            },
        )
}

/// Two to four applications (`s0` takes the outside requests), then a database, a cache and a
/// broker.
/// Whether some call in the scenario waits for its answer with no timeout.
fn scenario_has_call_without_timeout(scenario: &Scenario) -> bool {
    scenario.services.iter().any(|service| {
        service.operations.iter().any(|operation| {
            operation
                .steps
                .iter()
                .flat_map(|step| step.calls())
                .any(|(_, _, policy)| policy.timeout_ms.is_none())
        })
    })
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (2usize..5)
        .prop_flat_map(|apps| {
            let n = apps + 3;
            let mut services: Vec<BoxedStrategy<ServiceSpec>> =
                (0..apps).map(|s| application(s, apps, n).boxed()).collect();
            services.extend((0..3).map(|kind| infrastructure(apps + kind, kind).boxed()));
            (
                services,
                prop::collection::vec(fault(n), 0..4),
                5.0f64..200.0,
            )
        })
        .prop_map(|(services, faults, rate_per_s)| Scenario {
            faults: aim(faults, &services),
            name: "random".into(),
            duration_ms: 1_500,
            services,
            workload: Workload {
                ramps: vec![faultline_engine::scenario::Ramp {
                    from_ms: 200,
                    until_ms: 700,
                    to_rate_per_s: rate_per_s / 2.0,
                }],
                bursts: vec![faultline_engine::scenario::Burst {
                    at_ms: 900,
                    requests: 20,
                }],
                users: 50,
                client_retries: 1,
                rate_per_s,
                entries: vec![Entry {
                    service: "s0".into(),
                    operation: "op".into(),
                    weight: 1,
                }],
            },
        })
}

/// Trace search by tags that depend on how spans end (status, status code, error type) finds
/// the traces a scan of every span finds.
fn index_agrees_with_a_scan(t: &Telemetry, seed: u64) -> Result<(), TestCaseError> {
    for (key, value) in [
        ("error", "true"),
        ("http.response.status_code", "200"),
        ("http.response.status_code", "503"),
        ("error.type", "timeout"),
    ] {
        let q = TraceQuery {
            tags: vec![(key.to_string(), value.to_string())],
            limit: u32::MAX,
            ..TraceQuery::default()
        };
        let found: BTreeSet<TraceId> = search_traces(t, &q).iter().map(|r| r.trace_id).collect();
        let scanned: BTreeSet<TraceId> = t
            .spans
            .iter()
            .filter(|s| match key {
                "error" => s.status == SpanStatus::Error,
                _ => t
                    .attributes(s)
                    .iter()
                    .any(|(k, v)| t.text(*k) == key && t.value_text(v) == value),
            })
            .map(|s| s.trace_id)
            .collect();
        prop_assert_eq!(found, scanned, "seed {}: {}={}", seed, key, value);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_valid_scenario_runs_deterministically_with_coherent_traces(scenario in scenario(), seed in any::<u64>()) {
        // The generator aims to validate (well over 99% do); skip the odd one that does not.
        prop_assume!(scenario.validate().is_empty());
        // Played in steps with searches between them, as the app plays a run live: the index
        // (caught up at each search) must agree with a scan mid-run and at the end.
        let mut stepped = Simulation::new(scenario.clone(), seed).expect("validated");
        for quarter in 1..4 {
            stepped.step_until(SimTime::from_ms(scenario.duration_ms * quarter / 4));
            index_agrees_with_a_scan(stepped.telemetry(), seed)?;
        }
        let first = stepped.run();
        index_agrees_with_a_scan(&first, seed)?;
        let second = Simulation::new(scenario.clone(), seed).expect("validated").run();
        prop_assert_eq!(first.digest_hex(), second.digest_hex(), "seed {}", seed);

        // Context is lost by the fault, or by a policy that does not propagate it.
        let dropped_context = scenario.faults.iter().any(|f| f.effect == FaultEffect::ContextDropped)
            || scenario.services.iter().flat_map(|s| &s.operations).flat_map(|o| &o.steps).any(|step| {
                matches!(step, Step::Call { policy, .. } if !policy.propagate_context)
            });
        let mut by_trace: BTreeMap<_, BTreeSet<SpanId>> = BTreeMap::new();
        for s in &first.spans {
            by_trace.entry(s.trace_id).or_default().insert(s.span_id);
        }
        for s in &first.spans {
            if let Some(end) = s.end() {
                prop_assert!(end >= s.start, "seed {}: span ends before it starts: {:?}", seed, s);
            }
            if let Some(parent) = s.parent {
                // Without dropped context, a span's parent is always in its own trace.
                prop_assert!(dropped_context || by_trace[&s.trace_id].contains(&parent), "seed {}: orphan {:?}", seed, s);
            }
        }
        // Infrastructure writes no spans; its callers' client spans say what it is.
        let roles = scenario.roles();
        for s in &first.spans {
            prop_assert!(roles[usize::from(s.service.0)].instrumented(), "seed {}: a span of infrastructure {:?}", seed, s);
            let peer = first.attributes(s).iter().find(|(k, _)| first.text(*k) == "peer.service").map(|(_, v)| first.value_text(v));
            let attribute = |key: &str| first.attributes(s).iter().find(|(k, _)| first.text(*k) == key).map(|(_, v)| first.value_text(v));
            if let Some(peer) = peer.and_then(|p| scenario.services.iter().position(|x| x.name == p)) {
                if roles[peer] != ServiceRole::Application {
                    prop_assert!(attribute("http.response.status_code").is_none(), "seed {}: {:?}", seed, s);
                }
                if roles[peer] == ServiceRole::Database {
                    let system = attribute("db.system");
                    prop_assert_eq!(system.as_deref(), Some("postgresql"), "seed {}", seed);
                }
            }
        }
        for line in &first.logs {
            // Only a runtime's or its orchestrator's own lines (collections, out-of-memory
            // kills, crashes, restarts) and a database's (slow statements and errors) stand
            // outside any trace.
            let message = first.text(line.message);
            let runtime_line = [
                "GC pause",
                "out of memory: heap exhausted",
                "instance killed: out of memory (exit 137)",
                "instance crashed (exit 139)",
                "instance restarted",
            ]
            .contains(&message);
            let database_line = roles[usize::from(line.service.0)] == ServiceRole::Database
                && (message.starts_with("duration: ") || line.level == Level::Error);
            prop_assert!(line.trace_id.map_or(runtime_line || database_line, |t| by_trace.contains_key(&t)), "seed {}: log outside any trace", seed);
            if !roles[usize::from(line.service.0)].instrumented() {
                prop_assert!(line.trace_id.is_none() && (runtime_line || database_line), "seed {}: infrastructure wrote {:?}", seed, line);
            }
        }
        // An instance killed out of memory or crashed ends every request it held at the kill,
        // and makes no call and logs nothing of its own until it is back (requests that reach
        // it meanwhile are reset, as the connection is).
        let kills = first.logs.iter().filter(|l| {
            ["instance killed: out of memory (exit 137)", "instance crashed (exit 139)"].contains(&first.text(l.message))
        });
        for kill_line in kills {
            let (at, kill) = ((kill_line.service, kill_line.instance), &kill_line.time);
            {
                let service = &scenario.services[usize::from(at.0.0)];
                let until = match service.gc.as_ref() {
                    Some(gc) if first.text(kill_line.message).contains("out of memory") => {
                        kill.after(faultline_engine::time::Duration::from_ms(gc.restart_ms))
                    }
                    _ => {
                        // The crash's window, the longest if several crashed it at once.
                        let crash = scenario.faults.iter().filter(|f| {
                            matches!(f.effect, FaultEffect::Crash)
                                && f.service == service.name
                                && f.instance.is_none_or(|i| i == at.1)
                                && SimTime::from_ms(f.from_ms) == *kill
                        });
                        SimTime::from_ms(crash.map(|f| f.until_ms).max().expect("the crash's fault"))
                    }
                };
                let down = |t: SimTime| t > *kill && t < until;
                for s in first.spans.iter().filter(|s| (s.service, s.instance) == at) {
                    prop_assert!(s.kind != SpanKind::Client || !down(s.start), "seed {}: a call from a dead process {:?}", seed, s);
                    prop_assert!(s.start >= *kill || s.end().is_some_and(|e| e <= *kill), "seed {}: {:?} outlived its process", seed, s);
                }
                for line in first.logs.iter().filter(|l| (l.service, l.instance) == at && down(l.time)) {
                    let reset = ["request failed", "message processing failed"].contains(&first.text(line.message));
                    prop_assert!(reset, "seed {}: {:?}", seed, line);
                }
            }
        }
        // Every fault window ends, so every message published was processed or dead-lettered
        // by the end, and none is left ready or unacknowledged; the last sample is taken after
        // the last event. Unless a call has no timeout: a consumer whose call was lost (a
        // partition, a crash) waits on it for ever, as a real one would, holding its message;
        // then messages are only conserved.
        let waits_for_ever = scenario_has_call_without_timeout(&scenario);
        let mut last_queue = BTreeMap::new();
        for q in &first.metrics.queues {
            last_queue.insert((q.queue, q.topic, q.group), *q);
        }
        for ((_, _, group), q) in last_queue {
            if waits_for_ever {
                prop_assert_eq!(
                    q.published_total,
                    q.consumed_total + q.dead_lettered_total + u64::from(q.depth) + u64::from(q.unacked),
                    "seed {}: group {:?} lost messages", seed, group
                );
            } else {
                prop_assert_eq!(
                    (q.published_total, q.depth, q.unacked),
                    (q.consumed_total + q.dead_lettered_total, 0, 0),
                    "seed {}: group {:?} left messages", seed, group
                );
            }
        }
        // The index files every span under its trace and every line under its stream.
        let index = first.index();
        prop_assert_eq!(index.traces().len(), by_trace.len(), "seed {}", seed);
        for (id, spans) in &by_trace {
            let entry = index.trace(*id).expect("every trace is indexed");
            let ids: BTreeSet<SpanId> = entry.spans.iter().map(|&i| first.spans[i as usize].span_id).collect();
            prop_assert_eq!(&ids, spans, "seed {}", seed);
        }
        let lines: usize = index.streams().map(|(_, list)| list.len()).sum();
        prop_assert_eq!(lines, first.logs.len(), "seed {}", seed);
    }
}
