//! Out-of-memory kills of consumer and server instances under stress (ported from a review):
//! no span ends twice, and messages a killed consumer held are requeued by the broker, never
//! failed or dead-lettered for it.

use faultline_engine::mesh::default_mesh;
use faultline_engine::scenario::*;
use std::collections::BTreeMap;

#[test]
fn oom_stress() {
    for seed in 1..25u64 {
        let mut s = default_mesh(40.0, 15_000);
        for svc in s.services.iter_mut() {
            if ["orders", "notifications", "inventory"].contains(&svc.name.as_str()) {
                svc.gc = Some(GcSpec {
                    heap_mb: 256,
                    live_mb: 64,
                    alloc_mb_per_s: 100,
                    pause_ms_per_gb: 200,
                    restart_ms: 1 + seed * 97 % 3_000,
                });
            }
            if let Some(c) = svc.consumer.as_mut() {
                c.max_deliveries = 1 + (seed % 3) as u16;
                svc.instances = 2;
            }
            for op in svc.operations.iter_mut() {
                for st in op.steps.iter_mut() {
                    if let Step::Call { policy, .. } = st {
                        policy.bulkhead = Some(faultline_engine::edge::BulkheadPolicy {
                            max_concurrent: 2,
                            max_queue: 2,
                        });
                        if seed % 2 == 0 {
                            policy.retries = 2;
                            policy.timeout_ms = Some(150);
                        }
                    }
                }
            }
        }
        for name in ["orders", "notifications", "inventory"] {
            s.faults.push(FaultSpec::new(
                name,
                Some(0),
                500,
                12_000,
                FaultEffect::MemoryLeak {
                    mb_per_s: 80 + seed as u32 * 10,
                },
            ));
        }
        s.faults.push(FaultSpec::new(
            "notifications",
            Some(0),
            1_000,
            6_000,
            FaultEffect::ConsumerStall,
        ));
        s.faults.push(FaultSpec::new(
            "notifications",
            Some(1),
            2_000,
            4_000,
            FaultEffect::Crash,
        ));
        assert!(s.validate().is_empty(), "{:?}", s.validate());
        let (t, truth) = faultline_engine::Simulation::new(s, seed).unwrap().finish();
        let ends = [
            "request completed",
            "request failed",
            "request refused",
            "request rejected, queue full",
            "message processed",
            "message processing failed",
        ];
        let mut per_span: BTreeMap<_, u32> = BTreeMap::new();
        for l in &t.logs {
            if ends.contains(&t.text(l.message)) {
                *per_span.entry(l.span_id).or_default() += 1;
            }
        }
        let dup: Vec<_> = per_span.iter().filter(|(_, n)| **n > 1).collect();
        assert!(dup.is_empty(), "seed {seed}: spans ended twice: {dup:?}");
        let kills = t
            .logs
            .iter()
            .filter(|l| t.text(l.message) == "out of memory: heap exhausted")
            .count();
        let q = t.metrics.queues.last().unwrap();
        let open = t.spans.iter().filter(|s| s.end().is_none()).count();
        let figures = format!(
            "seed {seed}: kills={kills} pub={} cons={} dl={} depth={} unacked={} redel={} open_spans={open} truth_dl={} truth_redel={}",
            q.published_total,
            q.consumed_total,
            q.dead_lettered_total,
            q.depth,
            q.unacked,
            q.redelivered_total,
            truth.messages_dead_lettered,
            truth.messages_redelivered
        );
        assert!(kills > 0, "{figures}");
        assert_eq!(open, 0, "{figures}");
        // Processing never fails here: only kills took messages away, and the broker gave
        // every one back.
        assert_eq!(
            (q.dead_lettered_total, truth.messages_dead_lettered),
            (0, 0),
            "{figures}"
        );
        assert_eq!((q.depth, q.unacked), (0, 0), "{figures}");
        assert_eq!(q.published_total, q.consumed_total, "{figures}");
        assert_eq!(
            q.redelivered_total,
            u64::from(truth.messages_redelivered),
            "{figures}"
        );
    }
}

#[test]
fn parked_messages_of_a_killed_consumer() {
    let mut s = default_mesh(50.0, 15_000);
    let n = s
        .services
        .iter_mut()
        .find(|x| x.name == "notifications")
        .unwrap();
    n.instances = 2;
    n.gc = Some(GcSpec {
        heap_mb: 512,
        live_mb: 64,
        alloc_mb_per_s: 64,
        pause_ms_per_gb: 40,
        restart_ms: 500,
    });
    s.faults.push(FaultSpec::new(
        "notifications",
        Some(0),
        1_000,
        12_000,
        FaultEffect::ConsumerStall,
    ));
    s.faults.push(FaultSpec::new(
        "notifications",
        Some(0),
        1_000,
        2_500,
        FaultEffect::MemoryLeak { mb_per_s: 400 },
    ));
    assert!(s.validate().is_empty(), "{:?}", s.validate());
    let (t, _truth) = faultline_engine::Simulation::new(s, 7).unwrap().finish();
    let kill = t
        .logs
        .iter()
        .find(|l| t.text(l.message) == "out of memory: heap exhausted")
        .map(|l| l.time);
    let restarted = t
        .logs
        .iter()
        .find(|l| t.text(l.message) == "instance restarted")
        .map(|l| l.time);
    assert!(restarted > kill, "{kill:?} {restarted:?}");
    let late: Vec<_> = t
        .spans
        .iter()
        .filter(|s| {
            s.kind == faultline_engine::telemetry::SpanKind::Consumer
                && s.instance == 0
                && s.start.0 >= 12_000_000
        })
        .map(|s| {
            let publish = t
                .spans
                .iter()
                .find(|p| Some(p.span_id) == s.parent)
                .map(|p| p.start.0 / 1000);
            (s.start.0 / 1000, publish)
        })
        .filter(|(_, p)| p.is_some_and(|p| p < kill.unwrap().0 / 1000))
        .collect();
    // Their messages were delivered to the process that was killed: the broker requeued them
    // at the kill, so none waits out the stall on the restarted instance.
    assert!(late.is_empty(), "{late:?}");
}

#[test]
fn a_kill_dead_letters_with_max_deliveries_1() {
    let mut s = default_mesh(50.0, 12_000);
    let n = s
        .services
        .iter_mut()
        .find(|x| x.name == "notifications")
        .unwrap();
    n.operations[0].steps = vec![Step::Work {
        p50_ms: 200.0,
        p99_ms: 400.0,
    }];
    n.consumer.as_mut().unwrap().max_deliveries = 1;
    n.gc = Some(GcSpec {
        heap_mb: 512,
        live_mb: 64,
        alloc_mb_per_s: 64,
        pause_ms_per_gb: 40,
        restart_ms: 2_000,
    });
    s.faults.push(FaultSpec::new(
        "notifications",
        None,
        1_000,
        4_000,
        FaultEffect::MemoryLeak { mb_per_s: 300 },
    ));
    let (t, truth) = faultline_engine::Simulation::new(s, 5).unwrap().finish();
    let q = t.metrics.queues.last().unwrap();
    assert_eq!(q.published_total, q.consumed_total);
    assert_eq!(
        truth.messages_dead_lettered, 0,
        "messages lost to a consumer's OOM kill, never failed by processing"
    );
}
