//! The fault catalog, one test per fault: inject it into the default mesh and check that its
//! signature shows in the telemetry the way a learner would look for it (trace search, log
//! queries, metrics), and that the ground truth names it.

use faultline_engine::logql;
use faultline_engine::mesh::default_mesh;
use faultline_engine::query::{TraceQuery, parse_tags, search_traces};
use faultline_engine::scenario::{FaultEffect, FaultSpec, Scenario};
use faultline_engine::telemetry::{SpanKind, Telemetry};
use faultline_engine::trace::{TraceTree, trace_ids};
use faultline_engine::{GroundTruth, SimTime, Simulation};

fn with_fault(
    service: &str,
    instance: Option<u16>,
    from_ms: u64,
    until_ms: u64,
    effect: FaultEffect,
) -> Scenario {
    let mut scenario = default_mesh(50.0, 12_000);
    scenario
        .faults
        .push(FaultSpec::new(service, instance, from_ms, until_ms, effect));
    scenario
}

fn run(scenario: Scenario) -> (Telemetry, GroundTruth) {
    Simulation::new(scenario, 17)
        .expect("valid scenario")
        .finish()
}

fn logs(t: &Telemetry, query: &str) -> usize {
    logql::parse(query)
        .unwrap_or_else(|e| panic!("{query}: {e}"))
        .run(t)
        .len()
}

fn traces(t: &Telemetry, tags: &str) -> usize {
    let q = TraceQuery {
        tags: parse_tags(tags).unwrap(),
        limit: 100_000,
        ..TraceQuery::default()
    };
    search_traces(t, &q).len()
}

#[test]
fn instance_crash_refuses_connections_to_that_instance_only() {
    let (t, truth) = run(with_fault(
        "payments",
        Some(1),
        3_000,
        9_000,
        FaultEffect::Crash,
    ));
    let refused = traces(&t, "error.type=connection_refused peer.service=payments");
    assert!(refused > 10, "{refused}");
    // No server span on payments-1 starts while it is down; payments-0 keeps serving.
    let payments = t
        .service_names
        .iter()
        .position(|s| t.text(*s) == "payments")
        .unwrap() as u16;
    let during = |i: u16| {
        t.spans
            .iter()
            .filter(|s| s.kind == SpanKind::Server && s.service.0 == payments && s.instance == i)
            .filter(|s| s.start >= SimTime::from_ms(3_001) && s.start < SimTime::from_ms(9_000))
            .count()
    };
    assert_eq!(during(1), 0);
    assert!(during(0) > 20);
    assert_eq!(truth.faults[0].kind, "instance_crash");
    // Affected: the traces refused, and those whose requests the crash cut off at 3 s.
    let ids = |tags: &str| {
        let q = TraceQuery {
            tags: parse_tags(tags).unwrap(),
            limit: 100_000,
            ..TraceQuery::default()
        };
        search_traces(&t, &q).into_iter().map(|r| r.trace_id)
    };
    let hit: std::collections::BTreeSet<_> =
        ids("error.type=connection_refused peer.service=payments")
            .chain(ids("error.type=connection_reset peer.service=payments"))
            .collect();
    let affected: std::collections::BTreeSet<_> =
        truth.faults[0].affected_traces.iter().copied().collect();
    assert_eq!(affected, hit);
}

#[test]
fn instance_crash_ends_the_work_in_progress_there_and_restarts_when_the_window_closes() {
    // payments-1 slowed down, so it certainly holds requests when it crashes at 3 s.
    let mut scenario = with_fault("payments", Some(1), 3_000, 9_000, FaultEffect::Crash);
    scenario.faults.push(FaultSpec::new(
        "payments",
        Some(1),
        0,
        12_000,
        FaultEffect::Latency { extra_ms: 1_500 },
    ));
    let (t, truth) = run(scenario);
    let payments = t
        .service_names
        .iter()
        .position(|s| t.text(*s) == "payments")
        .unwrap() as u16;
    let crash = SimTime::from_ms(3_000);
    let error_type = |s: &faultline_engine::telemetry::Span| {
        let key = t.strings.lookup("error.type")?;
        t.attributes(s)
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| t.value_text(v))
    };
    let on_it = |s: &&faultline_engine::telemetry::Span| {
        s.kind == SpanKind::Server && s.service.0 == payments && s.instance == 1
    };
    // Every request it held ends at the crash, in error, with no HTTP status.
    let held: Vec<_> = t
        .spans
        .iter()
        .filter(on_it)
        .filter(|s| s.start <= crash && s.end().is_some_and(|e| e >= crash))
        .collect();
    assert!(held.len() >= 5, "{}", held.len());
    for s in &held {
        assert_eq!(s.end(), Some(crash));
        assert_eq!(error_type(s).as_deref(), Some("crashed"));
    }
    // Its callers' attempts still waiting then are reset (the others had timed out before),
    // and retried or failed like refusals.
    let by_id: std::collections::BTreeMap<_, _> = t.spans.iter().map(|s| (s.span_id, s)).collect();
    let waiting: Vec<_> = held
        .iter()
        .map(|s| by_id[&s.parent.unwrap()])
        .filter(|c| c.end().unwrap() > crash)
        .collect();
    assert!(!waiting.is_empty());
    for c in &waiting {
        let error = error_type(c);
        // (or timed out while the reset was on its way back)
        assert!(
            matches!(error.as_deref(), Some("connection_reset" | "timeout")),
            "{error:?}"
        );
    }
    let reset = traces(&t, "error.type=connection_reset peer.service=payments");
    assert!(reset > 0 && reset >= waiting.len() / 2, "{reset}");
    // The orchestrator's lines, out of any trace; nothing of its own in between.
    let crashed = logs(
        &t,
        r#"{service="payments"} |= "instance crashed (exit 139)""#,
    );
    let restarted = logs(&t, r#"{service="payments"} |= "instance restarted""#);
    assert_eq!((crashed, restarted), (1, 1));
    let line = |message: &str| {
        t.logs
            .iter()
            .find(|l| t.text(l.message) == message)
            .map(|l| (l.instance, l.time))
    };
    assert_eq!(line("instance crashed (exit 139)"), Some((1, crash)));
    assert_eq!(
        line("instance restarted"),
        Some((1, SimTime::from_ms(9_000)))
    );
    let between = t
        .spans
        .iter()
        .filter(on_it)
        .filter(|s| s.start > crash && s.start < SimTime::from_ms(9_000))
        .count();
    assert_eq!(between, 0);
    // After the restart it serves again.
    assert!(
        t.spans
            .iter()
            .filter(on_it)
            .any(|s| s.start >= SimTime::from_ms(9_000))
    );
    // The ground truth counts the requests it killed among the traces it affected.
    assert_eq!(truth.faults[0].first_effect, Some(crash));
    for s in &held {
        assert!(truth.faults[0].affected_traces.contains(&s.trace_id));
    }
}

#[test]
fn partition_turns_calls_into_timeouts_on_one_edge() {
    let (t, truth) = run(with_fault(
        "orders",
        None,
        3_000,
        6_000,
        FaultEffect::Partition {
            peer: "inventory".into(),
        },
    ));
    let timeouts = traces(&t, "error.type=timeout peer.service=inventory");
    assert!(timeouts > 10, "{timeouts}");
    // Other edges of orders are not cut: in the window, orders still reaches the database.
    let orders_to_database = |tags: &str| {
        let q = TraceQuery {
            service: Some("orders".into()),
            tags: parse_tags(tags).unwrap(),
            from: Some(SimTime::from_ms(3_000)),
            until: Some(SimTime::from_ms(6_000)),
            limit: 100_000,
            ..TraceQuery::default()
        };
        search_traces(&t, &q).len()
    };
    // (37 or more traces over 200 seeds)
    assert!(orders_to_database("peer.service=database") > 20);
    assert_eq!(
        orders_to_database("error.type=timeout peer.service=database"),
        0
    );
    assert!(truth.faults[0].first_effect.unwrap() >= SimTime::from_ms(3_000));
}

#[test]
fn traffic_flood_multiplies_the_arrival_rate_in_its_window() {
    let (t, _) = run(with_fault(
        "gateway",
        None,
        4_000,
        8_000,
        FaultEffect::TrafficFlood { multiplier: 4.0 },
    ));
    let gateway = t
        .metrics
        .red(faultline_engine::telemetry::ServiceId(0), None, None);
    let before: f64 = gateway[1..4].iter().map(|p| p.requests_per_s).sum::<f64>() / 3.0;
    let during: f64 = gateway[5..8].iter().map(|p| p.requests_per_s).sum::<f64>() / 3.0;
    // Four times the rate: over 200 seeds, 41 to 63 requests a second before and 166 to 225
    // in the window, never less than 2.9 times as many.
    assert!(
        during > 2.5 * before && before < 70.0 && during > 140.0,
        "{before} -> {during}"
    );
}

#[test]
fn log_level_warn_makes_info_lines_vanish() {
    // Arrivals stop at 12 s; the fault lasts until the last request has answered.
    let (t, truth) = run(with_fault(
        "orders",
        None,
        0,
        20_000, // the whole run, its drain included
        FaultEffect::LogLevelWarn,
    ));
    assert_eq!(logs(&t, r#"{service="orders", level="info"}"#), 0);
    assert!(logs(&t, r#"{service="inventory", level="info"}"#) > 100);
    // The requests still happened: their spans are all there.
    assert!(traces(&t, "http.route=create") > 50);
    assert!(!truth.faults[0].affected_traces.is_empty());
}

#[test]
fn card_numbers_show_up_in_the_logs_of_one_service() {
    let (t, _) = run(with_fault(
        "payments",
        None,
        0,
        12_000,
        FaultEffect::CardNumbersLogged,
    ));
    let pan = r#"{service=~".+"} |~ "card_number=[0-9]{13,19}""#;
    let leaked = logs(&t, pan);
    assert!(leaked > 50, "{leaked}");
    assert_eq!(
        leaked,
        logs(&t, r#"{service="payments"} |~ "card_number=[0-9]{13,19}""#)
    );
}

#[test]
fn context_dropped_splits_traces_in_two() {
    let (t, truth) = run(with_fault(
        "orders",
        None,
        0,
        12_000,
        FaultEffect::ContextDropped,
    ));
    // Every POST /orders trace now ends at orders' client spans; the callees' spans start
    // traces of their own whose roots are server spans of inventory, payments, database...
    let mut orphan_roots = 0;
    for id in trace_ids(&t) {
        let tree = TraceTree::new(&t, id);
        let root = tree.spans[tree.roots[0]];
        if t.service_name(root.service) != "gateway" {
            orphan_roots += 1;
        }
    }
    assert!(orphan_roots > 100, "{orphan_roots}");
    assert!(truth.faults[0].affected_traces.len() > 100);
}

#[test]
fn clock_skew_puts_a_childs_log_line_before_its_parents_span() {
    // inventory-0's clock runs 80 ms slow, and drifts further.
    let (t, truth) = run(with_fault(
        "inventory",
        Some(0),
        2_000,
        10_000,
        FaultEffect::ClockSkew {
            offset_ms: -80,
            drift_ppm: -500,
        },
    ));
    let inventory = t
        .service_names
        .iter()
        .position(|s| t.text(*s) == "inventory")
        .unwrap() as u16;
    let mut early = 0;
    for line in t.logs.iter().filter(|l| {
        l.service.0 == inventory
            && l.instance == 0
            && l.time >= SimTime::from_ms(2_000)
            && l.time < SimTime::from_ms(10_000)
    }) {
        // The request that logged this line started (true time) in a span of its trace;
        // by the node's clock the line was written before its trace's root even began.
        let root_start = t
            .spans
            .iter()
            .filter(|s| Some(s.trace_id) == line.trace_id && s.parent.is_none())
            .map(|s| s.start.unix_us())
            .next()
            .unwrap();
        if line.node_unix_us() < root_start {
            early += 1;
        }
        assert!(line.clock_offset_us <= -80_000);
    }
    assert!(early > 20, "{early}");
    assert_eq!(truth.faults[0].kind, "clock_skew");
    // True time and node time agree everywhere else.
    assert!(
        t.logs
            .iter()
            .filter(|l| l.service.0 != inventory)
            .all(|l| l.clock_offset_us == 0)
    );
}

#[test]
fn local_time_logs_carry_a_zone_offset_in_their_timestamps() {
    // Arrivals stop at 12 s; the fault lasts until the last request has answered.
    let (t, _) = run(with_fault(
        "orders",
        None,
        0,
        20_000, // the whole run, its drain included
        FaultEffect::LocalTimeLogs { zone_minutes: 120 },
    ));
    let ndjson = faultline_engine::export::ndjson_logs(&t);
    let orders: Vec<&str> = ndjson
        .lines()
        .filter(|l| l.contains("\"service\":\"orders\""))
        .collect();
    assert!(!orders.is_empty());
    assert!(
        orders.iter().all(|l| l.contains("+02:00\"")),
        "{}",
        orders[0]
    );
    assert!(
        ndjson
            .lines()
            .filter(|l| l.contains("\"service\":\"payments\""))
            .all(|l| l.contains("Z\""))
    );
    // Read back, the zone survives and the instant is unchanged.
    let back = faultline_engine::import::import_ndjson_logs(&ndjson).unwrap();
    assert!(
        back.logs
            .iter()
            .filter(|l| back.service_name(l.service) == "orders")
            .all(|l| l.zone_minutes == 120)
    );
}

#[test]
fn connection_leak_drains_one_instances_pool_and_errors_pile_up_there() {
    let (t, truth) = run(with_fault(
        "orders",
        Some(1),
        2_000,
        12_000,
        // Half: orders reads mostly come from the cache, so its pool is used less often.
        FaultEffect::ConnectionLeak { rate: 0.5 },
    ));
    let orders = t
        .service_names
        .iter()
        .position(|s| t.text(*s) == "orders")
        .unwrap() as u16;
    let last = |instance: u16| {
        t.metrics
            .instances
            .iter()
            .filter(|s| s.service.0 == orders && s.instance == instance && s.bucket == 10)
            .map(|s| (s.pool_in_use, s.pool_waiters))
            .next()
            .unwrap()
    };
    // orders-1's pool (10 connections) is all taken and calls queue for it (each for its
    // 100 ms acquire timeout, so not at every scrape: see the errors below); the others idle.
    assert_eq!(last(1).0, 10);
    let waiting = |instance: u16| {
        t.metrics
            .instances
            .iter()
            .filter(|s| s.service.0 == orders && s.instance == instance && s.pool_waiters > 0)
            .count()
    };
    assert_eq!((waiting(0), waiting(2)), (0, 0));
    assert!(last(0).0 < 10 && last(2).0 < 10);
    // The pool_exhausted errors all come from orders-1, each a call that waited in its
    // pool's queue until the acquire timeout (or a little past it, when orders' collector had
    // stopped the world then).
    let exhausted: Vec<&faultline_engine::telemetry::Span> = t
        .spans
        .iter()
        .filter(|s| {
            t.attributes(s).iter().any(|(k, v)| {
                t.text(*k) == "error.type"
                    && matches!(v, faultline_engine::telemetry::Value::Str(x) if t.text(*x) == "pool_exhausted")
            })
        })
        .collect();
    assert!(exhausted.len() > 20, "{}", exhausted.len());
    assert!(exhausted.iter().all(|s| s.instance == 1));
    let waited = |s: &&faultline_engine::telemetry::Span| s.end().unwrap().since(s.start).0;
    assert!(exhausted.iter().all(|s| waited(s) >= 100_000));
    assert!(exhausted.iter().filter(|s| waited(s) == 100_000).count() * 10 >= exhausted.len() * 9);
    assert_eq!(truth.faults[0].kind, "connection_leak");
    assert_eq!(
        truth.faults[0].affected_traces.len(),
        10,
        "ten leaks empty a pool of ten"
    );
}

#[test]
fn non_idempotent_retry_charges_twice_under_one_trace() {
    // Payments slows to about the orders-to-payments timeout (1 s), so some charges time out
    // on the caller's side after they went through.
    let slow = FaultSpec {
        service: "payments".into(),
        instance: None,
        from_ms: 0,
        until_ms: 12_000,
        effect: FaultEffect::Latency { extra_ms: 930 },
    };
    let mut faulty = default_mesh(50.0, 12_000);
    faulty.faults = vec![
        slow.clone(),
        FaultSpec {
            service: "orders".into(),
            instance: None,
            from_ms: 0,
            until_ms: 12_000,
            effect: FaultEffect::NonIdempotentRetry,
        },
    ];
    let (t, truth) = run(faulty);
    assert!(truth.duplicate_charges > 5, "{}", truth.duplicate_charges);
    // A learner finds it: one trace id with two "payment charged" lines.
    let charged = logql::parse(r#"{service="payments"} |= "payment charged""#)
        .unwrap()
        .run(&t);
    let mut per_trace = std::collections::BTreeMap::new();
    for i in charged {
        *per_trace.entry(t.logs[i as usize].trace_id).or_insert(0u32) += 1;
    }
    let doubled = per_trace.values().filter(|n| **n > 1).count() as u32;
    assert!(doubled > 0 && doubled <= truth.duplicate_charges);
    assert_eq!(truth.faults[1].kind, "non_idempotent_retry");

    // The same slowness with a retry that keeps its idempotency key charges once per order.
    let mut keyed = default_mesh(50.0, 12_000);
    keyed.faults = vec![slow];
    assert_eq!(
        keyed.edit_calls("orders", "payments", |policy| {
            policy.retries = 1;
        }),
        1
    );
    let (t, truth) = run(keyed);
    assert_eq!(truth.duplicate_charges, 0);
    assert!(logs(&t, r#"{service="payments"} |= "duplicate charge request""#) > 5);
}

/// Client attempts from orders to payments per `create` request orders served.
fn payments_amplification(t: &Telemetry) -> f64 {
    let payments = t.strings.lookup("payments").unwrap();
    let peer = t.strings.lookup("peer.service").unwrap();
    let orders = t
        .service_names
        .iter()
        .position(|s| t.text(*s) == "orders")
        .unwrap() as u16;
    let attempts = t
        .spans
        .iter()
        .filter(|s| s.kind == SpanKind::Client && s.service.0 == orders)
        .filter(|s| {
            t.attributes(s)
                .contains(&(peer, faultline_engine::telemetry::Value::Str(payments)))
        })
        .count();
    let creates = t
        .spans
        .iter()
        .filter(|s| {
            s.kind == SpanKind::Server && s.service.0 == orders && t.text(s.operation) == "create"
        })
        .filter(|s| {
            t.spans.iter().any(|c| {
                c.parent == Some(s.span_id)
                    && t.attributes(c)
                        .contains(&(peer, faultline_engine::telemetry::Value::Str(payments)))
            })
        })
        .count();
    attempts as f64 / creates as f64
}

#[test]
fn retry_storm_multiplies_load_and_a_retry_budget_contains_it() {
    let failing = FaultSpec {
        service: "payments".into(),
        instance: None,
        from_ms: 0,
        until_ms: 12_000,
        effect: FaultEffect::ErrorRate { rate: 0.5 },
    };
    let mut storm = default_mesh(50.0, 12_000);
    storm.faults = vec![
        failing.clone(),
        FaultSpec {
            service: "orders".into(),
            instance: None,
            from_ms: 0,
            until_ms: 12_000,
            effect: FaultEffect::RetryStorm,
        },
    ];
    let (t, truth) = run(storm);
    let amplified = payments_amplification(&t);
    // 1 + 1/2 + 1/4 + 1/8 attempts per request when half of them fail.
    // (About 180 creates: the ratio's standard deviation is about 0.08.)
    assert!((1.6..2.15).contains(&amplified), "{amplified}");
    assert!(!truth.faults[1].affected_traces.is_empty());

    let mut budgeted = default_mesh(50.0, 12_000);
    budgeted.faults = vec![failing];
    assert_eq!(
        budgeted.edit_calls("orders", "payments", |policy| {
            (policy.retries, policy.backoff_base_ms, policy.retry_budget) = (3, 0, Some(0.1));
        }),
        1
    );
    let (t, _) = run(budgeted);
    let contained = payments_amplification(&t);
    assert!(contained <= 1.12, "{contained}");
    assert!(logs(&t, r#"{service="orders"} | retry_budget_exhausted="true""#) > 10);
}

#[test]
fn workload_ramps_bursts_users_and_client_retries_shape_the_traffic() {
    use faultline_engine::scenario::{Burst, Ramp};
    let mut scenario = default_mesh(20.0, 12_000);
    scenario.workload.ramps = vec![Ramp {
        from_ms: 4_000,
        until_ms: 6_000,
        to_rate_per_s: 80.0,
    }];
    scenario.workload.bursts = vec![Burst {
        at_ms: 10_500,
        requests: 150,
    }];
    scenario.workload.users = 25;
    scenario.workload.client_retries = 1;
    scenario.faults.push(FaultSpec {
        service: "auth".into(),
        instance: None,
        from_ms: 0,
        until_ms: 12_000,
        effect: FaultEffect::ErrorRate { rate: 0.3 },
    });
    let (t, _) = run(scenario);
    let gateway = t
        .metrics
        .red(faultline_engine::telemetry::ServiceId(0), None, None);
    let early = gateway[1..4].iter().map(|p| p.requests_per_s).sum::<f64>() / 3.0;
    let late = gateway[7..10].iter().map(|p| p.requests_per_s).sum::<f64>() / 3.0;
    // From 20 to 80 requests a second (client retries add a few): over 150 seeds, 16 to 30
    // before the ramp and 72 to 102 after it, never less than 2.7 times as many.
    assert!(
        late > 2.5 * early && early < 35.0 && late > 60.0,
        "ramp: {early} -> {late}"
    );
    // The burst: 150 requests enter at one instant.
    let roots_at_burst = t
        .spans
        .iter()
        .filter(|s| s.parent.is_none() && s.start == SimTime::from_ms(10_500))
        .count();
    assert!(roots_at_burst >= 150, "{roots_at_burst}");
    // Users: every request from outside (a root server span; payments' settlement job runs are
    // internal roots) names one of the 25.
    let user = t.strings.lookup("user.id").unwrap();
    let users: std::collections::BTreeSet<String> = t
        .spans
        .iter()
        .filter(|s| s.parent.is_none() && s.kind == SpanKind::Server)
        .map(|s| {
            t.attributes(s)
                .iter()
                .find(|(k, _)| *k == user)
                .map(|(_, v)| t.value_text(v))
                .expect("user.id")
        })
        .collect();
    assert_eq!(users.len(), 25);
    // Client retries: failed requests come back 200 ms later as new traces.
    let retried = traces(&t, "client.retry=1");
    assert!(retried > 10, "{retried}");
    let failed_first = t
        .spans
        .iter()
        .filter(|s| {
            s.parent.is_none()
                && s.kind == SpanKind::Server
                && s.status == faultline_engine::telemetry::SpanStatus::Error
        })
        .filter(|s| {
            !t.attributes(s)
                .iter()
                .any(|(k, _)| t.text(*k) == "client.retry")
        })
        .count();
    assert_eq!(
        retried, failed_first,
        "every first try that failed is retried once"
    );
}

#[test]
fn each_service_logs_from_its_own_level_up() {
    use faultline_engine::scenario::LogLevel;
    let mut scenario = default_mesh(30.0, 5_000);
    scenario.services[1].log_level = LogLevel::Debug; // auth
    scenario.services[2].log_level = LogLevel::Warn; // orders
    let (t, _) = run(scenario);
    let started = logs(
        &t,
        r#"{service="auth", level="debug"} |= "request started""#,
    );
    assert_eq!(
        started,
        logs(&t, r#"{service="auth"} |= "request completed""#)
            + logs(&t, r#"{service="auth"} |= "request failed""#)
    );
    assert_eq!(logs(&t, r#"{service="orders", level=~"debug|info"}"#), 0);
    assert_eq!(logs(&t, r#"{service="payments", level="debug"}"#), 0);
    assert!(logs(&t, r#"{service="payments", level="info"}"#) > 0);
}

#[test]
fn a_call_that_does_not_propagate_context_starts_a_new_trace_downstream() {
    let mut scenario = default_mesh(30.0, 5_000);
    assert_eq!(
        scenario.edit_calls("orders", "payments", |policy| {
            policy.propagate_context = false;
        }),
        1
    );
    let (t, _) = run(scenario);
    let payments_roots = t
        .spans
        .iter()
        .filter(|s| s.kind == SpanKind::Server && t.service_name(s.service) == "payments")
        .filter(|s| s.parent.is_none())
        .count();
    let payments_all = t
        .spans
        .iter()
        .filter(|s| s.kind == SpanKind::Server && t.service_name(s.service) == "payments")
        .count();
    assert!(payments_all > 20);
    assert_eq!(
        payments_roots, payments_all,
        "every payments request starts its own trace"
    );
    // Inventory, still propagated, stays inside the callers' traces.
    assert!(
        t.spans
            .iter()
            .filter(|s| s.kind == SpanKind::Server && t.service_name(s.service) == "inventory")
            .all(|s| s.parent.is_some())
    );
}

#[test]
fn stock_race_oversells_and_optimistic_locking_does_not() {
    use faultline_engine::scenario::DataEffect;
    // 200 units, and enough orders to sell them out with many reservations in flight.
    let scenario = |race: bool| {
        let mut s = default_mesh(120.0, 12_000);
        s.workload.entries[0].weight = 10; // mostly POST /orders
        let inventory = s
            .services
            .iter_mut()
            .find(|x| x.name == "inventory")
            .unwrap();
        inventory.operations[0].effect = Some(DataEffect::Reserve {
            initial_stock: 200,
            optimistic_locking: true,
        });
        if race {
            s.faults.push(FaultSpec {
                service: "inventory".into(),
                instance: None,
                from_ms: 0,
                until_ms: 12_000,
                effect: FaultEffect::StockRace,
            });
        }
        s
    };
    let (t, truth) = run(scenario(true));
    assert!(truth.oversold_units > 0, "the race sold more than 200");
    assert!(!truth.faults[0].affected_traces.is_empty());
    let sold = logs(&t, r#"{service="inventory"} |= "stock reserved""#) as u32;
    assert_eq!(sold, 200 + truth.oversold_units);

    let (t, truth) = run(scenario(false));
    assert_eq!(truth.oversold_units, 0);
    assert_eq!(
        logs(&t, r#"{service="inventory"} |= "stock reserved""#),
        200
    );
    assert!(logs(&t, r#"{service="inventory"} |= "stock version conflict""#) > 0);
    assert!(
        logs(
            &t,
            r#"{service="inventory", level="warn"} |= "out of stock""#
        ) > 0
    );
}

#[test]
fn memory_leak_lengthens_gc_pauses_until_the_instance_is_killed_out_of_memory() {
    let mut scenario = with_fault(
        "orders",
        Some(1),
        2_000,
        20_000,
        FaultEffect::MemoryLeak { mb_per_s: 40 },
    );
    scenario.duration_ms = 20_000;
    scenario.workload.rate_per_s = 60.0;
    // Creates that take most of a second keep about five in flight on each instance, so the
    // kill surely catches some on orders-1. (Reads stay fast: the pauses show in their p99.)
    let orders = &mut scenario.services[2];
    assert_eq!(orders.name, "orders");
    assert_eq!(orders.operations[0].name, "create");
    orders.operations[0].steps[0] = faultline_engine::scenario::Step::Work {
        p50_ms: 800.0,
        p99_ms: 1_200.0,
    };
    let (t, truth) = run(scenario);
    // Logs: the collector on orders-1 keeps less free after each collection and pauses longer,
    // warning on long pauses; then it runs out of memory and restarts. orders-0 stays healthy.
    let orders1 = r#"{service="orders", instance="orders-1"}"#;
    assert!(
        logs(
            &t,
            &format!(r#"{orders1} |= "GC pause" | heap_after_mb > 400"#)
        ) >= 2
    );
    assert_eq!(
        logs(
            &t,
            r#"{service="orders", instance!="orders-1"} |= "GC pause" | heap_after_mb > 64"#
        ),
        0
    );
    let long = logs(
        &t,
        r#"{service="orders", level="warn"} |= "GC pause" | pause_ms >= 100"#,
    );
    assert!(long >= 3, "{long}");
    assert_eq!(
        long,
        logs(&t, &format!(r#"{orders1} |= "GC pause" | pause_ms >= 100"#))
    );
    assert_eq!(
        logs(
            &t,
            r#"{service="orders", level="error"} |= "out of memory""#
        ),
        1
    );
    // The kill itself, as the orchestrator reports it, on the same stream.
    assert_eq!(
        logs(
            &t,
            &format!(r#"{orders1} |= "instance killed" | reason="OOMKilled" and exit_code=137"#)
        ),
        1
    );
    // The requests orders-1 held ended with it, marked so; the dead process wrote nothing for
    // them (no `request failed`), and its callers saw their connections reset.
    assert_eq!(
        logs(
            &t,
            &format!(r#"{orders1} |= "request failed" | status_code=500"#)
        ),
        0
    );
    let reset = traces(&t, "error.type=connection_reset peer.service=orders");
    assert!(reset > 0, "{reset}");
    let killed = search_traces(
        &t,
        &TraceQuery {
            tags: vec![("error.type".into(), "out_of_memory".into())],
            limit: u32::MAX,
            ..TraceQuery::default()
        },
    );
    assert!(!killed.is_empty());
    assert!(
        killed
            .iter()
            .all(|r| truth.faults[0].affected_traces.contains(&r.trace_id))
    );
    assert_eq!(
        logs(&t, &format!(r#"{orders1} |= "instance restarted""#)),
        1
    );
    // Metrics: orders-1's heap gauge is a saw-tooth that reaches the top, then reads 0 while
    // the instance is down.
    let prometheus = faultline_engine::export::prometheus(&t);
    let heap: Vec<f64> = prometheus
        .lines()
        .filter(|l| {
            l.starts_with(r#"faultline_heap_used_bytes{service="orders",instance="orders-1"}"#)
        })
        .map(|l| l.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    let drops = heap.windows(2).filter(|w| w[1] < w[0]).count();
    assert!(drops >= 4, "{heap:?}");
    assert!(heap.iter().any(|b| *b > 480.0 * 1_048_576.0), "{heap:?}");
    assert!(heap.contains(&0.0));
    // p99 of orders-1's reads climbs in the seconds it spends paused (or the next, for
    // requests the pause held past the bucket's end), above orders-0's. (Reads, which the
    // cache answers in a few ms: creates take as long as a short pause anyway.)
    let orders = faultline_engine::telemetry::ServiceId(2);
    let get = t.strings.lookup("get");
    let (sick, healthy) = (
        t.metrics.red(orders, Some(1), get),
        t.metrics.red(orders, Some(0), get),
    );
    let paused_buckets: Vec<usize> = t
        .metrics
        .runtime
        .iter()
        .filter(|r| r.service == orders && r.instance == 1 && r.gc_pause_us >= 200_000)
        .map(|r| r.bucket as usize)
        .collect();
    assert!(paused_buckets.len() >= 2, "{paused_buckets:?}");
    for b in paused_buckets {
        let worst = |red: &[faultline_engine::metrics::RedPoint]| red[b].p99.max(red[b + 1].p99);
        assert!(worst(&sick) > worst(&healthy), "bucket {b}");
    }
    // Traces: while orders-1 is down, calls to it are refused.
    assert!(traces(&t, "error.type=connection_refused peer.service=orders") > 10);
    let fault = &truth.faults[0];
    assert_eq!(fault.kind, "memory_leak");
    assert!(fault.first_effect.unwrap() >= SimTime::from_ms(2_000));
    assert!(fault.affected_traces.len() > 50);
}

#[test]
fn saga_no_compensation_leaves_orders_saved_without_stock_or_payment() {
    // Payments fails every charge in the window, so each order saga fails at its third step,
    // after the order was saved and its stock reserved.
    let failing_charges = FaultSpec {
        service: "payments".into(),
        instance: None,
        from_ms: 2_000,
        until_ms: 8_000,
        effect: FaultEffect::ErrorRate { rate: 1.0 },
    };
    let mut healthy = default_mesh(50.0, 12_000);
    healthy.faults = vec![failing_charges.clone()];
    let (t, truth) = run(healthy);
    assert!(truth.sagas_failed > 20, "{}", truth.sagas_failed);
    assert_eq!(truth.sagas_compensated, truth.sagas_failed);
    assert!(
        truth.saga_steps_left.is_empty(),
        "{:?}",
        truth.saga_steps_left
    );
    // Every failed saga released its stock and cancelled its order, latest step first.
    let compensating = logs(
        &t,
        r#"{service="orders"} |= "saga step failed, compensating""#,
    );
    assert_eq!(compensating as u32, truth.sagas_failed);
    assert_eq!(
        logs(&t, r#"{service="inventory"} |= "stock released""#) as u32,
        truth.sagas_failed
    );
    let undo = faultline_engine::query::TraceQuery {
        tags: parse_tags("saga.compensation=true").unwrap(),
        limit: 1,
        ..TraceQuery::default()
    };
    let trace = search_traces(&t, &undo)[0].trace_id;
    let undone: Vec<&str> = t
        .spans
        .iter()
        .filter(|s| s.trace_id == trace && s.kind == SpanKind::Client)
        .filter(|s| {
            t.attributes(s)
                .iter()
                .any(|(k, _)| t.text(*k) == "saga.compensation")
        })
        .map(|s| t.text(s.operation))
        .collect();
    // The order's row is deleted by a query: a client span named by its operation.
    assert_eq!(undone, ["release", "DELETE"]);

    // With the compensation handler gone, the same failures leave their steps in effect.
    let mut broken = default_mesh(50.0, 12_000);
    broken.faults = vec![
        failing_charges,
        FaultSpec {
            service: "orders".into(),
            instance: None,
            from_ms: 0,
            until_ms: 12_000,
            effect: FaultEffect::SagaNoCompensation,
        },
    ];
    let (t, truth) = run(broken);
    assert!(truth.sagas_failed > 20);
    assert_eq!(truth.sagas_compensated, 0);
    assert_eq!(truth.saga_steps_left["database:insert"], truth.sagas_failed);
    assert_eq!(
        truth.saga_steps_left["inventory:reserve"],
        truth.sagas_failed
    );
    assert_eq!(
        truth.faults[1].affected_traces.len() as u32,
        truth.sagas_failed
    );
    // What a learner sees: failed orders, and no compensation anywhere.
    assert_eq!(logs(&t, r#"{service="orders"} |= "compensating""#), 0);
    assert_eq!(logs(&t, r#"{service="inventory"} |= "stock released""#), 0);
    assert_eq!(traces(&t, "saga.compensation=true"), 0);
    assert!(traces(&t, "http.route=create error=true") > 20);
}

/// The default mesh with payments-0 paused 5 s (longer than its 1 s lease) each time it takes
/// the settlement lock between 4 and 5 s: it takes it once, at 4.5 s.
fn lease_expiry(fencing: bool) -> Scenario {
    let mut scenario = with_fault(
        "payments",
        Some(0),
        4_000,
        5_000,
        FaultEffect::LeaseExpiry { pause_ms: 5_000 },
    );
    for op in &mut scenario.services[3].operations {
        if let Some(lock) = &mut op.lock {
            lock.fencing = fencing;
        }
    }
    scenario
}

#[test]
fn lease_expiry_gives_two_holders_and_fencing_rejects_the_stale_write() {
    let (t, truth) = run(lease_expiry(true));
    // Logs: the holder's long GC pause, the other instance finding the lease expired and
    // taking the lock, then the holder waking to write with its old token, refused.
    let payments0 = r#"{service="payments", instance="payments-0"}"#;
    assert_eq!(
        logs(
            &t,
            &format!(r#"{payments0} |= "GC pause" | pause_ms > 1000"#)
        ),
        1
    );
    assert_eq!(
        logs(
            &t,
            r#"{service="payments", instance="payments-1"} |= "lease expired""#
        ),
        1
    );
    let rejected = logql::parse(r#"{service="payments", level="warn"} |= "stale fencing token""#)
        .unwrap()
        .run(&t);
    assert_eq!(rejected.len(), 1);
    let line = &t.logs[rejected[0] as usize];
    let field = |name: &str| {
        line.fields
            .iter()
            .find(|(k, _)| t.text(*k) == name)
            .map(|(_, v)| t.value_text(v))
            .unwrap()
    };
    let (stale, highest): (u64, u64) = (
        field("lock.fencing_token").parse().unwrap(),
        field("lock.highest_token").parse().unwrap(),
    );
    assert!(stale < highest);
    // Traces: the settlement job's spans carry the lock and its tokens; the refused write
    // is found by its error type, in the trace whose lease was taken over.
    assert!(traces(&t, "lock.name=settlement") >= 4);
    assert_eq!(traces(&t, "error.type=stale_fencing_token"), 1);
    assert_eq!(
        traces(
            &t,
            &format!("lock.fencing_token={stale} lock.acquired=true")
        ),
        1
    );
    assert_eq!(
        (truth.stale_writes_accepted, truth.stale_writes_rejected),
        (0, 1)
    );
    let fault = &truth.faults[0];
    assert_eq!(fault.kind, "lease_expiry");
    assert!(fault.first_effect.unwrap() >= SimTime::from_ms(4_000));
    // The pause also stalled payments-0's charges: orders' calls to it timed out meanwhile.
    assert!(traces(&t, "error.type=timeout peer.service=payments") > 5);
    assert!(fault.affected_traces.len() > 5);

    // Without fencing the storage takes both: an older token is committed after a newer one.
    let (t, truth) = run(lease_expiry(false));
    assert_eq!(
        logs(&t, r#"{service="payments"} |= "stale fencing token""#),
        0
    );
    let committed: Vec<i64> = logql::parse(r#"{service="payments"} |= "write committed""#)
        .unwrap()
        .run(&t)
        .iter()
        .map(|i| {
            let l = &t.logs[*i as usize];
            let (_, v) = l
                .fields
                .iter()
                .find(|(k, _)| t.text(*k) == "lock.fencing_token")
                .unwrap();
            t.value_text(v).parse().unwrap()
        })
        .collect();
    assert!(committed.windows(2).any(|w| w[1] < w[0]), "{committed:?}");
    assert_eq!(
        logs(&t, r#"{service="payments"} |= "lease lost before release""#),
        1
    );
    assert_eq!(
        (truth.stale_writes_accepted, truth.stale_writes_rejected),
        (1, 0)
    );
}

/// One service's per-second RED points, optionally for one route.
fn red(
    t: &Telemetry,
    service: &str,
    route: Option<&str>,
) -> Vec<faultline_engine::metrics::RedPoint> {
    let id = t
        .service_names
        .iter()
        .position(|s| t.text(*s) == service)
        .unwrap() as u16;
    let route = route.map(|r| t.strings.lookup(r).expect("a route"));
    t.metrics
        .red(faultline_engine::telemetry::ServiceId(id), None, route)
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn cache_outage_sends_every_read_to_the_database_and_the_cache_comes_back_cold() {
    // Busier than the usual mesh, with a database sized for a warm cache: three workers
    // serve the writes and the few reads the cache lets through.
    let mut scenario = default_mesh(300.0, 12_000);
    let database = scenario
        .services
        .iter_mut()
        .find(|s| s.name == "database")
        .unwrap();
    (database.workers, database.queue_limit) = (3, 1_000);
    scenario.faults.push(FaultSpec {
        service: "cache".into(),
        instance: None,
        from_ms: 4_000,
        until_ms: 7_000,
        effect: FaultEffect::CacheOutage,
    });
    let (t, truth) = run(scenario);
    // Calls to the cache are refused; the callers read through to the database and say so.
    let refused = traces(&t, "error.type=connection_refused peer.service=cache");
    assert!(refused > 600, "{refused}"); // nearly every trace in the window
    let warned = logs(
        &t,
        r#"{service=~"auth|orders", level="warn"} |= "cache unavailable""#,
    );
    assert!(warned > 1_000, "{warned}");
    // Hardly any request failed for it: the callers read through. (Once in 200 seeds the herd
    // exhausted inventory's pool: 5 traces with a 502 in them.)
    let failed = traces(&t, "http.response.status_code=502");
    assert!(failed * 50 < refused, "{failed} of {refused}");
    // The cache's own counters: a high hit ratio before, no lookups in the window (the cache
    // is down), and a cold cache after that warms back up.
    let per_bucket: Vec<(u64, u64, u32)> = t
        .metrics
        .caches
        .windows(2)
        .map(|w| {
            (
                w[1].hits_total - w[0].hits_total,
                w[1].misses_total - w[0].misses_total,
                w[1].keys,
            )
        })
        .collect(); // entry b is bucket b + 1
    let ratio = |b: usize| {
        let (hits, misses, _) = per_bucket[b - 1];
        hits as f64 / (hits + misses).max(1) as f64
    };
    assert!(ratio(2) > 0.9 && ratio(3) > 0.9, "{per_bucket:?}");
    assert_eq!(
        per_bucket[4 - 1].0 + per_bucket[4 - 1].1,
        0,
        "{per_bucket:?}"
    );
    assert_eq!(per_bucket[5 - 1].2, 0); // its keys are gone
    // Cold, then warming: the ratio climbs for a few seconds and levels off below where it was
    // (over 150 seeds: at most 0.49 at 7 s, up by 0.17 or more at 9 s and 0.25 at 11 s, never
    // past 0.8, against 0.95 or more before).
    assert!(ratio(7) < 0.6, "{per_bucket:?}");
    assert!(ratio(9) > ratio(7) + 0.1, "{per_bucket:?}");
    assert!(ratio(11) > ratio(7) + 0.15, "{per_bucket:?}");
    assert!(
        (9..12).all(|b| ratio(b) < 0.9 && ratio(b) < ratio(2)),
        "{per_bucket:?}"
    );
    // The herd, as the database's exporter and its callers' spans show it (it writes no spans
    // of its own): its transaction rate climbs, its callers' queries slow down, and so do the
    // callers' own requests.
    let db = &t.metrics.databases;
    let seconds = |from: usize, until: usize, f: &dyn Fn(usize) -> f64| mean((from..until).map(f));
    let commits = |b: usize| (db[b].xact_commit_total - db[b - 1].xact_commit_total) as f64;
    let (rate_before, rate_during) = (seconds(1, 4, &commits), seconds(4, 7, &commits));
    assert!(
        rate_during > 1.8 * rate_before,
        "{rate_before} -> {rate_during}"
    );
    // The queries sent from `from_s` to `until_s`: their callers' client spans.
    let queries = |from_s: u64, until_s: u64| {
        t.spans
            .iter()
            .filter(move |s| s.kind == SpanKind::Client)
            .filter(move |s| s.start >= SimTime::from_ms(from_s * 1_000))
            .filter(move |s| s.start < SimTime::from_ms(until_s * 1_000))
            .filter(|s| {
                t.attributes(s)
                    .iter()
                    .any(|(k, v)| t.text(*k) == "db.system" && t.value_text(v) == "postgresql")
            })
    };
    let query_p50 = |from_s: u64, until_s: u64| {
        let mut us: Vec<u64> = queries(from_s, until_s)
            .map(|s| s.end().unwrap().since(s.start).0)
            .collect();
        us.sort_unstable();
        us[us.len() / 2] as f64
    };
    let (db_before, db_during) = (query_p50(1, 4), query_p50(4, 7));
    // (Twice as slow with most seeds; 1.6 times with the slowest of 20 tried.)
    assert!(db_during > 1.4 * db_before, "{db_before} -> {db_during}");
    let before = |points: &[faultline_engine::metrics::RedPoint],
                  f: fn(&faultline_engine::metrics::RedPoint) -> f64| {
        (
            mean(points[1..4].iter().map(f)),
            mean(points[4..7].iter().map(f)),
        )
    };
    let p50 = |p: &faultline_engine::metrics::RedPoint| p.p50.unwrap().0 as f64;
    let (get_before, get_during) = before(&red(&t, "orders", Some("get")), p50);
    assert!(
        get_during > 3.0 * get_before,
        "{get_before} -> {get_during}"
    );
    // Orders' pools hold more connections while the database is slow: their connection time
    // (each query holds one) is 4.4 times what it was or more over 150 seeds. (The pool gauges,
    // sampled once a second, read a few connections either way: too few to compare.)
    let held = |from_s: u64, until_s: u64| -> u64 {
        queries(from_s, until_s)
            .filter(|s| t.service_name(s.service) == "orders")
            .map(|s| s.end().unwrap().since(s.start).0)
            .sum()
    };
    assert!(
        held(4, 7) > 3 * held(1, 4),
        "{} -> {}",
        held(1, 4),
        held(4, 7)
    );
    let outage = &truth.faults[0];
    assert_eq!(outage.kind, "cache_outage");
    let first = outage.first_effect.unwrap();
    assert!(first >= SimTime::from_ms(4_000) && first < SimTime::from_ms(4_050));
    // The refused lookups, and the cold misses after it on keys the outage threw away.
    assert!(
        outage.affected_traces.len() > refused,
        "{}",
        outage.affected_traces.len()
    );
}

#[test]
fn latency_on_the_database_shows_in_its_slow_statement_log_and_its_callers_queries() {
    // The database gets 600 ms slower: past its callers' 200 ms timeouts, and past its own
    // 500 ms slow-statement threshold. It writes no spans of its own, as PostgreSQL does not.
    let (t, truth) = run(with_fault(
        "database",
        None,
        4_000,
        6_000,
        FaultEffect::Latency { extra_ms: 600 },
    ));
    assert_eq!(traces(&t, "http.route=select"), 0);
    // Its log: slow statements, in the window only, each naming the statement and client.
    let slow = r#"{service="database"} |= "duration:" | duration_ms >= 600"#;
    let found = logql::parse(slow).unwrap().run(&t);
    // About 25 statements a second reach it; those in the 2 s window are slow.
    assert!(found.len() > 30, "{}", found.len());
    assert_eq!(logs(&t, r#"{service="database"}"#), found.len());
    for &i in &found {
        let line = &t.logs[i as usize];
        assert!(line.time >= SimTime::from_ms(4_000) && line.time < SimTime::from_ms(6_700));
    }
    // Each names its client: the services with a pool to it.
    let by_client: Vec<usize> = ["auth", "orders", "payments", "inventory"]
        .iter()
        .map(|app| {
            let q = format!(r#"{slow} | application_name="{app}""#);
            logql::parse(&q).unwrap().run(&t).len()
        })
        .collect();
    assert_eq!(
        by_client.iter().sum::<usize>(),
        found.len(),
        "{by_client:?}"
    );
    assert!(
        by_client.iter().filter(|n| **n > 0).count() >= 2,
        "{by_client:?}"
    );
    assert!(logs(&t, &format!(r#"{slow} |= "statement: SELECT""#)) > 0);
    // Its callers' queries: client spans with db.system that time out in the window.
    let timed_out = traces(&t, "db.system=postgresql error.type=timeout");
    assert!(timed_out > 15, "{timed_out}");
    let q = |from_ms, until_ms| TraceQuery {
        tags: parse_tags("db.system=postgresql error.type=timeout").unwrap(),
        from: Some(SimTime::from_ms(from_ms)),
        until: Some(SimTime::from_ms(until_ms)),
        limit: 100_000,
        ..TraceQuery::default()
    };
    // Only queries made in the window time out (one that waited for a pool connection may
    // have begun a little before it). A trace may start before the window and query in it.
    let has = |s: &faultline_engine::telemetry::Span, key: &str, value: &str| {
        t.attributes(s)
            .iter()
            .any(|(k, v)| t.text(*k) == key && t.value_text(v) == value)
    };
    let starts: Vec<SimTime> = t
        .spans
        .iter()
        .filter(|s| has(s, "db.system", "postgresql") && has(s, "error.type", "timeout"))
        .map(|s| s.start)
        .collect();
    assert!(starts.len() >= timed_out, "{} spans", starts.len());
    assert!(
        starts
            .iter()
            .all(|s| *s >= SimTime::from_ms(3_500) && *s < SimTime::from_ms(6_000)),
        "{starts:?}"
    );
    assert_eq!(search_traces(&t, &q(6_100, 12_000)).len(), 0);
    // Its exporter: the statements it ran to the end (for callers long gone) still commit.
    let commits: Vec<u64> = t
        .metrics
        .databases
        .iter()
        .map(|d| d.xact_commit_total)
        .collect();
    assert!(commits.windows(2).all(|w| w[0] <= w[1]));
    let fault = &truth.faults[0];
    assert_eq!(
        (fault.kind, fault.service.as_str()),
        ("latency", "database")
    );
    assert!(fault.first_effect.unwrap() >= SimTime::from_ms(4_000));
    // Affected traces are the callers': the ones whose queries timed out, among others slowed.
    let timed_out: Vec<_> = search_traces(&t, &q(0, 12_000))
        .into_iter()
        .map(|r| r.trace_id)
        .collect();
    assert!(
        timed_out
            .iter()
            .all(|id| fault.affected_traces.contains(id))
    );
    assert!(fault.affected_traces.len() >= timed_out.len());
}

#[test]
fn consumer_stall_grows_queue_lag_while_request_traces_look_fine() {
    let (t, truth) = run(with_fault(
        "notifications",
        None,
        4_000,
        8_000,
        FaultEffect::ConsumerStall,
    ));
    // Queue metrics, as RabbitMQ's Prometheus plugin shows them: the stalled consumers hold
    // their four prefetched messages unacknowledged, and ready messages and the head
    // message's age climb through the window by about the publish rate, then drain.
    let depth: Vec<u32> = t.metrics.queues.iter().map(|q| q.depth).collect();
    let unacked: Vec<u32> = t.metrics.queues.iter().map(|q| q.unacked).collect();
    assert!(unacked[4..8].iter().all(|u| *u == 4), "{unacked:?}");
    // Before the window, and again after it, the consumers are not all held: a sample finds
    // a message or two in hand (all four at once only in a rare burst).
    assert!(
        unacked[..4].iter().filter(|u| **u < 4).count() >= 3 && unacked[9..].iter().any(|u| *u < 4),
        "{unacked:?}"
    );
    let lag_s: Vec<f64> = t
        .metrics
        .queues
        .iter()
        .map(|q| q.lag_us as f64 / 1e6)
        .collect();
    assert!(depth[..4].iter().all(|d| *d <= 2), "{depth:?}");
    // (The first second may only fill the stalled consumers' four prefetch slots.)
    assert!(
        depth[4] < depth[5] && depth[5..8].windows(2).all(|w| w[0] < w[1]),
        "{depth:?}"
    );
    assert!(depth[7] > 25, "{depth:?}"); // 38 or more over 200 seeds
    // The head message's age grows a second a second: nothing is taken from the queue.
    assert!(lag_s[7] > 2.0 && lag_s[3] < 0.5, "{lag_s:?}");
    assert!(
        (lag_s[6] - lag_s[5] - 1.0).abs() < 1e-6 && (lag_s[7] - lag_s[6] - 1.0).abs() < 1e-6,
        "{lag_s:?}"
    );
    assert!(depth[10] <= 2, "{depth:?}");
    let prometheus = faultline_engine::export::prometheus(&t);
    assert!(prometheus.contains(
        "faultline_queue_head_message_age_seconds{broker=\"queue\",exchange=\"order.created\",queue=\"notifications.order.created\"}"
    ));
    // Producers are unaffected: orders publishes and answers as before.
    assert_eq!(traces(&t, "peer.service=queue error=true"), 0);
    let create = red(&t, "orders", Some("create"));
    assert!(create[4..8].iter().all(|p| p.error_ratio == 0.0));
    // The consumers' own RED: nothing processed in the window, a burst when it ends.
    let send = red(&t, "notifications", Some("process order.created"));
    assert!(
        send[5..8].iter().all(|p| p.requests_per_s == 0.0),
        "{send:?}"
    );
    assert!(send[8].requests_per_s > 2.0 * send[2].requests_per_s);
    // In trace search, the delayed messages make long traces: the consumer span starts
    // seconds after its producer span ended.
    let q = TraceQuery {
        service: Some("notifications".into()),
        min_duration: Some(faultline_engine::Duration::from_secs(1)),
        limit: 100_000,
        ..TraceQuery::default()
    };
    let delayed = search_traces(&t, &q).len();
    // About 45 messages published in the first three seconds of the stall; none when healthy.
    assert!(delayed > 25, "{delayed}");
    let stall = &truth.faults[0];
    assert_eq!(stall.kind, "consumer_stall");
    assert!(stall.first_effect.unwrap() >= SimTime::from_ms(4_000));
    assert!(stall.first_effect.unwrap() < SimTime::from_ms(4_500));
    // The traces whose message waited for the stall: sent before it ended, their consumer span
    // starts well after the producer span that published it ended (a healthy gap is about a
    // millisecond; tens of them, rarely, when all four consumers are busy).
    let producer_end: std::collections::BTreeMap<_, _> = t
        .spans
        .iter()
        .filter(|s| s.kind == SpanKind::Producer)
        .map(|s| (s.span_id, s.end().unwrap()))
        .collect();
    let mut deliveries: Vec<(SimTime, SimTime, faultline_engine::telemetry::TraceId)> = t
        .spans
        .iter()
        .filter(|s| s.kind == SpanKind::Consumer)
        .map(|s| (producer_end[&s.parent.unwrap()], s.start, s.trace_id))
        .collect();
    deliveries.sort();
    let wait = |&(sent, start, _): &(SimTime, SimTime, _)| start.since(sent).0;
    // Nothing sent in the window is processed in it.
    let in_window =
        |sent: SimTime| sent >= SimTime::from_ms(4_000) && sent < SimTime::from_ms(8_000);
    assert!(
        deliveries
            .iter()
            .filter(|d| in_window(d.0))
            .all(|d| d.1 >= SimTime::from_ms(8_000))
    );
    // Drained: the first message sent after the window that went straight through.
    let drained = deliveries
        .iter()
        .find(|d| d.0 >= SimTime::from_ms(8_000) && wait(d) < 5_000)
        .expect("the backlog drains")
        .0;
    assert!(drained < SimTime::from_ms(10_000), "{drained:?}");
    let waited: std::collections::BTreeSet<_> = deliveries
        .iter()
        .filter(|d| {
            wait(d) > 20_000 && d.1 > SimTime::from_ms(4_000) && d.0 < SimTime::from_ms(8_000)
        })
        .map(|d| d.2)
        .collect();
    assert!(waited.len() >= delayed, "{} < {delayed}", waited.len());
    // All of them, and some sent after it that queued behind its backlog: nothing else.
    assert!(waited.is_subset(&stall.affected_traces));
    let behind: std::collections::BTreeSet<_> = deliveries
        .iter()
        .filter(|d| d.1 > SimTime::from_ms(4_000) && d.0 <= drained)
        .map(|d| d.2)
        .collect();
    assert!(stall.affected_traces.is_subset(&behind));
}

#[test]
fn a_saga_undoes_a_timed_out_charge_that_went_through_and_counts_by_the_ledger() {
    // Payments answers after the orders-to-payments timeout (1 s): each charge times out on
    // the caller's side yet goes through. The saga must treat the step as maybe done and
    // refund it; the refund itself times out from the caller's view but lands too.
    let mut scenario = default_mesh(30.0, 8_000);
    scenario.faults = vec![FaultSpec {
        service: "payments".into(),
        instance: None,
        from_ms: 0,
        until_ms: 20_000,
        effect: FaultEffect::Latency { extra_ms: 1_050 },
    }];
    let (t, truth) = run(scenario);
    assert!(truth.sagas_failed > 10, "{}", truth.sagas_failed);
    let charged = logs(&t, r#"{service="payments"} |= "payment charged""#) as u32;
    assert!(charged >= truth.sagas_failed, "{charged}");
    assert_eq!(
        truth.refunds, charged,
        "every charge that landed was refunded"
    );
    // The orchestrator saw its refund time out and reported the saga stuck, but the ledger
    // says otherwise: nothing is left in effect.
    assert!(logs(&t, r#"{service="orders"} |= "saga compensation failed""#) > 0);
    assert!(
        truth.saga_steps_left.is_empty(),
        "{:?}",
        truth.saga_steps_left
    );
    assert_eq!(truth.sagas_compensated, truth.sagas_failed);
}

#[test]
fn a_saga_that_fails_after_its_last_step_is_counted_with_its_steps_in_effect() {
    // The orchestrator itself fails half its answers after doing all its steps.
    let (t, truth) = run(with_fault(
        "orders",
        None,
        0,
        20_000,
        FaultEffect::ErrorRate { rate: 0.5 },
    ));
    let failed_creates = traces(&t, "http.route=create http.response.status_code=500") as u32;
    assert!(failed_creates > 10, "{failed_creates}");
    assert_eq!(truth.sagas_failed, failed_creates);
    assert_eq!(truth.sagas_compensated, 0);
    for step in ["database:insert", "inventory:reserve", "payments:charge"] {
        assert_eq!(truth.saga_steps_left[step], failed_creates, "{step}");
    }
}

#[test]
fn a_charge_repeated_under_dropped_context_is_still_a_duplicate_of_its_order() {
    // Charges that time out and are retried without a key, by a caller that also drops trace
    // context: each attempt lands in a trace of its own, yet both charge the same order.
    let mut scenario = default_mesh(50.0, 12_000);
    scenario.faults = vec![
        FaultSpec::new(
            "payments",
            None,
            0,
            12_000,
            FaultEffect::Latency { extra_ms: 930 },
        ),
        FaultSpec::new("orders", None, 0, 12_000, FaultEffect::NonIdempotentRetry),
        FaultSpec::new("orders", None, 0, 12_000, FaultEffect::ContextDropped),
    ];
    let (t, truth) = run(scenario);
    assert!(truth.duplicate_charges > 5, "{}", truth.duplicate_charges);
    // No trace holds two charges: trace ids alone would miss every one of them.
    let charged = logql::parse(r#"{service="payments"} |= "payment charged""#)
        .unwrap()
        .run(&t);
    let mut per_trace = std::collections::BTreeMap::new();
    for i in charged {
        *per_trace.entry(t.logs[i as usize].trace_id).or_insert(0u32) += 1;
    }
    assert!(per_trace.values().all(|n| *n == 1));
}
