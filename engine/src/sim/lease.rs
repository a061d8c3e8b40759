//! Scheduled jobs and distributed locks with a lease and fencing tokens: an operation with a
//! `lock` takes it before its first step and writes under it when it succeeds; the storage
//! checks the write's token when the lock asks for fencing. Also the `lease_expiry` fault.

use super::{Event, InvId, Simulation};
use crate::scenario::FaultEffect;
use crate::telemetry::{Level, SpanKind, SpanStatus, Sym, TraceId, Value, smallvec};
use crate::time::{Duration, SimTime};

/// One lock, shared by every operation that names it.
struct Lock {
    name: Sym,
    /// Whether the storage its holders write to checks their fencing tokens.
    fencing: bool,
    /// The holder's invocation, and where it runs, until `expires`.
    holder: Option<(InvId, u16, u16)>,
    expires: SimTime,
    /// The last fencing token handed out.
    token: u64,
    /// The highest token the storage has seen on a write.
    highest_written: u64,
}

/// A request or job run that holds (or held) a lock.
struct Holding {
    inv: InvId,
    lock: u16,
    token: u64,
    /// The lease_expiry fault that paused it while it held the lock.
    fault: Option<usize>,
}

#[derive(Default)]
pub(super) struct Locks {
    /// Whether any operation takes a lock or runs as a job.
    pub enabled: bool,
    /// Lock index per (service, operation).
    by_operation: Vec<Vec<Option<u16>>>,
    locks: Vec<Lock>,
    holdings: Vec<Holding>,
    /// Job runs in progress, by invocation.
    running: Vec<InvId>,
    /// Of those, the ones that found the lock held and skip their work.
    skipped: Vec<InvId>,
}

/// Attribute and field names.
const LOCK_NAME: &str = "lock.name";
const FENCING_TOKEN: &str = "lock.fencing_token";

impl Simulation {
    /// Names the locks and schedules each job's first run on each instance, spread over its
    /// period so the instances take turns.
    pub(super) fn start_jobs(&mut self) {
        let mut by_operation = Vec::new();
        let mut locks: Vec<Lock> = Vec::new();
        let mut first = Vec::new();
        for (s, service) in self.scenario.services.iter().enumerate() {
            let mut ops = Vec::new();
            for (o, op) in service.operations.iter().enumerate() {
                ops.push(op.lock.as_ref().map(|lock| {
                    let name = self.telemetry.strings.intern(&lock.name);
                    match locks.iter().position(|l| l.name == name) {
                        Some(i) => i as u16,
                        None => {
                            locks.push(Lock {
                                name,
                                // Validated: every operation naming a lock agrees on this.
                                fencing: lock.fencing,
                                holder: None,
                                expires: SimTime::ZERO,
                                token: 0,
                                highest_written: 0,
                            });
                            (locks.len() - 1) as u16
                        }
                    }
                }));
                if let Some(every_ms) = op.every_ms {
                    let n = u64::from(service.instances);
                    for i in 0..service.instances {
                        let at = Duration::from_ms(every_ms * (u64::from(i) + 1) / n);
                        first.push((at, s as u16, o as u16, i));
                    }
                }
            }
            by_operation.push(ops);
        }
        self.locks.enabled = !locks.is_empty() || !first.is_empty();
        (self.locks.by_operation, self.locks.locks) = (by_operation, locks);
        for (at, service, operation, instance) in first {
            self.schedule(
                at,
                Event::Job {
                    service,
                    operation,
                    instance,
                },
            );
        }
    }

    /// A job's timer fires on one instance: its run starts as a trace of its own, unless the
    /// instance is down, when the run is skipped.
    pub(super) fn on_job(&mut self, service: u16, operation: u16, instance: u16) {
        if self.now.0 >= self.scenario.duration_ms * 1_000 {
            return;
        }
        if self.instance_crashed(service, instance) {
            self.schedule_job(service, operation, instance);
            return;
        }
        let trace_id = TraceId(self.random.trace_id());
        let inv = self.new_invocation(service, instance, operation, trace_id, None, None);
        let span = self.invocations[inv.0 as usize].span as usize;
        // A job's root is an internal span named after it, with no HTTP attributes.
        self.telemetry.spans[span].kind = SpanKind::Internal;
        self.telemetry.attributes_mut(span).clear();
        self.locks.running.push(inv);
        self.schedule(Duration::ZERO, Event::Arrive(inv));
    }

    /// Whether the invocation is a scheduled job's run (not a request).
    pub(super) fn is_job_run(&self, inv: InvId) -> bool {
        self.locks.running.contains(&inv)
    }

    /// Whether the job run found its lock held elsewhere and skipped its work.
    pub(super) fn job_run_skipped(&self, inv: InvId) -> bool {
        self.locks.skipped.contains(&inv)
    }

    fn schedule_job(&mut self, service: u16, operation: u16, instance: u16) {
        let every_ms = self.scenario.services[usize::from(service)].operations
            [usize::from(operation)]
        .every_ms
        .expect("only jobs are scheduled");
        // Jobs stop with the arrivals, so a run ends.
        if self.now.after(Duration::from_ms(every_ms)).0 >= self.scenario.duration_ms * 1_000 {
            return;
        }
        self.schedule(
            Duration::from_ms(every_ms),
            Event::Job {
                service,
                operation,
                instance,
            },
        );
    }

    /// Before its first step, an operation with a lock takes it: free or expired, it becomes
    /// the holder with the next fencing token; held, a job skips its run and a request fails
    /// with 409.
    pub(super) fn take_lock(&mut self, inv: InvId) {
        let i = &self.invocations[inv.0 as usize];
        let (service, instance, operation, trace, span) =
            (i.service, i.instance, i.operation, i.trace_id, i.span);
        let Some(index) = self.locks.by_operation[usize::from(service)][usize::from(operation)]
        else {
            return;
        };
        let spec = self.scenario.services[usize::from(service)].operations[usize::from(operation)]
            .lock
            .clone()
            .expect("an operation with a lock index has a lock");
        let now = self.now;
        let lock = &self.locks.locks[usize::from(index)];
        let (name, held_by, expired, old_token) =
            (lock.name, lock.holder, lock.expires <= now, lock.token);
        let parent = self.telemetry.spans[span as usize].span_id;
        let acquire = self.intern_static("acquire lease");
        let child = self.open_span(
            trace,
            Some(parent),
            service,
            instance,
            acquire,
            SpanKind::Internal,
        );
        let keys = (
            self.intern_static(LOCK_NAME),
            self.intern_static(FENCING_TOKEN),
            self.intern_static("lock.lease_ms"),
            self.intern_static("lock.acquired"),
            self.intern_static("lock.holder"),
        );
        let context = Some((trace, self.telemetry.spans[child as usize].span_id));
        if let Some((_, holder_service, holder_instance)) = held_by {
            let holder = self.instance_sym(holder_service, holder_instance);
            if !expired {
                self.telemetry.spans[child as usize].set_end(now);
                self.telemetry.attributes_mut(child as usize).extend([
                    (keys.0, Value::Str(name)),
                    (keys.3, Value::Bool(false)),
                    (keys.4, Value::Str(holder)),
                ]);
                let fields = smallvec![(keys.0, Value::Str(name)), (keys.4, Value::Str(holder))];
                if self.locks.running.contains(&inv) {
                    self.log(
                        service,
                        instance,
                        Level::Debug,
                        context,
                        "lease held elsewhere, run skipped",
                        fields,
                    );
                    let steps =
                        self.services[usize::from(service)].plans[usize::from(operation)].len();
                    self.invocations[inv.0 as usize].step = steps as u16;
                    self.locks.skipped.push(inv);
                } else {
                    self.log(
                        service,
                        instance,
                        Level::Warn,
                        context,
                        "lease held elsewhere",
                        fields,
                    );
                    self.invocations[inv.0 as usize].failure = Some(409);
                }
                return;
            }
            let fields = smallvec![
                (keys.0, Value::Str(name)),
                (keys.4, Value::Str(holder)),
                (keys.1, Value::int(old_token as i64)),
            ];
            self.log(
                service,
                instance,
                Level::Warn,
                context,
                "lease expired",
                fields,
            );
        }
        let token = old_token + 1;
        let lock = &mut self.locks.locks[usize::from(index)];
        lock.holder = Some((inv, service, instance));
        lock.token = token;
        lock.expires = now.after(Duration::from_ms(spec.lease_ms));
        self.telemetry.spans[child as usize].set_end(now);
        self.telemetry.attributes_mut(child as usize).extend([
            (keys.0, Value::Str(name)),
            (keys.3, Value::Bool(true)),
            (keys.1, Value::int(token as i64)),
            (keys.2, Value::int(spec.lease_ms as i64)),
        ]);
        let fields = smallvec![
            (keys.0, Value::Str(name)),
            (keys.1, Value::int(token as i64)),
            (keys.2, Value::int(spec.lease_ms as i64)),
        ];
        self.log(
            service,
            instance,
            Level::Info,
            context,
            "lease acquired",
            fields,
        );
        // The fault: a full collection stops the holder's world for longer than its lease.
        let fault = self.active_fault_indexes(service, instance).find(|f| {
            matches!(
                self.scenario.faults[*f].effect,
                FaultEffect::LeaseExpiry { .. }
            )
        });
        if let Some(f) = fault {
            self.fault_acted(f, trace);
            self.schedule(
                Duration::ZERO,
                Event::Stall {
                    service,
                    instance,
                    fault: f as u16,
                },
            );
        }
        self.locks.holdings.push(Holding {
            inv,
            lock: index,
            token,
            fault,
        });
    }

    /// The lease_expiry fault's pause begins, just after the lock was taken (unless the
    /// instance was killed meanwhile: a process that is gone does not pause).
    pub(super) fn on_stall(&mut self, service: u16, instance: u16, fault: u16) {
        let FaultEffect::LeaseExpiry { pause_ms } = self.scenario.faults[usize::from(fault)].effect
        else {
            return;
        };
        if self.instance_down(service, instance) {
            return;
        }
        self.full_collection(
            service,
            instance,
            Duration::from_ms(pause_ms),
            usize::from(fault),
        );
    }

    /// When an operation that took a lock ends: if it succeeded it writes under its token (the
    /// storage rejecting a stale one when fencing, with 409), then it releases the lock if it
    /// still holds it (unless its process was killed: the lease runs out instead). A job's next
    /// run is scheduled. Returns the status after the write.
    pub(super) fn release_lock(&mut self, inv: InvId, status: u16) -> u16 {
        let mut status = status;
        if let Some(at) = self.locks.holdings.iter().position(|h| h.inv == inv) {
            let holding = self.locks.holdings.swap_remove(at);
            if status == 200 {
                status = self.fenced_write(&holding);
            }
            let i = &self.invocations[inv.0 as usize];
            let (service, instance, trace, span) = (i.service, i.instance, i.trace_id, i.span);
            // A process killed out of memory releases nothing: its lease has to run out.
            let gone = self.instance_down(service, instance);
            let lock = &mut self.locks.locks[usize::from(holding.lock)];
            let name = lock.name;
            match lock.holder {
                Some((holder, _, _)) if holder == inv && gone => {}
                Some((holder, _, _)) if holder == inv => lock.holder = None,
                _ if gone => {}
                _ => {
                    // Its lease ran out while it worked, and someone else may hold it now.
                    let span_id = self.telemetry.spans[span as usize].span_id;
                    let fields = smallvec![
                        (self.intern_static(LOCK_NAME), Value::Str(name)),
                        (
                            self.intern_static(FENCING_TOKEN),
                            Value::int(holding.token as i64),
                        ),
                    ];
                    self.log(
                        service,
                        instance,
                        Level::Warn,
                        Some((trace, span_id)),
                        "lease lost before release",
                        fields,
                    );
                }
            }
        }
        if let Some(at) = self.locks.skipped.iter().position(|r| *r == inv) {
            self.locks.skipped.swap_remove(at);
        }
        if let Some(at) = self.locks.running.iter().position(|r| *r == inv) {
            self.locks.running.swap_remove(at);
            let i = &self.invocations[inv.0 as usize];
            let (service, operation, instance) = (i.service, i.operation, i.instance);
            self.schedule_job(service, operation, instance);
        }
        status
    }

    /// The write an operation makes under its lock, carrying its fencing token.
    fn fenced_write(&mut self, holding: &Holding) -> u16 {
        let i = &self.invocations[holding.inv.0 as usize];
        let (service, instance, trace, span) = (i.service, i.instance, i.trace_id, i.span);
        let lock = &self.locks.locks[usize::from(holding.lock)];
        let (name, fencing, newest, highest) =
            (lock.name, lock.fencing, lock.token, lock.highest_written);
        let parent = self.telemetry.spans[span as usize].span_id;
        let write = self.intern_static("write");
        let child = self.open_span(
            trace,
            Some(parent),
            service,
            instance,
            write,
            SpanKind::Internal,
        );
        let (name_key, token_key) = (
            self.intern_static(LOCK_NAME),
            self.intern_static(FENCING_TOKEN),
        );
        let token = Value::int(holding.token as i64);
        let now = self.now;
        self.telemetry
            .attributes_mut(child as usize)
            .extend([(name_key, Value::Str(name)), (token_key, token)]);
        let s = &mut self.telemetry.spans[child as usize];
        s.set_end(now);
        let context = Some((trace, s.span_id));
        if fencing && holding.token < highest {
            let (error_key, highest_key) = (
                self.intern_static("error.type"),
                self.intern_static("lock.highest_token"),
            );
            let stale = self.intern_static("stale_fencing_token");
            self.telemetry.spans[child as usize].status = SpanStatus::Error;
            self.telemetry
                .attributes_mut(child as usize)
                .push((error_key, Value::Str(stale)));
            let fields = smallvec![
                (name_key, Value::Str(name)),
                (token_key, token),
                (highest_key, Value::int(highest as i64)),
            ];
            self.log(
                service,
                instance,
                Level::Warn,
                context,
                "write rejected: stale fencing token",
                fields,
            );
            self.truth.stale_writes_rejected += 1;
            if let Some(f) = holding.fault {
                self.fault_acted(f, trace);
            }
            return 409;
        }
        let lock = &mut self.locks.locks[usize::from(holding.lock)];
        lock.highest_written = lock.highest_written.max(holding.token);
        let fields = smallvec![(name_key, Value::Str(name)), (token_key, token)];
        self.log(
            service,
            instance,
            Level::Info,
            context,
            "write committed",
            fields,
        );
        if holding.token < newest {
            // Another holder was granted the lock since: two holders both wrote.
            self.truth.stale_writes_accepted += 1;
            if let Some(f) = holding.fault {
                self.fault_acted(f, trace);
            }
        }
        200
    }

    /// `payments-0`: an instance as logs and resources name it.
    fn instance_sym(&mut self, service: u16, instance: u16) -> Sym {
        let name = format!(
            "{}-{instance}",
            self.scenario.services[usize::from(service)].name
        );
        self.telemetry.strings.intern(&name)
    }
}

#[cfg(test)]
mod tests {
    use crate::mesh::default_mesh;
    use crate::scenario::{FaultEffect, FaultSpec, Scenario};
    use crate::telemetry::{Telemetry, Value};
    use crate::{GroundTruth, Simulation};

    /// The default mesh, payments-0 paused 5 s each time it takes the settlement lock between
    /// 4 and 5 s (once: it takes it at 4.5 s).
    fn paused_holder(fencing: bool) -> Scenario {
        let mut s = default_mesh(50.0, 12_000);
        for op in &mut s.services[3].operations {
            if let Some(lock) = &mut op.lock {
                lock.fencing = fencing;
            }
        }
        s.faults.push(FaultSpec {
            service: "payments".into(),
            instance: Some(0),
            from_ms: 4_000,
            until_ms: 5_000,
            effect: FaultEffect::LeaseExpiry { pause_ms: 5_000 },
        });
        s
    }

    /// (time in ms, instance, fencing token) of every line with `message`.
    fn tokens(t: &Telemetry, message: &str) -> Vec<(u64, u16, i64)> {
        t.logs
            .iter()
            .filter(|l| t.text(l.message) == message)
            .map(|l| {
                let token = l.fields.iter().find_map(|(k, v)| match v {
                    Value::Int(n) if t.text(*k) == "lock.fencing_token" => Some(n.get()),
                    _ => None,
                });
                (l.time.0 / 1_000, l.instance, token.expect("a token"))
            })
            .collect()
    }

    fn run(s: Scenario) -> (Telemetry, GroundTruth) {
        Simulation::new(s, 17).unwrap().finish()
    }

    #[test]
    fn locks_runtimes_and_their_faults_are_checked_at_the_boundary() {
        let mut s = default_mesh(10.0, 1_000);
        let gc = s.services[2].gc.as_mut().unwrap(); // orders
        (gc.live_mb, gc.restart_ms) = (gc.heap_mb, 0);
        s.services[3].operations[2].every_ms = Some(1);
        s.services[3].operations[2].lock.as_mut().unwrap().lease_ms = 0;
        let fault = |service: &str, effect| FaultSpec {
            service: service.into(),
            instance: None,
            from_ms: 0,
            until_ms: 10,
            effect,
        };
        s.faults = vec![
            fault("auth", FaultEffect::LeaseExpiry { pause_ms: 100 }),
            fault("orders", FaultEffect::LeaseExpiry { pause_ms: 0 }),
            fault("auth", FaultEffect::MemoryLeak { mb_per_s: 1 }),
        ];
        let fields: Vec<String> = s.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "services[2].gc.live_mb",
                "services[2].gc.restart_ms",
                "services[3].operations[2].every_ms",
                "services[3].operations[2].lock.lease_ms",
                "faults[0].service",
                "faults[1].effect.pause_ms",
                "faults[1].service",
                "faults[2].service",
            ]
        );
    }

    #[test]
    fn every_operation_taking_a_lock_agrees_on_fencing() {
        // Regression: whether the storage checked tokens came from each writer's own setting.
        let mut s = default_mesh(10.0, 1_000);
        let (o, settle) = s.services[3]
            .operations
            .iter()
            .enumerate()
            .find(|(_, op)| op.lock.is_some())
            .map(|(o, op)| (o, op.clone()))
            .expect("payments settles under a lock");
        let fencing = settle.lock.as_ref().unwrap().fencing;
        let mut other = settle;
        other.name = "settle again".into();
        other.lock.as_mut().unwrap().fencing = !fencing;
        s.services[3].operations.push(other);
        let errors = s.validate();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        let n = s.services[3].operations.len() - 1;
        assert_eq!(
            fields,
            [format!("services[3].operations[{n}].lock.fencing")]
        );
        assert!(
            errors[0]
                .problem
                .contains(&format!("services[3].operations[{o}]"))
        );
    }

    #[test]
    fn a_job_run_that_finds_the_lock_held_is_logged_as_skipped() {
        // payments-0 holds the lock, paused, from 4.5 s to 9.5 s under a 10 s lease:
        // payments-1's runs in between find it held.
        let mut s = paused_holder(true);
        for op in &mut s.services[3].operations {
            if let Some(lock) = &mut op.lock {
                lock.lease_ms = 10_000;
            }
        }
        let (t, _) = run(s);
        let skipped: Vec<_> = t
            .logs
            .iter()
            .filter(|l| t.text(l.message) == "job run skipped")
            .collect();
        assert!(!skipped.is_empty());
        // Each in a trace whose lease was held elsewhere, where nothing else ends the run.
        for line in skipped {
            let trace = line.trace_id;
            let ends: Vec<&str> = t
                .logs
                .iter()
                .filter(|l| l.trace_id == trace && t.text(l.message).starts_with("job run"))
                .map(|l| t.text(l.message))
                .collect();
            assert_eq!(ends, ["job run skipped"]);
            let refused = t.spans.iter().any(|s| {
                Some(s.trace_id) == trace
                    && t.text(s.operation) == "acquire lease"
                    && t.attributes(s)
                        .iter()
                        .any(|(k, v)| t.text(*k) == "lock.acquired" && *v == Value::Bool(false))
            });
            assert!(refused);
        }
    }

    #[test]
    fn a_holder_killed_out_of_memory_keeps_the_lock_until_its_lease_runs_out() {
        // Regression: the kill ended the holder's run as if it had returned, releasing the lock.
        let mut sim = Simulation::new(default_mesh(50.0, 12_000), 17).unwrap();
        let holder = |sim: &Simulation| sim.locks.locks[0].holder;
        while holder(&sim).is_none_or(|(_, service, instance)| (service, instance) != (3, 0)) {
            assert!(sim.now().0 < 10_000_000, "payments-0 takes the lock");
            sim.step_until(sim.now().after(crate::time::Duration::from_ms(1)));
        }
        let (inv, now) = (holder(&sim).unwrap().0, sim.now());
        let until = now.after(crate::time::Duration::from_ms(5_000));
        sim.kill(3, 0, until, "out_of_memory", None);
        assert_eq!(holder(&sim).map(|h| h.0), Some(inv));
        let (t, _) = sim.finish();
        // The next taker finds the lease run out, the dead instance still named as holder.
        let expired = tokens(&t, "lease expired");
        assert!(!expired.is_empty());
        assert_eq!(expired[0].1, 1);
        assert!(expired[0].0 >= now.0 / 1_000 + 1_000, "{expired:?}");
        let lost = t
            .logs
            .iter()
            .filter(|l| t.text(l.message) == "lease lost before release");
        assert_eq!(lost.count(), 0);
    }

    #[test]
    fn an_instance_that_is_down_does_not_stall() {
        // The stall is scheduled when the lock is taken; the instance may be killed out of
        // memory before it begins.
        let mut sim = Simulation::new(paused_holder(true), 17).unwrap();
        sim.step_until(crate::time::SimTime::from_ms(4_000));
        let heap = &mut sim.heaps.by_service[3][0];
        heap.down_until = crate::time::SimTime::from_ms(6_000);
        let (paused_until, lines) = (heap.paused_until, sim.telemetry.logs.len());
        sim.on_stall(3, 0, 0);
        assert_eq!(sim.heaps.by_service[3][0].paused_until, paused_until);
        assert_eq!(sim.telemetry.logs.len(), lines);
    }

    #[test]
    fn tokens_strictly_increase_and_healthy_holders_take_turns() {
        let (t, truth) = run(default_mesh(50.0, 30_000));
        let acquired = tokens(&t, "lease acquired");
        assert!(acquired.len() >= 15, "{acquired:?}");
        assert!(acquired.windows(2).all(|w| w[1].2 == w[0].2 + 1));
        // Both instances settle, each write lands, and nobody ever waited out a lease.
        assert!(acquired.iter().any(|a| a.1 == 0) && acquired.iter().any(|a| a.1 == 1));
        assert_eq!(tokens(&t, "write committed").len(), acquired.len());
        assert!(t.logs.iter().all(|l| t.text(l.message) != "lease expired"));
        assert_eq!(
            (truth.stale_writes_accepted, truth.stale_writes_rejected),
            (0, 0)
        );
    }

    #[test]
    fn a_stale_write_is_rejected_with_fencing_and_lands_without() {
        let (t, truth) = run(paused_holder(true));
        let rejected = tokens(&t, "write rejected: stale fencing token");
        assert_eq!(rejected.len(), 1, "{rejected:?}");
        let (at, instance, token) = rejected[0];
        assert_eq!(instance, 0);
        // Another instance took the lock after the lease ran out, with the next token.
        let expired = tokens(&t, "lease expired");
        assert_eq!(expired.len(), 1);
        assert_eq!((expired[0].1, expired[0].2), (1, token));
        assert!(tokens(&t, "lease acquired").contains(&(expired[0].0, 1, token + 1)));
        assert!(expired[0].0 < at);
        assert_eq!(
            (truth.stale_writes_accepted, truth.stale_writes_rejected),
            (0, 1)
        );
        let fault = &truth.faults[0];
        assert_eq!(fault.kind, "lease_expiry");
        assert!(fault.first_effect.unwrap().0 >= 4_000_000);

        let (t, truth) = run(paused_holder(false));
        assert!(tokens(&t, "write rejected: stale fencing token").is_empty());
        // Both holders wrote: the stale token lands after a newer one.
        let committed = tokens(&t, "write committed");
        let stale = committed
            .iter()
            .filter(|c| c.2 == token)
            .collect::<Vec<_>>();
        assert_eq!(stale.len(), 1);
        assert!(committed.iter().any(|c| c.2 > token && c.0 < stale[0].0));
        assert_eq!(
            (truth.stale_writes_accepted, truth.stale_writes_rejected),
            (1, 0)
        );
    }
}
