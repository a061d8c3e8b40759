//! Managed runtimes and dying processes: each instance of a service that declares `gc` fills its
//! heap, collects with a stop-the-world pause (while paused the instance's events wait, and work
//! in progress ends later by the pause), and is killed out of memory when its live heap fills
//! it; an `instance_crash` fault kills its instances' processes the same way. Either way every
//! request the process holds ends at once, silently (its callers see their connections reset),
//! and it restarts clean.

use super::{Event, InvId, NO_SPAN, Simulation};
use crate::metrics::RuntimeSample;
use crate::scenario::FaultEffect;
use crate::telemetry::{Level, ServiceId, SpanStatus, Value, smallvec};
use crate::time::{Duration, SimTime};

/// `error.type` of the requests and calls a process killed out of memory held.
const OUT_OF_MEMORY: &str = "out_of_memory";
/// `error.type` of the requests and calls a process that crashed held.
const CRASHED: &str = "crashed";
/// What an orchestrator reports for a container whose process died of a fault: Kubernetes'
/// `Error`, and 128 + SIGSEGV.
const CRASH_REASON: &str = "Error";
const CRASH_EXIT_CODE: i64 = 139;
/// What an orchestrator reports for a container killed out of memory (128 + SIGKILL).
const OOM_KILLED: &str = "OOMKilled";
const OOM_EXIT_CODE: i64 = 137;

/// A collection pausing the world this long or longer is logged as a warning.
const LONG_PAUSE_US: u64 = 100_000;
/// The shortest time between two collections, however fast the heap fills.
const COLLECTION_GAP_MIN_US: u64 = 1_000;
const KB_PER_MB: u64 = 1_024;

/// One instance's heap, collector and stalls.
#[derive(Default)]
pub(super) struct Heap {
    /// The world is stopped until then.
    pub paused_until: SimTime,
    /// Every pause so far, summed: work scheduled when this was lower ends later by the rise.
    pub paused_total_us: u64,
    /// The fault credited for the current pause, if one caused or lengthened it.
    pub pause_fault: Option<usize>,
    /// Killed (out of memory, or crashed): down until then, and requests that arrived at
    /// `killed_at` or before belonged to the dead process (all ended when it was killed).
    pub down_until: SimTime,
    pub killed_at: Option<SimTime>,
    /// How the last kill shows on the spans it ended: `error.type` (out of memory, crashed).
    pub kill_error: &'static str,
    /// The fault behind the last kill (a leak, a crash), credited for what the kill ends.
    pub kill_fault: Option<usize>,
    /// The process running, counted from 0: one more after each kill.
    pub process: u32,
    /// How many invocations and calls there were when the current process started: its
    /// requests and calls come after those.
    pub process_start: (u32, u32),
    /// The leak that grew this heap (and killed it, when it did).
    pub leak_fault: Option<usize>,
    /// Heap in use after the last collection (live data plus leaked), in KB.
    pub after_kb: u64,
    /// Leaked so far, in KB; counted in `after_kb` from the collection that found it.
    pub leaked_kb: u64,
    /// Allocation restarted then (the end of the last pause), at `rate_kb_per_s`.
    pub filling_since: SimTime,
    pub rate_kb_per_s: u64,
    /// Collections and pause time since the last metrics sample.
    pub collections: u32,
    pub pause_us: u64,
}

/// The heaps of every instance, by service then instance; empty for services with no `gc` and
/// no `instance_crash` fault (a crash needs the process bookkeeping, not the heap).
#[derive(Default)]
pub(super) struct Heaps {
    /// Whether any service has a runtime or a crash: without one, events are never checked for
    /// stalls.
    pub enabled: bool,
    /// No pause or restart of any instance lasts past this, and (unless `killed`) nothing
    /// was ever killed: from then on only work in progress needs checking for stalls.
    pub calm_from: SimTime,
    pub killed: bool,
    pub by_service: Vec<Vec<Heap>>,
}

impl Simulation {
    /// Sets up every heap and schedules each instance's first collection, staggered so the
    /// instances of a service do not collect in step.
    pub(super) fn start_heaps(&mut self) {
        let mut by_service = Vec::with_capacity(self.scenario.services.len());
        let mut first = Vec::new();
        for (s, service) in self.scenario.services.iter().enumerate() {
            let Some(gc) = &service.gc else {
                by_service.push(Vec::new());
                continue;
            };
            let (heap_kb, live_kb) = (
                u64::from(gc.heap_mb) * KB_PER_MB,
                u64::from(gc.live_mb) * KB_PER_MB,
            );
            let rate_kb_per_s = u64::from(gc.alloc_mb_per_s) * KB_PER_MB;
            let interval_us = fill_time_us(heap_kb - live_kb, rate_kb_per_s);
            let n = u64::from(service.instances);
            let heaps = (0..service.instances)
                .map(|i| {
                    // Instance i starts part-filled, so its first collection comes at
                    // (i + 1) / (n + 1) of a healthy interval.
                    let first_us = interval_us * (u64::from(i) + 1) / (n + 1);
                    first.push((s as u16, i, first_us));
                    // (At least the live data: the collection gap may outlast the fill.)
                    let filled_kb =
                        crate::time::saturating_mul(rate_kb_per_s, first_us) / 1_000_000;
                    Heap {
                        after_kb: heap_kb.saturating_sub(filled_kb).max(live_kb),
                        rate_kb_per_s,
                        ..Heap::default()
                    }
                })
                .collect();
            by_service.push(heaps);
        }
        // Crashes: each instance a fault crashes dies when its window opens.
        let mut crashes = Vec::new();
        for (f, fault) in self.scenario.faults.iter().enumerate() {
            if !matches!(fault.effect, FaultEffect::Crash)
                || fault.from_ms >= fault.until_ms
                || fault.from_ms >= self.scenario.duration_ms
            {
                continue;
            }
            let Some(s) = self
                .scenario
                .services
                .iter()
                .position(|s| s.name == fault.service)
            else {
                continue;
            };
            let instances = self.scenario.services[s].instances;
            if by_service[s].is_empty() {
                by_service[s] = (0..instances).map(|_| Heap::default()).collect();
            }
            for i in (0..instances).filter(|i| fault.instance.is_none_or(|n| n == *i)) {
                crashes.push((fault.from_ms, s as u16, i, f as u16));
            }
        }
        self.heaps.enabled = by_service.iter().any(|h| !h.is_empty());
        self.heaps.by_service = by_service;
        for (service, instance, at_us) in first {
            let event = Event::Collect {
                service,
                instance,
                process: 0,
            };
            self.schedule(Duration(at_us), event);
        }
        for (from_ms, service, instance, fault) in crashes {
            let event = Event::Crash {
                service,
                instance,
                fault,
            };
            self.schedule(Duration::from_ms(from_ms), event);
        }
    }

    /// Fault `fault` crashes an instance: its process dies now, every request it held with it
    /// (as in an out-of-memory kill, with `error.type=crashed`), and it is down, refusing
    /// connections, until the window closes, when it restarts.
    pub(super) fn on_crash(&mut self, service: u16, instance: u16, fault: usize) {
        let now = self.now;
        let until = SimTime::from_ms(self.scenario.faults[fault].until_ms);
        self.truth.faults[fault].first_effect.get_or_insert(now);
        let heap = self.heap(service, instance);
        let already_down = now < heap.down_until;
        heap.down_until = heap.down_until.max(until);
        if already_down {
            // No process to crash: it only stays down longer.
            self.schedule_restart(service, instance, until);
            return;
        }
        self.kill(service, instance, until, CRASHED, Some(fault));
        // A database, cache or broker is seen only through its callers: refused, reset.
        if self.services[usize::from(service)].role.instrumented() {
            let line = "instance crashed (exit 139)";
            self.orchestrator_line(service, instance, line, CRASH_REASON, CRASH_EXIT_CODE);
        }
        self.schedule_restart(service, instance, until);
    }

    /// The kill of an instance as an orchestrator reports it, on the instance's stream.
    fn orchestrator_line(
        &mut self,
        service: u16,
        instance: u16,
        message: &'static str,
        reason: &'static str,
        exit_code: i64,
    ) {
        let (reason_key, exit_key) = (
            self.intern_static("reason"),
            self.intern_static("exit_code"),
        );
        let reason = Value::Str(self.intern_static(reason));
        let fields = smallvec![(reason_key, reason), (exit_key, Value::int(exit_code))];
        self.log(service, instance, Level::Warn, None, message, fields);
    }

    fn schedule_restart(&mut self, service: u16, instance: u16, at: SimTime) {
        if at.0 < self.scenario.duration_ms * 1_000 {
            self.schedule(at.since(self.now), Event::Restart { service, instance });
        }
    }

    fn heap(&mut self, service: u16, instance: u16) -> &mut Heap {
        &mut self.heaps.by_service[usize::from(service)][usize::from(instance)]
    }

    /// Whether the instance is down, its process killed (out of memory, or crashed).
    pub(super) fn instance_down(&self, service: u16, instance: u16) -> bool {
        self.heaps.enabled
            && self.heaps.by_service[usize::from(service)]
                .get(usize::from(instance))
                .is_some_and(|h| self.now < h.down_until)
    }

    /// The fault that killed the instance, when it is down because of one.
    pub(super) fn down_fault(&self, service: u16, instance: u16) -> Option<usize> {
        self.heaps.by_service[usize::from(service)]
            .get(usize::from(instance))
            .and_then(|h| h.kill_fault)
    }

    /// A work step of `us` starts now on the invocation's instance: notes the pause total, and
    /// if the world is stopped the work only begins when it restarts.
    pub(super) fn work_time_us(&mut self, inv: InvId, us: u64) -> u64 {
        if !self.heaps.enabled {
            return us;
        }
        let (service, instance) = {
            let i = &self.invocations[inv.0 as usize];
            (i.service, i.instance)
        };
        let now = self.now;
        let Some(heap) = self.heaps.by_service[usize::from(service)].get(usize::from(instance))
        else {
            return us;
        };
        let (total, remaining) = (heap.paused_total_us, heap.paused_until.since(now).0);
        self.invocations[inv.0 as usize].stall_mark = total;
        us.saturating_add(remaining)
    }

    /// Stops the world on one instance for `pause`, crediting `fault` if it caused it.
    pub(super) fn pause(
        &mut self,
        service: u16,
        instance: u16,
        pause: Duration,
        fault: Option<usize>,
    ) {
        let now = self.now;
        let heap = self.heap(service, instance);
        let until = now.after(pause).max(heap.paused_until);
        // Only the time this pause adds to one already running stops the world longer.
        let added_us = until.since(heap.paused_until.max(now)).0;
        heap.paused_total_us += added_us;
        heap.paused_until = until;
        heap.pause_fault = fault;
        heap.collections += 1;
        heap.pause_us += added_us;
        heap.filling_since = until;
        self.heaps.calm_from = self.heaps.calm_from.max(until);
    }

    /// Holds back an event of an instance whose world is stopped, resets requests that reach a
    /// process that was killed, drops what was left of the requests it held, and lets work in
    /// progress finish later by the pauses it sat through. True when the event was taken care
    /// of here.
    /// (The common case, no world stopped and no process down, is checked here, inline on every
    /// event; the rest in `stalled_at_all`.)
    #[inline(always)]
    pub(super) fn stalled(&mut self, event: Event) -> bool {
        let calm = self.now >= self.heaps.calm_from && !self.heaps.killed;
        if calm {
            match event {
                Event::WorkDone(inv) => {
                    // Most work sat through no pause since it began: nothing to do.
                    let i = &self.invocations[inv.0 as usize];
                    let heaps = &self.heaps.by_service[usize::from(i.service)];
                    let total = heaps
                        .get(usize::from(i.instance))
                        .map_or(0, |h| h.paused_total_us);
                    if total == i.stall_mark {
                        return false;
                    }
                }
                Event::Retry(_) => {}
                _ => return false, // no world is stopped and no process is down
            }
        }
        self.stalled_at_all(event)
    }

    #[inline(never)]
    fn stalled_at_all(&mut self, event: Event) -> bool {
        let (inv, owner) = match event {
            Event::Arrive(inv) | Event::WorkDone(inv) => (Some(inv), None),
            Event::Response { call, attempt, .. }
            | Event::Timeout { call, attempt }
            | Event::PoolTimeout { call, attempt }
            | Event::Refused { call, attempt, .. } => {
                let c = &self.calls[call.0 as usize];
                if c.done || c.settled || c.attempt != attempt {
                    // Stale (most timeouts are): its handler ignores it, so let it.
                    return false;
                }
                (Some(c.caller), None)
            }
            Event::Retry(call) => {
                let c = &self.calls[call.0 as usize];
                if c.done {
                    // Its caller was killed out of memory while it waited to try again.
                    return true;
                }
                (Some(c.caller), None)
            }
            Event::Collect {
                service, instance, ..
            }
            | Event::Job {
                service, instance, ..
            } => (None, Some((service, instance))),
            _ => return false,
        };
        let (service, instance) = match (inv, owner) {
            (Some(inv), _) => {
                let i = &self.invocations[inv.0 as usize];
                (i.service, i.instance)
            }
            (None, Some(owner)) => owner,
            (None, None) => return false,
        };
        let now = self.now;
        let Some(heap) = self.heaps.by_service[usize::from(service)].get(usize::from(instance))
        else {
            return false;
        };
        let (paused_until, paused_total, pause_fault, down_until, killed_at, kill_fault) = (
            heap.paused_until,
            heap.paused_total_us,
            heap.pause_fault,
            heap.down_until,
            heap.killed_at,
            heap.kill_fault,
        );
        if let Event::Arrive(inv) = event {
            let i = &self.invocations[inv.0 as usize];
            if i.held && i.failure.is_some() {
                // Held by a pause, then ended by its process's kill.
                return true;
            }
        }
        if let (Event::Arrive(inv), true) = (event, now < down_until) {
            // The process is gone: the connection is reset (a request sent before the kill,
            // still on the wire then); no server span ever opened for it.
            let taken = self.take_processing(&[inv]);
            self.end_killed(inv, kill_fault);
            for (g, m) in taken {
                self.requeue_unseen(usize::from(g), instance, std::iter::once(m));
            }
            return true;
        }
        let trace = inv.map(|i| self.invocations[i.0 as usize].trace_id);
        if let Event::WorkDone(inv) = event {
            let i = &mut self.invocations[inv.0 as usize];
            if killed_at.is_some_and(|k| i.arrived <= k) {
                // Its process was killed, and the request ended with it.
                return true;
            }
            let stalled_us = paused_total - i.stall_mark;
            if stalled_us > 0 {
                i.stall_mark = paused_total;
                if let (Some(f), Some(t)) = (pause_fault, trace) {
                    self.fault_acted(f, t);
                }
                self.schedule(Duration(stalled_us), event);
                return true;
            }
        } else if now < paused_until {
            if let (Some(f), Some(t)) = (pause_fault, trace) {
                self.fault_acted(f, t);
            }
            if let (Event::Arrive(inv), Some(_)) = (event, inv) {
                self.invocations[inv.0 as usize].held = true;
            }
            self.schedule(paused_until.since(now), event);
            return true;
        }
        false
    }

    /// The process of an instance is gone: every request it held ends now (those queued for a
    /// worker and those running; see `end_killed`), messages its consumers held go back to
    /// their queues, their calls in progress end and answers to them will be
    /// dropped, and what they held is let go: workers, pool connections, bulkhead slots. Its
    /// breakers start closed again. A saga it was undoing leaves its steps in effect. The
    /// instance is down until `until`; the spans the kill ends say `error.type` = `error_type`.
    pub(super) fn kill(
        &mut self,
        service: u16,
        instance: u16,
        until: SimTime,
        error_type: &'static str,
        fault: Option<usize>,
    ) {
        self.heaps.killed = true;
        let now = self.now;
        let heap = self.heap(service, instance);
        heap.killed_at = Some(now);
        heap.down_until = heap.down_until.max(until);
        heap.kill_error = error_type;
        heap.kill_fault = fault;
        let (first_inv, first_call) = self.heap(service, instance).process_start;
        let slot = &mut self.services[usize::from(service)].instances[usize::from(instance)];
        let mut dead: Vec<InvId> = std::mem::take(&mut slot.waiting).into();
        // Requests that reached it in a pause, not taken in yet: their connections die too.
        dead.extend(
            (first_inv..self.invocations.len() as u32)
                .map(InvId)
                .filter(|inv| {
                    let i = &self.invocations[inv.0 as usize];
                    i.held && i.service == service && i.instance == instance && i.arrived <= now
                }),
        );
        let queued = dead.len();
        // Every running request of this process arrived after it started (sent to it, or taken
        // from its queue, while it was up), so the scan starts there.
        let running = |i: &super::Invocation| {
            i.service == service && i.instance == instance && i.holds_worker
        };
        dead.extend(
            (first_inv..self.invocations.len() as u32)
                .map(InvId)
                .filter(|inv| running(&self.invocations[inv.0 as usize])),
        );
        let (error_key, oom) = (self.keys.error_type, self.intern_static(error_type));
        let telemetry = &mut self.telemetry;
        for c in &mut self.calls[first_call as usize..] {
            let caller = &self.invocations[c.caller.0 as usize];
            let ours =
                caller.service == service && caller.instance == instance && caller.holds_worker;
            if c.done || !ours {
                continue;
            }
            // Whatever comes back for it, or times out, is stale from now on.
            c.done = true;
            if !c.settled {
                c.settled = true;
                let s = &mut telemetry.spans[c.attempt_span as usize];
                s.set_end(now);
                s.status = SpanStatus::Error;
                telemetry
                    .attributes_mut(c.attempt_span as usize)
                    .push((error_key, Value::Str(oom)));
            }
            (c.probe, c.holds_slot, c.queued) = (None, false, false);
            (c.holds_connection, c.awaits_connection) = (false, false);
        }
        let slot = &mut self.services[usize::from(service)].instances[usize::from(instance)];
        if let Some(pool) = &mut slot.pool {
            // Its connections close with it, leaked ones too.
            (pool.in_use, pool.waiting) = (0, Default::default());
        }
        let keys = (service, instance, 0, 0)..=(service, instance, u16::MAX, u16::MAX);
        for (_, &id) in self.edge_ids.range(keys) {
            let edge = &mut self.edges[id as usize];
            if let Some(breaker) = &mut edge.breaker {
                breaker.reset();
            }
            if let Some(bulkhead) = &mut edge.bulkhead {
                bulkhead.reset();
            }
            edge.attempts.clear();
        }
        for &inv in &dead[queued..] {
            if let Some(saga) = self.sagas.get_mut(&inv.0) {
                // Its compensating call was abandoned: that step stays in effect too.
                if let Some(step) = saga.undoing.take() {
                    saga.stuck.push(step);
                }
            }
        }
        let taken = self.take_processing(&dead);
        for inv in dead {
            self.end_killed(inv, fault);
        }
        let slot = &self.services[usize::from(service)].instances[usize::from(instance)];
        assert_eq!(
            (slot.busy, slot.waiting.len()),
            (0, 0),
            "a killed process holds nothing"
        );
        self.consumers_killed(service, instance, taken, fault);
        let process_start = (self.invocations.len() as u32, self.calls.len() as u32);
        let heap = self.heap(service, instance);
        heap.process_start = process_start;
        heap.process = heap.process.wrapping_add(1);
    }

    /// A request of a killed process ends with it, and credits the fault that killed it.
    /// The process writes nothing more: no log line, no answer, no HTTP status; its server
    /// span ends now in error (`error.type=out_of_memory`), and is not counted as a request
    /// it answered. Its caller's connection is reset: the attempt fails as
    /// `error.type=connection_reset` (retried like a refusal); a client from outside retries
    /// as after a 5xx. A lock it held is left to expire; a saga it ran is counted failed.
    fn end_killed(&mut self, inv: InvId, fault: Option<usize>) {
        let i = &mut self.invocations[inv.0 as usize];
        i.failure = Some(500);
        let (trace, span, caller, holds_worker) =
            (i.trace_id, i.span as usize, i.caller, i.holds_worker);
        if let Some(f) = fault {
            self.fault_acted(f, trace);
        }
        let job = self.locks.enabled && self.is_job_run(inv);
        if self.locks.enabled {
            self.release_lock(inv, 500);
        }
        self.settle_saga(inv, 500);
        let (service, instance) = (
            self.invocations[inv.0 as usize].service,
            self.invocations[inv.0 as usize].instance,
        );
        let kill_error = self.heap(service, instance).kill_error;
        let (error_key, oom) = (self.keys.error_type, self.intern_static(kill_error));
        // (A request that reached the instance after its process died has no span.)
        if self.services[usize::from(service)].role.instrumented() && span != NO_SPAN as usize {
            let s = &mut self.telemetry.spans[span];
            s.set_end(self.now);
            s.status = SpanStatus::Error;
            self.telemetry
                .attributes_mut(span)
                .push((error_key, Value::Str(oom)));
        }
        if holds_worker {
            self.invocations[inv.0 as usize].holds_worker = false;
            self.release_worker(service, instance);
        }
        if !job {
            self.client_retry(inv);
        }
        if let Some((call, attempt)) = caller {
            // The caller's trace too, when it did not pass its context on.
            let caller_trace =
                self.invocations[self.calls[call.0 as usize].caller.0 as usize].trace_id;
            if let Some(f) = fault.filter(|_| caller_trace != trace) {
                self.fault_acted(f, caller_trace);
            }
            let delay = self.network_delay();
            let reason = super::Refusal::ConnectionReset;
            self.schedule(
                delay,
                Event::Refused {
                    call,
                    attempt,
                    reason,
                },
            );
        }
    }

    /// A collection: leaked memory found since the last one joins the live heap; if that fills
    /// the heap the instance is killed, else the world stops for a pause that grows with it.
    pub(super) fn on_collect(&mut self, service: u16, instance: u16, process: u32) {
        if process != self.heap(service, instance).process {
            return; // scheduled by a process killed since: the one restarted has its own
        }
        let gc = self.scenario.services[usize::from(service)]
            .gc
            .clone()
            .expect("only services with gc collect");
        let (heap_kb, live_kb) = (
            u64::from(gc.heap_mb) * KB_PER_MB,
            u64::from(gc.live_mb) * KB_PER_MB,
        );
        let now = self.now;
        let since = self.heap(service, instance).filling_since;
        // Leaks in force over [since, now), and the one leaking now (for the next interval).
        let mut leaked_kb = 0u64;
        let mut leak_fault = None;
        let mut leak_now_mb_per_s = 0u64;
        let name = &self.scenario.services[usize::from(service)].name;
        for (f, fault) in self.scenario.faults.iter().enumerate() {
            let FaultEffect::MemoryLeak { mb_per_s } = fault.effect else {
                continue;
            };
            if &fault.service != name || fault.instance.is_some_and(|i| i != instance) {
                continue;
            }
            let (from, until) = (
                SimTime::from_ms(fault.from_ms),
                SimTime::from_ms(fault.until_ms),
            );
            let overlap_us = now.min(until).since(since.max(from)).0;
            if overlap_us > 0 && mb_per_s > 0 {
                leaked_kb += overlap_us * u64::from(mb_per_s) * KB_PER_MB / 1_000_000;
                leak_fault = Some(f);
            }
            if from <= now && now < until {
                leak_now_mb_per_s += u64::from(mb_per_s);
            }
        }
        let heap = self.heap(service, instance);
        let before_kb = used_kb(heap, now, heap_kb);
        if before_kb < heap_kb * 99 / 100 {
            // A forced full collection emptied it since: come back when it is full.
            let wait = fill_time_us(heap_kb - before_kb, heap.rate_kb_per_s);
            self.schedule_collection(service, instance, Duration(wait));
            return;
        }
        heap.leaked_kb = heap.leaked_kb.saturating_add(leaked_kb);
        let after_kb = live_kb.saturating_add(heap.leaked_kb).min(heap_kb);
        heap.after_kb = after_kb;
        heap.rate_kb_per_s = (u64::from(gc.alloc_mb_per_s) + leak_now_mb_per_s) * KB_PER_MB;
        let leaky = heap.leaked_kb > 0;
        let credited = if leaky {
            leak_fault.or(heap.leak_fault)
        } else {
            None
        };
        if leaky {
            heap.leak_fault = credited;
        }
        if let Some(f) = credited {
            self.truth.faults[f].first_effect.get_or_insert(now);
        }
        let mb = |kb: u64| Value::int((kb / KB_PER_MB) as i64);
        let (used_key, max_key) = (
            self.intern_static("heap_used_mb"),
            self.intern_static("heap_max_mb"),
        );
        if after_kb * 100 >= heap_kb * 98 {
            // The runtime's last words, then the requests it held fail, then it is killed.
            self.log(
                service,
                instance,
                Level::Error,
                None,
                "out of memory: heap exhausted",
                smallvec![(used_key, mb(after_kb)), (max_key, mb(heap_kb))],
            );
            let back = now.after(Duration::from_ms(gc.restart_ms));
            self.kill(service, instance, back, OUT_OF_MEMORY, credited);
            let line = "instance killed: out of memory (exit 137)";
            self.orchestrator_line(service, instance, line, OOM_KILLED, OOM_EXIT_CODE);
            self.schedule_restart(service, instance, back);
            return;
        }
        let pause_us = pause_us(after_kb, heap_kb, gc.pause_ms_per_gb);
        self.pause(service, instance, Duration(pause_us), credited);
        let level = if pause_us >= LONG_PAUSE_US {
            Level::Warn
        } else {
            Level::Info
        };
        let fields = smallvec![
            (
                self.intern_static("pause_ms"),
                Value::int(((pause_us + 500) / 1_000) as i64),
            ),
            (self.intern_static("heap_before_mb"), mb(before_kb)),
            (self.intern_static("heap_after_mb"), mb(after_kb)),
            (max_key, mb(heap_kb)),
        ];
        self.log(service, instance, level, None, "GC pause", fields);
        let heap = self.heap(service, instance);
        let next = Duration(pause_us + fill_time_us(heap_kb - after_kb, heap.rate_kb_per_s));
        self.schedule_collection(service, instance, next);
    }

    /// A full collection forced by a fault, stopping the world for `pause` (heap figures as
    /// they are; the next regular collection still comes when the heap fills).
    pub(super) fn full_collection(
        &mut self,
        service: u16,
        instance: u16,
        pause: Duration,
        fault: usize,
    ) {
        let Some(gc) = self.scenario.services[usize::from(service)].gc.as_ref() else {
            return;
        };
        let heap_kb = u64::from(gc.heap_mb) * KB_PER_MB;
        let now = self.now;
        let heap = self.heap(service, instance);
        let (before_kb, after_kb) = (used_kb(heap, now, heap_kb), heap.after_kb);
        self.truth.faults[fault].first_effect.get_or_insert(now);
        self.pause(service, instance, pause, Some(fault));
        let mb = |kb: u64| Value::int((kb / KB_PER_MB) as i64);
        let fields = smallvec![
            (
                self.intern_static("pause_ms"),
                Value::int((pause.0 / 1_000) as i64),
            ),
            (self.intern_static("heap_before_mb"), mb(before_kb)),
            (self.intern_static("heap_after_mb"), mb(after_kb)),
            (self.intern_static("heap_max_mb"), mb(heap_kb)),
        ];
        let level = if pause.0 >= LONG_PAUSE_US {
            Level::Warn
        } else {
            Level::Info
        };
        self.log(service, instance, level, None, "GC pause", fields);
    }

    /// Collections stop with the arrivals, so a run ends.
    fn schedule_collection(&mut self, service: u16, instance: u16, delay: Duration) {
        if self.now.after(delay).0 < self.scenario.duration_ms * 1_000 {
            let process = self.heap(service, instance).process;
            let event = Event::Collect {
                service,
                instance,
                process,
            };
            self.schedule(delay, event);
        }
    }

    /// The killed instance is back, its heap (if it has a runtime) holding only its live data.
    /// A restart due while a later kill keeps the instance down waits for that one's.
    pub(super) fn on_restart(&mut self, service: u16, instance: u16) {
        let now = self.now;
        if now < self.heap(service, instance).down_until {
            return;
        }
        if self.services[usize::from(service)].role.instrumented() {
            self.log(
                service,
                instance,
                Level::Info,
                None,
                "instance restarted",
                smallvec![],
            );
        }
        let Some(gc) = self.scenario.services[usize::from(service)].gc.clone() else {
            return;
        };
        let (heap_kb, live_kb) = (
            u64::from(gc.heap_mb) * KB_PER_MB,
            u64::from(gc.live_mb) * KB_PER_MB,
        );
        let rate_kb_per_s = u64::from(gc.alloc_mb_per_s) * KB_PER_MB;
        let heap = self.heap(service, instance);
        (heap.after_kb, heap.leaked_kb, heap.filling_since) = (live_kb, 0, now);
        heap.rate_kb_per_s = rate_kb_per_s;
        self.schedule_collection(
            service,
            instance,
            Duration(fill_time_us(heap_kb - live_kb, rate_kb_per_s)),
        );
    }

    /// Samples heap use and the bucket's collections of every instance with a runtime.
    pub(super) fn sample_heaps(&mut self, bucket: u32) {
        let now = self.now;
        for (s, heaps) in self.heaps.by_service.iter_mut().enumerate() {
            let Some(gc) = &self.scenario.services[s].gc else {
                continue;
            };
            let heap_kb = u64::from(gc.heap_mb) * KB_PER_MB;
            for (i, heap) in heaps.iter_mut().enumerate() {
                let used = if now < heap.down_until {
                    0
                } else {
                    used_kb(heap, now, heap_kb)
                };
                self.telemetry.metrics.runtime.push(RuntimeSample {
                    bucket,
                    service: ServiceId(s as u16),
                    instance: i as u16,
                    heap_used_bytes: used * 1_024,
                    heap_max_bytes: heap_kb * 1_024,
                    gc_collections: heap.collections,
                    gc_pause_us: heap.pause_us,
                });
                (heap.collections, heap.pause_us) = (0, 0);
            }
        }
    }
}

/// A collection's pause: `pause_ms_per_gb` per GB of live heap, stretched by heap / free as
/// the heap crowds (the collector copies more and finds less room: a full heap thrashes).
fn pause_us(live_kb: u64, heap_kb: u64, pause_ms_per_gb: u32) -> u64 {
    let base_us = live_kb * u64::from(pause_ms_per_gb) * 1_000 / (KB_PER_MB * KB_PER_MB);
    base_us * heap_kb / heap_kb.saturating_sub(live_kb).max(1)
}

/// Microseconds for `free_kb` to fill at `rate_kb_per_s`, at least the minimum gap.
fn fill_time_us(free_kb: u64, rate_kb_per_s: u64) -> u64 {
    (crate::time::saturating_mul(free_kb, 1_000_000) / rate_kb_per_s.max(1))
        .max(COLLECTION_GAP_MIN_US)
}

/// Heap in use at `now`: what the last collection left plus what was allocated since.
fn used_kb(heap: &Heap, now: SimTime, heap_kb: u64) -> u64 {
    let filling_us = now.since(heap.filling_since).0;
    heap.after_kb
        .saturating_add(crate::time::saturating_mul(heap.rate_kb_per_s, filling_us) / 1_000_000)
        .min(heap_kb)
}

#[cfg(test)]
mod tests {
    use crate::mesh::default_mesh;
    use crate::scenario::{
        Burst, Entry, FaultEffect, FaultSpec, GcSpec, OperationSpec, Scenario, ServiceSpec, Step,
        Workload,
    };
    use crate::telemetry::{SpanKind, Telemetry, Value};
    use crate::time::SimTime;

    /// One service whose heap fills in 1 s and collects half-way, at 500 ms, with a 100 ms
    /// pause (50 MB live at 1024 ms/GB, doubled since half the heap is live); requests arrive
    /// in bursts at the given times and each works exactly 100 ms.
    fn paused_at_500ms(bursts_ms: &[u64]) -> Telemetry {
        let scenario = Scenario {
            name: "pause".into(),
            duration_ms: 1_000,
            services: vec![ServiceSpec {
                name: "svc".into(),
                instances: 1,
                workers: 8,
                queue_limit: 8,
                operations: vec![OperationSpec {
                    name: "op".into(),
                    steps: vec![Step::Work {
                        p50_ms: 100.0,
                        p99_ms: 100.0,
                    }],
                    effect: None,
                    every_ms: None,
                    lock: None,
                }],
                balancer: Default::default(),
                log_level: Default::default(),
                pool: None,
                consumer: None,
                db_system: None,
                log_min_duration_statement_ms: None,
                gc: Some(GcSpec {
                    heap_mb: 100,
                    live_mb: 50,
                    alloc_mb_per_s: 50,
                    pause_ms_per_gb: 1_024,
                    restart_ms: 1_000,
                }),
            }],
            workload: Workload {
                rate_per_s: 0.001,
                entries: vec![Entry {
                    service: "svc".into(),
                    operation: "op".into(),
                    weight: 1,
                }],
                ramps: vec![],
                bursts: bursts_ms
                    .iter()
                    .map(|&at_ms| Burst { at_ms, requests: 1 })
                    .collect(),
                users: 0,
                client_retries: 0,
            },
            faults: vec![],
        };
        crate::run(&scenario, 3).unwrap()
    }

    #[test]
    fn a_heap_filling_within_the_collection_gap_is_refused_at_the_boundary() {
        // Regression: instances start part-filled, by the allocation over their first interval,
        // and with a heap that fills in under the 1 ms gap that came to more than the heap
        // (an overflow, a panic in debug builds), on a scenario that validated.
        let mut s = default_mesh(10.0, 1_000);
        let gc = |alloc_mb_per_s| GcSpec {
            heap_mb: 1,
            live_mb: 0,
            alloc_mb_per_s,
            pause_ms_per_gb: 100,
            restart_ms: 1_000,
        };
        s.services[2].gc = Some(gc(100_000));
        let fields: Vec<String> = s.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["services[2].gc.alloc_mb_per_s"]);
        // The fastest that validates (the heap fills in exactly 1 ms) runs.
        s.services[2].gc = Some(gc(1_000));
        assert!(s.validate().is_empty());
        let t = crate::run(&s, 5).unwrap();
        assert!(t.logs.iter().any(|l| t.text(l.message) == "GC pause"));
    }

    #[test]
    fn faults_and_operations_are_bounded_by_what_the_engine_indexes() {
        // Regression: a fault's index travels as a u16 (the lease_expiry stall), so 65,536
        // faults or more were truncated; operations are indexed the same way.
        let mut s = default_mesh(10.0, 1_000);
        let latency = FaultSpec {
            service: "auth".into(),
            instance: None,
            from_ms: 0,
            until_ms: 10,
            effect: FaultEffect::Latency { extra_ms: 1 },
        };
        s.faults = vec![latency; crate::scenario::FAULTS_MAX];
        let op = s.services[1].operations[0].clone();
        s.services[1].operations = (0..crate::scenario::OPERATIONS_MAX)
            .map(|n| OperationSpec {
                name: if n == 0 {
                    op.name.clone()
                } else {
                    format!("op{n}")
                },
                ..op.clone()
            })
            .collect();
        assert_eq!(s.validate(), []);
        s.faults.push(s.faults[0].clone());
        s.services[1].operations.push(OperationSpec {
            name: "one too many".into(),
            ..op
        });
        let fields: Vec<String> = s.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["services[1].operations", "faults"]);
    }

    #[test]
    fn a_pause_stops_work_in_progress_and_holds_new_requests() {
        let t = paused_at_500ms(&[450, 520, 700]);
        let gc = t
            .logs
            .iter()
            .find(|l| t.text(l.message) == "GC pause")
            .expect("one collection");
        assert_eq!(gc.time, SimTime::from_ms(500));
        let pause_ms = gc.fields.iter().find(|(k, _)| t.text(*k) == "pause_ms");
        assert_eq!(pause_ms.map(|(_, v)| v), Some(&Value::int(100)));
        let ends: Vec<(u64, u64)> = t
            .spans
            .iter()
            .filter(|s| s.kind == SpanKind::Server)
            .map(|s| (s.start.0 / 1_000, s.end().unwrap().0 / 1_000))
            .collect();
        // Started before the pause: 100 ms of work ends 100 ms late. Arrived during it: waits
        // for the world to restart at 600. After it: untouched.
        assert_eq!(ends, [(450, 650), (520, 700), (700, 800)]);
        let sample = t.metrics.runtime.iter().find(|r| r.gc_collections > 0);
        assert_eq!(sample.map(|r| r.gc_pause_us), Some(100_000));
    }

    #[test]
    fn a_leaking_instance_pauses_longer_and_more_often_until_killed() {
        let mut s = default_mesh(50.0, 20_000);
        s.faults.push(FaultSpec {
            service: "orders".into(),
            instance: Some(1),
            from_ms: 2_000,
            until_ms: 20_000,
            effect: FaultEffect::MemoryLeak { mb_per_s: 40 },
        });
        let (t, truth) = crate::Simulation::new(s, 17).unwrap().finish();
        let field = |l: &crate::telemetry::LogLine, name: &str| {
            l.fields.iter().find_map(|(k, v)| match v {
                Value::Int(n) if t.text(*k) == name => Some(n.get()),
                _ => None,
            })
        };
        let collections = |instance: u16| -> Vec<(u64, i64, i64)> {
            t.logs
                .iter()
                .filter(|l| t.service_name(l.service) == "orders" && l.instance == instance)
                .filter(|l| t.text(l.message) == "GC pause")
                .map(|l| {
                    let after = field(l, "heap_after_mb").unwrap();
                    (l.time.0, field(l, "pause_ms").unwrap(), after)
                })
                .collect()
        };
        let leaking = collections(1);
        assert!(leaking.len() >= 5, "{leaking:?}");
        for w in leaking.windows(2) {
            assert!(w[1].1 > w[0].1 && w[1].2 > w[0].2, "{leaking:?}");
        }
        // The heap refills faster each time, as less of it is free.
        let gaps: Vec<u64> = leaking
            .windows(2)
            .map(|w| w[1].0 - w[0].0 - w[0].1 as u64 * 1_000)
            .collect();
        assert!(gaps.windows(2).all(|g| g[1] < g[0]), "{gaps:?}");
        assert!(collections(0).iter().all(|c| c.2 == 64 && c.1 <= 3));
        // No span or log line of orders-1 ends inside one of its pauses.
        for &(at, pause_ms, _) in &leaking {
            let inside = |x: u64| x > at && x < at + pause_ms as u64 * 1_000 - 1_000;
            assert!(
                !t.spans.iter().any(|s| t.service_name(s.service) == "orders"
                    && s.instance == 1
                    && s.end().is_some_and(|e| inside(e.0)))
            );
            assert!(!t.logs.iter().any(|l| t.service_name(l.service) == "orders"
                && l.instance == 1
                && inside(l.time.0)));
        }
        let killed = t
            .logs
            .iter()
            .filter(|l| t.text(l.message).starts_with("out of memory"))
            .collect::<Vec<_>>();
        assert_eq!(killed.len(), 1);
        assert_eq!(killed[0].instance, 1);
        let fault = &truth.faults[0];
        assert_eq!(fault.kind, "memory_leak");
        assert!(fault.first_effect.unwrap() >= SimTime::from_ms(2_000));
        assert!(fault.affected_traces.len() > 20);
    }
}

/// Out-of-memory kills: what the dead process held ends at once, and nothing of it goes on.
#[cfg(test)]
mod kill_tests {
    use crate::scenario::{
        Burst, CallPolicy, Entry, FaultEffect, FaultSpec, GcSpec, OperationSpec, PoolSpec,
        Scenario, ServiceSpec, Step, Workload,
    };
    use crate::telemetry::{Span, SpanKind, Telemetry, TraceId, Value};
    use crate::time::{Duration, SimTime};
    use crate::{GroundTruth, Simulation};
    use std::collections::BTreeSet;

    const KILL: SimTime = SimTime(500_000);
    const BACK: SimTime = SimTime(600_000);

    fn service(name: &str, workers: u16, operations: Vec<(&str, Vec<Step>)>) -> ServiceSpec {
        ServiceSpec {
            name: name.into(),
            instances: 1,
            workers,
            queue_limit: 8,
            operations: operations
                .into_iter()
                .map(|(name, steps)| OperationSpec {
                    name: name.into(),
                    steps,
                    effect: None,
                    every_ms: None,
                    lock: None,
                })
                .collect(),
            balancer: Default::default(),
            log_level: Default::default(),
            pool: None,
            consumer: None,
            gc: None,
            db_system: Default::default(),
            log_min_duration_statement_ms: None,
        }
    }

    fn work(ms: f64) -> Step {
        Step::Work {
            p50_ms: ms,
            p99_ms: ms,
        }
    }

    fn call(service: &str, operation: &str, policy: CallPolicy, undo: Option<&str>) -> Step {
        Step::Call {
            service: service.into(),
            operation: operation.into(),
            policy,
            compensate: undo.map(Into::into),
        }
    }

    fn no_timeout() -> CallPolicy {
        CallPolicy {
            timeout_ms: None,
            ..CallPolicy::default()
        }
    }

    fn fault(service: &str, until_ms: u64, effect: FaultEffect) -> FaultSpec {
        FaultSpec {
            service: service.into(),
            instance: None,
            from_ms: 0,
            until_ms,
            effect,
        }
    }

    /// `services[0]` runs a JVM whose heap a leak fills by 500 ms: it is killed then (its first
    /// collection), and back at 600 ms. Requests come in bursts at the given times.
    fn killed_at_500ms(
        services: Vec<ServiceSpec>,
        faults: Vec<FaultSpec>,
        bursts: &[(u64, u32)],
    ) -> (Telemetry, GroundTruth) {
        killed_at_500ms_entry(services, faults, bursts, 0)
    }

    /// As `killed_at_500ms`, with requests from outside sent to `services[entry]`.
    fn killed_at_500ms_entry(
        mut services: Vec<ServiceSpec>,
        mut faults: Vec<FaultSpec>,
        bursts: &[(u64, u32)],
        entry: usize,
    ) -> (Telemetry, GroundTruth) {
        services[0].gc = Some(GcSpec {
            heap_mb: 100,
            live_mb: 50,
            alloc_mb_per_s: 50,
            pause_ms_per_gb: 0,
            restart_ms: 100,
        });
        let leak = FaultEffect::MemoryLeak { mb_per_s: 200 };
        faults.insert(0, fault(&services[0].name, 500, leak));
        let scenario = Scenario {
            name: "killed".into(),
            duration_ms: 1_500,
            workload: Workload {
                rate_per_s: 0.001,
                entries: vec![Entry {
                    service: services[entry].name.clone(),
                    operation: services[entry].operations[0].name.clone(),
                    weight: 1,
                }],
                ramps: vec![],
                bursts: bursts
                    .iter()
                    .map(|&(at_ms, requests)| Burst { at_ms, requests })
                    .collect(),
                users: 0,
                client_retries: 0,
            },
            services,
            faults,
        };
        Simulation::new(scenario, 11).unwrap().finish()
    }

    fn spans<'a>(t: &'a Telemetry, service: &str, kind: SpanKind) -> Vec<&'a Span> {
        t.spans
            .iter()
            .filter(|s| t.service_name(s.service) == service && s.kind == kind)
            .collect()
    }

    fn attribute<'a>(t: &'a Telemetry, s: &Span, key: &str) -> Option<&'a Value> {
        t.attributes(s)
            .iter()
            .find(|(k, _)| t.text(*k) == key)
            .map(|(_, v)| v)
    }

    /// Nothing of a killed request happens on its instance after the kill, and the instance
    /// logs nothing while it is down.
    fn silent_once_killed(t: &Telemetry, service: &str, killed: &BTreeSet<TraceId>) {
        for l in t
            .logs
            .iter()
            .filter(|l| t.service_name(l.service) == service)
        {
            let message = t.text(l.message);
            assert!(
                l.time <= KILL || l.time >= BACK,
                "{message} at {:?}",
                l.time
            );
            let trace = l.trace_id.unwrap_or(TraceId(0));
            assert!(!killed.contains(&trace) || l.time <= KILL, "{message}");
        }
        for s in spans(t, service, SpanKind::Client) {
            assert!(s.start <= KILL || s.start >= BACK, "{s:?}");
            assert!(!killed.contains(&s.trace_id) || s.end().is_some_and(|e| e <= KILL));
        }
    }

    #[test]
    fn a_kill_fails_every_request_the_process_held_at_once_and_it_restarts_clean() {
        // front calls db through a pool with no timeout. Calls sent in the partition (until
        // 400 ms) are lost and would wait for ever, holding their worker and connection; the
        // one sent at 420 ms is answered at about 720 ms, after the kill; those of 450 ms wait
        // for a worker.
        let mut front = service(
            "front",
            3,
            vec![("op", vec![call("db", "query", no_timeout(), None)])],
        );
        front.pool = Some(PoolSpec {
            target: "db".into(),
            size: 3,
            acquire_timeout_ms: 50,
        });
        let db = service("db", 16, vec![("query", vec![work(300.0)])]);
        let partition = FaultEffect::Partition { peer: "db".into() };
        let (t, truth) = killed_at_500ms(
            vec![front, db],
            vec![fault("front", 400, partition)],
            &[(100, 2), (420, 1), (450, 2), (700, 3)],
        );
        let (before, after): (Vec<&Span>, Vec<&Span>) = spans(&t, "front", SpanKind::Server)
            .into_iter()
            .partition(|s| s.start < KILL);
        assert_eq!((before.len(), after.len()), (5, 3));
        for s in &before {
            // Ended by the kill, with no answer: no HTTP status.
            assert_eq!(s.end(), Some(KILL), "{s:?}");
            assert_eq!(s.status, crate::telemetry::SpanStatus::Error);
            assert_eq!(attribute(&t, s, "http.response.status_code"), None);
            let error = attribute(&t, s, "error.type").map(|v| t.value_text(v));
            assert_eq!(error.as_deref(), Some("out_of_memory"));
        }
        // Back at 600 ms with every worker, connection and queue place free.
        for s in &after {
            let status = attribute(&t, s, "http.response.status_code");
            assert_eq!(status, Some(&Value::int(200)), "{s:?}");
            assert_eq!(attribute(&t, s, "queue_wait_ms"), None, "{s:?}");
        }
        let killed: BTreeSet<TraceId> = before.iter().map(|s| s.trace_id).collect();
        silent_once_killed(&t, "front", &killed);
        // The answer to the call of 420 ms still comes, to nobody.
        let late = spans(&t, "db", SpanKind::Server)
            .into_iter()
            .filter(|s| killed.contains(&s.trace_id))
            .count();
        assert_eq!(late, 1);
        assert!(killed.is_subset(&truth.faults[0].affected_traces));
        // The runtime says it is out of heap, then the orchestrator kills it: the dead
        // process writes nothing for the requests it held.
        let lines: Vec<&str> = t
            .logs
            .iter()
            .filter(|l| l.time >= KILL && l.time < BACK)
            .map(|l| t.text(l.message))
            .collect();
        assert_eq!(
            lines,
            [
                "out of memory: heap exhausted",
                "instance killed: out of memory (exit 137)"
            ]
        );
        // Nor does it count them as requests it answered: only the three after the restart.
        let front = crate::telemetry::ServiceId(0);
        let answered: u32 = t
            .metrics
            .requests
            .iter()
            .filter(|((key, _), _)| key.0 == front)
            .map(|(_, stats)| stats.count)
            .sum();
        assert_eq!(answered, 3);
        let kill = t
            .logs
            .iter()
            .find(|l| t.text(l.message).starts_with("instance killed"));
        let reason = kill
            .unwrap()
            .fields
            .iter()
            .find(|(k, _)| t.text(*k) == "reason");
        assert_eq!(
            reason.map(|(_, v)| t.value_text(v)).as_deref(),
            Some("OOMKilled")
        );
    }

    /// orch saves with a:do (undone by a:undo, which takes a second), then b:fail fails after
    /// `fail_ms`: the saga undoes a:do, unless its orchestrator is killed first.
    #[test]
    fn the_callers_of_a_killed_process_see_their_connections_reset_and_retry() {
        // front calls db, which holds two slow requests when it is killed: db writes nothing
        // more and answers nothing; front's attempts fail as connection resets at the kill
        // (plus the hop back) and its retries, after db is back, succeed.
        let db = service("db", 16, vec![("query", vec![work(300.0)])]);
        let policy = CallPolicy {
            retries: 2,
            backoff_base_ms: 150,
            jitter: false,
            ..no_timeout()
        };
        let front = service(
            "front",
            4,
            vec![("op", vec![call("db", "query", policy, None)])],
        );
        let (t, truth) = killed_at_500ms_entry(vec![db, front], vec![], &[(300, 2)], 1);
        let resets: Vec<&Span> = spans(&t, "front", SpanKind::Client)
            .into_iter()
            .filter(|s| {
                attribute(&t, s, "error.type")
                    .map(|v| t.value_text(v))
                    .as_deref()
                    == Some("connection_reset")
            })
            .collect();
        assert_eq!(resets.len(), 2, "{resets:?}");
        for s in &resets {
            assert!(s.end().unwrap() > KILL && s.end().unwrap() < BACK, "{s:?}");
            assert!(truth.faults[0].affected_traces.contains(&s.trace_id));
        }
        // Their server spans ended at the kill, with no status; db logged nothing for them.
        for s in spans(&t, "db", SpanKind::Server)
            .into_iter()
            .filter(|s| s.start < KILL)
        {
            assert_eq!(s.end(), Some(KILL));
            assert_eq!(attribute(&t, s, "http.response.status_code"), None);
        }
        let db_lines: Vec<&str> = t
            .logs
            .iter()
            .filter(|l| t.service_name(l.service) == "db" && l.time <= KILL)
            .map(|l| t.text(l.message))
            .collect();
        assert!(!db_lines.contains(&"request failed"), "{db_lines:?}");
        // front logs each reset like a refusal, and its requests succeed after retrying.
        let warned = t
            .logs
            .iter()
            .filter(|l| t.service_name(l.service) == "front" && l.time > KILL && l.time < BACK)
            .filter(|l| {
                l.fields.iter().any(|(k, v)| {
                    t.text(*k) == "error.type" && t.value_text(v) == "connection_reset"
                })
            })
            .count();
        assert_eq!(warned, 2);
        for s in spans(&t, "front", SpanKind::Server) {
            let status = attribute(&t, s, "http.response.status_code");
            assert_eq!(status, Some(&Value::int(200)), "{s:?}");
        }
    }

    #[test]
    fn a_call_on_the_wire_when_its_callee_crashes_is_reset_and_never_reaches_a_server() {
        // Find a charge that reached payments-1 less than the shortest network hop (200 µs)
        // after a millisecond boundary: orders sent it before the boundary, so a crash starting
        // there catches it on the wire (the run is the same up to the crash).
        let mut scenario = crate::mesh::default_mesh(80.0, 4_000);
        let t = crate::run(&scenario, 3).unwrap();
        let (trace, boundary_ms) = t
            .spans
            .iter()
            .filter(|s| s.kind == SpanKind::Server && s.instance == 1 && s.start.0 > 1_000_000)
            .filter(|s| t.service_name(s.service) == "payments")
            .find(|s| s.start.0 % 1_000 < crate::sim::NETWORK_US.0)
            .map(|s| (s.trace_id, s.start.0 / 1_000))
            .expect("a charge crossing a millisecond boundary");
        let mut crashed = FaultSpec::new(
            "payments",
            None,
            boundary_ms,
            boundary_ms + 500,
            FaultEffect::Crash,
        );
        crashed.instance = Some(1);
        scenario.faults.push(crashed);
        let (t, truth) = crate::Simulation::new(scenario, 3).unwrap().finish();
        let boundary = SimTime::from_ms(boundary_ms);
        // No server span on payments-1 starts while it is down, this charge's included.
        let down = boundary..SimTime::from_ms(boundary_ms + 500);
        assert!(
            spans(&t, "payments", SpanKind::Server)
                .iter()
                .all(|s| s.instance == 0 || !down.contains(&s.start))
        );
        // Its attempt is reset a hop after it reached the dead instance (orders sees it later
        // when its own collector has stopped the world then).
        let attempts: Vec<&Span> = spans(&t, "orders", SpanKind::Client)
            .into_iter()
            .filter(|s| s.trace_id == trace && t.text(s.operation) == "charge")
            .collect();
        let reset = attempts
            .iter()
            .find(|s| s.start < boundary && s.end().unwrap() > boundary)
            .expect("the attempt on the wire");
        assert_eq!(
            attribute(&t, reset, "error.type")
                .map(|v| t.value_text(v))
                .as_deref(),
            Some("connection_reset")
        );
        assert!(reset.end().unwrap().since(boundary).0 < 100_000);
        assert!(truth.faults[0].affected_traces.contains(&trace));
    }

    fn saga_killed(undo: CallPolicy, fail_ms: f64) -> (Telemetry, GroundTruth) {
        let orch = service(
            "orch",
            4,
            vec![(
                "order",
                vec![
                    call("a", "do", undo, Some("undo")),
                    call("b", "fail", no_timeout(), None),
                ],
            )],
        );
        let a = service(
            "a",
            4,
            vec![("do", vec![work(5.0)]), ("undo", vec![work(1_000.0)])],
        );
        let b = service("b", 4, vec![("fail", vec![work(fail_ms)])]);
        let errors = FaultEffect::ErrorRate { rate: 1.0 };
        killed_at_500ms(
            vec![orch, a, b],
            vec![fault("b", 1_500, errors)],
            &[(10, 1)],
        )
    }

    #[test]
    fn a_saga_killed_mid_way_stops_and_leaves_its_steps_in_effect() {
        let retried = CallPolicy {
            timeout_ms: Some(100),
            retries: 3,
            backoff_base_ms: 400,
            jitter: false,
            ..CallPolicy::default()
        };
        // Killed while a:undo runs (no timeout), while it waits to retry a:undo after a
        // timeout, and before b:fail answered (so before compensating at all).
        for (undo, fail_ms) in [(no_timeout(), 5.0), (retried, 5.0), (no_timeout(), 600.0)] {
            let (t, truth) = saga_killed(undo, fail_ms);
            let root = spans(&t, "orch", SpanKind::Server);
            assert_eq!(root.len(), 1);
            assert_eq!(root[0].end(), Some(KILL), "b answers at {fail_ms} ms");
            let killed = BTreeSet::from([root[0].trace_id]);
            silent_once_killed(&t, "orch", &killed);
            assert!(
                t.logs
                    .iter()
                    .all(|l| t.text(l.message) != "saga compensated")
            );
            assert_eq!((truth.sagas_failed, truth.sagas_compensated), (1, 0));
            let left: Vec<(&str, u32)> = truth
                .saga_steps_left
                .iter()
                .map(|(k, v)| (k.as_str(), *v))
                .collect();
            assert_eq!(left, [("a:do", 1)], "b answers at {fail_ms} ms");
        }
    }

    #[test]
    fn a_stall_on_top_of_a_pause_counts_only_the_time_it_adds() {
        let mut front = service("front", 1, vec![("op", vec![work(1.0)])]);
        front.gc = Some(GcSpec {
            heap_mb: 100,
            live_mb: 10,
            alloc_mb_per_s: 1,
            pause_ms_per_gb: 0,
            restart_ms: 100,
        });
        let scenario = Scenario {
            name: "pauses".into(),
            duration_ms: 1_000,
            services: vec![front],
            workload: Workload {
                rate_per_s: 0.001,
                entries: vec![Entry {
                    service: "front".into(),
                    operation: "op".into(),
                    weight: 1,
                }],
                ramps: vec![],
                bursts: vec![],
                users: 0,
                client_retries: 0,
            },
            faults: vec![],
        };
        let mut sim = Simulation::new(scenario, 1).unwrap();
        sim.step_until(SimTime::from_ms(100));
        // A 100 ms collection, and 50 ms into it a 150 ms stall: 200 ms stopped in all.
        sim.pause(0, 0, Duration::from_ms(100), None);
        sim.step_until(SimTime::from_ms(150));
        sim.pause(0, 0, Duration::from_ms(150), None);
        let heap = &sim.heaps.by_service[0][0];
        assert_eq!((heap.paused_total_us, heap.pause_us), (200_000, 200_000));
        assert_eq!(heap.collections, 2);
    }
}
