//! The cache and the message queue inside the event loop: how `cache_get` and `publish` steps
//! become calls, what a cache does with a lookup or a store, how published messages reach a
//! consumer group, the `cache_outage` and `consumer_stall` faults, and their metrics samples.

use super::*;
use crate::cache::{Cache, draw_key};
use crate::metrics::{CacheSample, QueueSample};
use crate::queue::{Group, Message};
use crate::scenario::{DURATION_MS_MAX, OperationSpec, Popularity};
use crate::telemetry::Strings;

/// What a call is for, beyond reaching its callee.
#[derive(Clone, Copy, Debug)]
pub(super) enum CallRole {
    Plain,
    /// A cache lookup; a hit skips the next `skip` steps (the backing read and the store).
    CacheGet {
        /// Keys of this step are `namespace | k`, apart from other steps' keys in one cache.
        namespace: u64,
        keys: u32,
        popularity: Popularity,
        skip: u16,
    },
    /// Stores the key the lookup missed, after the backing read.
    CacheSet {
        ttl: Duration,
    },
    Publish {
        topic: Sym,
    },
}

/// The caches (by service index) and the consumer groups of a run.
#[derive(Default)]
pub(super) struct Stores {
    caches: Vec<Option<Cache>>,
    groups: Vec<Group>,
}

/// Where a cache step's keys start: its (service, operation, step) in the high bits, so steps
/// sharing a cache never share keys (key spaces are below 2^17).
fn namespace(service: u16, operation: u16, step: usize) -> u64 {
    (u64::from(service) << 40) | (u64::from(operation) << 24) | ((step as u64) << 17)
}

impl Stores {
    /// The caches start warm, as in a system that has been up for a while: every key of every
    /// lookup step is there, with its remaining TTL spread evenly by a hash of the key (no
    /// draw from the random stream).
    pub(super) fn new(scenario: &Scenario, strings: &mut Strings) -> Stores {
        let mut caches: Vec<Option<Cache>> = scenario.services.iter().map(|_| None).collect();
        for (s, service) in scenario.services.iter().enumerate() {
            for (o, op) in service.operations.iter().enumerate() {
                for (i, step) in op.steps.iter().enumerate() {
                    let Step::CacheGet {
                        service: cache,
                        operation,
                        keys,
                        ttl_ms,
                        ..
                    } = step
                    else {
                        continue;
                    };
                    let (cache, _) = resolve(scenario, cache, operation);
                    let cache = caches[usize::from(cache)].get_or_insert_with(Cache::default);
                    let base = namespace(s as u16, o as u16, i);
                    let ttl_us = u128::from(ttl_ms.saturating_mul(1_000));
                    for k in 0..u64::from(*keys) {
                        let spread = u128::from((k + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                        let left = 1 + ((spread * ttl_us) >> 64) as u64;
                        cache.set(base | k, SimTime::ZERO, Duration(left));
                    }
                }
            }
        }
        let groups = scenario
            .services
            .iter()
            .filter_map(|s| {
                let c = s.consumer.as_ref()?;
                let (service, operation) = resolve(scenario, &s.name, &c.operation);
                let queue = scenario.services.iter().position(|q| q.name == c.queue)? as u16;
                Some(Group::new(
                    queue,
                    strings.intern(&c.topic),
                    service,
                    operation,
                    c.concurrency,
                    s.instances,
                ))
            })
            .collect();
        Stores { caches, groups }
    }
}

/// An operation's steps as the event loop runs them: a `cache_get` becomes the lookup, then
/// its miss steps, then the store of the key.
pub(super) fn plan(
    scenario: &Scenario,
    service: &str,
    op: &OperationSpec,
    strings: &mut Strings,
) -> Vec<PlanStep> {
    let (caller, caller_op) = resolve(scenario, service, &op.name);
    let mut plan = Vec::with_capacity(op.steps.len() + 1);
    // The store that follows a lookup's miss steps, and how many of those are still to come.
    let mut pending: Option<(u16, PlanStep)> = None;
    for (index, step) in op.steps.iter().enumerate() {
        let mut then = None;
        plan.push(match step {
            Step::Work { p50_ms, p99_ms } => PlanStep::Work {
                p50_ms: *p50_ms,
                p99_ms: *p99_ms,
            },
            Step::Call {
                service,
                operation,
                policy,
                compensate,
            } => {
                let callee = service;
                let (service, operation) = resolve(scenario, callee, operation);
                PlanStep::Call {
                    service,
                    operation,
                    policy: policy.clone(),
                    compensate: compensate
                        .as_ref()
                        .map(|undo| resolve(scenario, callee, undo).1),
                    role: CallRole::Plain,
                }
            }
            Step::CacheGet {
                service,
                operation,
                set_operation,
                keys,
                popularity,
                ttl_ms,
                miss_steps,
                policy,
            } => {
                let (cache, get) = resolve(scenario, service, operation);
                let (_, set) = resolve(scenario, service, set_operation);
                then = Some((
                    *miss_steps,
                    PlanStep::Call {
                        service: cache,
                        operation: set,
                        policy: policy.clone(),
                        compensate: None,
                        role: CallRole::CacheSet {
                            ttl: Duration::from_ms(*ttl_ms),
                        },
                    },
                ));
                PlanStep::Call {
                    service: cache,
                    operation: get,
                    policy: policy.clone(),
                    compensate: None,
                    role: CallRole::CacheGet {
                        namespace: namespace(caller, caller_op, index),
                        keys: *keys,
                        popularity: *popularity,
                        skip: miss_steps + 1,
                    },
                }
            }
            Step::Publish {
                service,
                operation,
                topic,
                policy,
            } => {
                let (service, operation) = resolve(scenario, service, operation);
                PlanStep::Call {
                    service,
                    operation,
                    policy: policy.clone(),
                    compensate: None,
                    role: CallRole::Publish {
                        topic: strings.intern(topic),
                    },
                }
            }
        });
        // Validation keeps lookups out of miss steps, so at most one store is pending.
        if then.is_none() {
            if let Some((left, _)) = &mut pending {
                *left -= 1;
            }
        } else {
            pending = then;
        }
        if pending.as_ref().is_some_and(|(left, _)| *left == 0) {
            plan.push(pending.take().expect("checked").1);
        }
    }
    plan
}

/// How many attributes `store_call_attributes` and `steps_after_success` add to a call's
/// client span in `role`.
pub(super) fn store_attribute_count(role: CallRole) -> usize {
    match role {
        CallRole::Plain => 0,
        CallRole::CacheGet { .. } => 3,
        CallRole::CacheSet { .. } => 2,
        CallRole::Publish { .. } => 3,
    }
}

impl Simulation {
    /// A cache lookup draws its key when the call is made, once for all its attempts.
    pub(super) fn begin_store_call(&mut self, inv: InvId, role: CallRole) {
        if let CallRole::CacheGet {
            namespace,
            keys,
            popularity,
            ..
        } = role
        {
            let unit = self.random.unit();
            self.invocations[inv.0 as usize].cache_key =
                namespace | draw_key(unit, keys, popularity);
        }
    }

    /// The attributes a cache or queue client span carries; a publish is a producer span.
    pub(super) fn store_call_attributes(&mut self, call: CallId, span: u32) {
        let pairs: [(&'static str, &'static str); 3] = match self.calls[call.0 as usize].role {
            CallRole::Plain => return,
            CallRole::CacheGet { .. } => [
                ("db.system", "redis"),
                ("db.operation.name", "GET"),
                ("", ""),
            ],
            CallRole::CacheSet { .. } => [
                ("db.system", "redis"),
                ("db.operation.name", "SET"),
                ("", ""),
            ],
            CallRole::Publish { topic } => {
                self.telemetry.spans[span as usize].kind = SpanKind::Producer;
                let key = self.intern_static("messaging.destination.name");
                self.telemetry.spans[span as usize]
                    .attributes
                    .push((key, Value::Str(topic)));
                [
                    ("messaging.system", "kafka"),
                    ("messaging.operation", "publish"),
                    ("", ""),
                ]
            }
        };
        for (key, value) in pairs.into_iter().filter(|(k, _)| !k.is_empty()) {
            let (key, value) = (self.intern_static(key), self.intern_static(value));
            self.telemetry.spans[span as usize]
                .attributes
                .push((key, Value::Str(value)));
        }
    }

    /// How many steps the caller moves on after a call that succeeded: past the backing read
    /// and the store when a lookup hit. Marks the lookup's client span with `cache.hit`.
    pub(super) fn steps_after_success(&mut self, call: CallId) -> u16 {
        let c = &self.calls[call.0 as usize];
        let span = c.attempt_span as usize;
        let CallRole::CacheGet { skip, .. } = c.role else {
            return 1;
        };
        let hit = c.cache_hit;
        let key = self.intern_static("cache.hit");
        self.telemetry.spans[span]
            .attributes
            .push((key, Value::Bool(hit)));
        if hit { 1 + skip } else { 1 }
    }

    /// A cache call that failed for good does not fail the request, as read-through code
    /// catches it: a lookup counts as a miss and the backing read runs; a lost store is
    /// dropped. False for other calls, which fail their caller as usual.
    pub(super) fn cache_call_gave_up(&mut self, call: CallId, fields: Fields) -> bool {
        let c = &self.calls[call.0 as usize];
        let message = match c.role {
            CallRole::CacheGet { .. } => "cache unavailable, reading through",
            CallRole::CacheSet { .. } => "cache unavailable, value not stored",
            _ => return false,
        };
        let caller = c.caller;
        let inv = &self.invocations[caller.0 as usize];
        let (service, instance, trace) = (inv.service, inv.instance, inv.trace_id);
        let span_id = self.telemetry.spans[inv.span as usize].span_id;
        self.log(
            service,
            instance,
            Level::Warn,
            Some((trace, span_id)),
            message,
            fields,
        );
        self.invocations[caller.0 as usize].step += 1;
        self.run_step(caller);
        true
    }

    /// The cache_outage fault in force on a cache service now, if any.
    fn cache_outage(&self, service: u16) -> Option<usize> {
        let name = &self.scenario.services[usize::from(service)].name;
        let now_ms = self.now.0 / 1_000;
        self.scenario.faults.iter().position(|f| {
            f.effect == FaultEffect::CacheOutage
                && &f.service == name
                && f.from_ms <= now_ms
                && now_ms < f.until_ms
        })
    }

    /// Loses the cache's contents if an outage began since they were last lost.
    fn wipe_if_outage_began(&mut self, service: u16) {
        let name = &self.scenario.services[usize::from(service)].name;
        let now_us = self.now.0;
        let latest = self
            .scenario
            .faults
            .iter()
            .enumerate()
            // Strictly after it began: a sample taken at that instant still sees the contents.
            .filter(|(_, f)| {
                f.effect == FaultEffect::CacheOutage
                    && &f.service == name
                    && f.from_ms.saturating_mul(1_000) < now_us
            })
            .map(|(index, f)| (SimTime::from_ms(f.from_ms), index))
            .max();
        let Some(cache) = self.stores.caches[usize::from(service)].as_mut() else {
            return;
        };
        if let Some((began, fault)) = latest {
            if cache.wiped.is_none_or(|(at, _)| at < began) {
                cache.wipe(began, fault);
            }
        }
    }

    /// What a cache, a queue or a consumer does once it has answered: the cache looks the key
    /// up or stores it, the queue appends the message for each consumer group of its topic,
    /// and a consumer acknowledges its message and takes the next.
    pub(super) fn served(&mut self, inv: InvId, status: u16) {
        let i = &self.invocations[inv.0 as usize];
        let (service, span, trace) = (i.service, i.span as usize, i.trace_id);
        if let Some(g) = i.consumer {
            let instance = i.instance;
            // A consumer span is not an HTTP request: drop the status the server path wrote.
            let status_key = self.keys.status_code;
            self.telemetry.spans[span]
                .attributes
                .retain(|(k, _)| *k != status_key);
            let group = &mut self.stores.groups[usize::from(g)];
            group.busy[usize::from(instance)] -= 1;
            group.consumed += 1;
            self.deliver(usize::from(g));
            return;
        }
        let Some((call, _)) = i.caller else {
            return;
        };
        if status >= 300 {
            return;
        }
        let c = &self.calls[call.0 as usize];
        let key = self.invocations[c.caller.0 as usize].cache_key;
        match c.role {
            CallRole::Plain => {}
            CallRole::CacheGet { .. } => {
                self.wipe_if_outage_began(service);
                let down = self.cache_outage(service).is_some();
                let now = self.now;
                let Some(cache) = self.stores.caches[usize::from(service)].as_mut() else {
                    return;
                };
                let hit = !down && cache.get(key, now);
                let lost = !hit && cache.lost_to_wipe(key, now);
                let wiped_by = cache.wiped.map(|(_, f)| f);
                self.calls[call.0 as usize].cache_hit = hit;
                if let Some(fault) = wiped_by.filter(|_| lost) {
                    // Cold after the outage: this key would still have been there.
                    self.fault_acted(fault, trace);
                }
                let hit_key = self.intern_static("cache.hit");
                self.telemetry.spans[span]
                    .attributes
                    .push((hit_key, Value::Bool(hit)));
            }
            CallRole::CacheSet { ttl } => {
                self.wipe_if_outage_began(service);
                let down = self.cache_outage(service).is_some();
                let now = self.now;
                if let Some(cache) = self.stores.caches[usize::from(service)].as_mut() {
                    if !down {
                        cache.set(key, now, ttl);
                    }
                }
            }
            CallRole::Publish { topic } => {
                // The message carries the producer's context: the broker span's parent. A
                // producer that sent none leaves none in the message: each group's consumer
                // starts a trace of its own, not a second root in the broker's.
                let parent = self.telemetry.spans[span].parent;
                let now = self.now;
                for g in 0..self.stores.groups.len() {
                    let group = &mut self.stores.groups[g];
                    if group.queue == service && group.topic == topic {
                        let trace = if parent.is_some() {
                            trace
                        } else {
                            let r = &mut self.random;
                            TraceId((u128::from(r.next_u64()) << 64) | u128::from(r.next_u64()))
                        };
                        group.publish(now, trace, parent);
                        // Queued behind messages a stall held back: held back by it too.
                        if let Some((up_to, fault)) = group.held {
                            if group.waiting.front().is_some_and(|m| m.offset <= up_to) {
                                group.held = group.last_offset().map(|last| (last, fault));
                            }
                        }
                        self.deliver(g);
                    }
                }
            }
        }
    }

    /// The line a consumer logs when it is done with a message, and its fields.
    pub(super) fn consumer_log(
        &mut self,
        group: u16,
        status: u16,
        elapsed: Duration,
    ) -> (&'static str, Fields) {
        let message = if status >= 500 {
            "message processing failed"
        } else {
            "message processed"
        };
        let topic = self.stores.groups[usize::from(group)].topic;
        let fields = smallvec![
            (
                self.intern_static("messaging.destination.name"),
                Value::Str(topic),
            ),
            (
                self.keys.duration_ms,
                Value::Int((elapsed.0 / 1_000) as i64),
            ),
        ];
        (message, fields)
    }

    /// What keeps one consumer instance from taking messages, and until when: a stall or a
    /// crash (the fault), or an instance killed out of memory and not yet restarted.
    fn consumer_blocked(&self, service: u16, instance: u16) -> Option<(Option<usize>, u64)> {
        let fault = self.active_fault_indexes(service, instance).find(|f| {
            matches!(
                self.scenario.faults[*f].effect,
                FaultEffect::ConsumerStall | FaultEffect::Crash
            )
        });
        if let Some(f) = fault {
            return Some((Some(f), self.scenario.faults[f].until_ms));
        }
        if self.instance_down(service, instance) {
            let back =
                self.heaps.by_service[usize::from(service)][usize::from(instance)].down_until;
            return Some((self.down_fault(service, instance), back.0.div_ceil(1_000)));
        }
        None
    }

    /// Hands waiting messages to free consumers of group `g`; when only consumers held back
    /// by a fault are free, notes that the fault holds the backlog and wakes up when it ends.
    pub(super) fn deliver(&mut self, g: usize) {
        loop {
            let group = &self.stores.groups[g];
            let Some(front) = group.waiting.front().copied() else {
                return;
            };
            let service = group.service;
            let pick = group.free_instance(|i| self.consumer_blocked(service, i).is_none());
            let Some(instance) = pick else {
                let held = (0..group.busy.len() as u16)
                    .filter(|&i| group.busy[usize::from(i)] < group.concurrency)
                    .find_map(|i| self.consumer_blocked(service, i));
                if let Some((fault, until_ms)) = held {
                    self.hold(g, fault, until_ms, front);
                }
                return;
            };
            let group = &mut self.stores.groups[g];
            let message = group.waiting.pop_front().expect("front exists");
            group.busy[usize::from(instance)] += 1;
            if let Some((up_to, fault)) = group.held {
                if message.offset <= up_to {
                    self.fault_acted(fault, message.trace);
                }
            }
            self.start_consumer(g, instance, message);
        }
    }

    /// Consumers are held back until `until_ms` (by `fault`, when one is to blame): so is
    /// every message now waiting in group `g`.
    fn hold(&mut self, g: usize, fault: Option<usize>, until_ms: u64, front: Message) {
        if let Some(fault) = fault {
            let group = &mut self.stores.groups[g];
            group.held = group.last_offset().map(|last| (last, fault));
            self.fault_acted(fault, front.trace);
        }
        // A window that ends past any bounded run leaves the backlog where it is.
        if until_ms > DURATION_MS_MAX {
            return;
        }
        let until = SimTime::from_ms(until_ms);
        let group = &mut self.stores.groups[g];
        if group.wake_at.is_none_or(|w| w <= self.now || w > until) {
            group.wake_at = Some(until);
            let delay = until.since(self.now);
            self.schedule(delay, Event::ConsumersWake(g as u16));
        }
    }

    /// A consumer of group `g` on `instance` takes `message`: a consumer span in the
    /// producer's trace, after a network hop.
    fn start_consumer(&mut self, g: usize, instance: u16, message: Message) {
        let group = &self.stores.groups[g];
        let (service, operation, topic) = (group.service, group.operation, group.topic);
        let inv = self.new_invocation(
            service,
            instance,
            operation,
            message.trace,
            message.parent,
            None,
        );
        self.invocations[inv.0 as usize].consumer = Some(g as u16);
        let delay = self.network_delay();
        let span = self.invocations[inv.0 as usize].span as usize;
        let attributes = [
            (
                self.intern_static("messaging.system"),
                Value::Str(self.intern_static("kafka")),
            ),
            (
                self.intern_static("messaging.destination.name"),
                Value::Str(topic),
            ),
            (
                self.intern_static("messaging.operation"),
                Value::Str(self.intern_static("process")),
            ),
            (
                self.intern_static("messaging.consumer.group.name"),
                Value::Str(self.telemetry.service_names[usize::from(service)]),
            ),
            (
                self.intern_static("messaging.kafka.message.offset"),
                Value::Int(message.offset as i64),
            ),
        ];
        let s = &mut self.telemetry.spans[span];
        s.kind = SpanKind::Consumer;
        // No http.route: it is not an HTTP request. Exactly these five, no growth slack.
        s.attributes = Attributes::new();
        s.attributes.reserve_exact(attributes.len());
        s.attributes.extend(attributes);
        s.start = self.now.after(delay);
        self.invocations[inv.0 as usize].arrived = self.now.after(delay);
        self.schedule(delay, Event::Arrive(inv));
    }

    /// The end of a window that held consumers back: they take messages again.
    pub(super) fn on_consumers_wake(&mut self, g: u16) {
        self.stores.groups[usize::from(g)].wake_at = None;
        self.deliver(usize::from(g));
    }

    /// Samples each cache's keys and lookups and each consumer group's depth and lag.
    pub(super) fn sample_stores(&mut self, bucket: u32) {
        for s in 0..self.stores.caches.len() {
            if self.stores.caches[s].is_none() {
                continue;
            }
            self.wipe_if_outage_began(s as u16);
            let cache = self.stores.caches[s].as_ref().expect("checked");
            self.telemetry.metrics.caches.push(CacheSample {
                bucket,
                service: ServiceId(s as u16),
                keys: cache.len(),
                hits_total: cache.hits,
                misses_total: cache.misses,
            });
        }
        for group in &self.stores.groups {
            self.telemetry.metrics.queues.push(QueueSample {
                bucket,
                queue: ServiceId(group.queue),
                topic: group.topic,
                group: ServiceId(group.service),
                depth: u32::try_from(group.waiting.len()).unwrap_or(u32::MAX),
                lag_us: group.lag(self.now).0,
                published_total: group.published,
                consumed_total: group.consumed,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::mesh::default_mesh;
    use crate::scenario::{FaultEffect, FaultSpec, Scenario, Step};
    use crate::telemetry::{Span, SpanId, SpanKind, Telemetry, TraceId, Value};

    fn run(scenario: &Scenario, seed: u64) -> Telemetry {
        crate::run(scenario, seed).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn attribute<'a>(t: &'a Telemetry, s: &'a Span, key: &str) -> Option<&'a Value> {
        let key = t.strings.lookup(key)?;
        s.attributes.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    fn named(t: &Telemetry, s: &Span, service: &str, operation: &str) -> bool {
        t.service_name(s.service) == service && t.text(s.operation) == operation
    }

    #[test]
    fn a_hit_skips_the_backing_read_and_a_miss_reads_then_stores() {
        let t = run(&default_mesh(80.0, 5_000), 3);
        let mut children: BTreeMap<(TraceId, SpanId), Vec<&Span>> = BTreeMap::new();
        for s in &t.spans {
            if let Some(p) = s.parent {
                children.entry((s.trace_id, p)).or_default().push(s);
            }
        }
        let (mut hits, mut misses) = (0, 0);
        for get in t
            .spans
            .iter()
            .filter(|s| s.kind == SpanKind::Server && named(&t, s, "orders", "get"))
        {
            let calls = &children[&(get.trace_id, get.span_id)];
            let lookup = calls
                .iter()
                .find(|c| named(&t, c, "orders", "get") && c.kind == SpanKind::Client)
                .expect("a lookup");
            let redis = t.strings.lookup("redis").unwrap();
            assert_eq!(attribute(&t, lookup, "db.system"), Some(&Value::Str(redis)));
            let reads = calls
                .iter()
                .filter(|c| t.text(c.operation) == "select")
                .count();
            let stores = calls
                .iter()
                .filter(|c| t.text(c.operation) == "set")
                .count();
            match attribute(&t, lookup, "cache.hit") {
                Some(Value::Bool(true)) => {
                    hits += 1;
                    assert_eq!((reads, stores), (0, 0));
                }
                Some(Value::Bool(false)) => {
                    misses += 1;
                    assert_eq!((reads, stores), (1, 1));
                }
                other => panic!("lookup without cache.hit: {other:?}"),
            }
        }
        // A warm cache with a Zipf key space: most reads hit, some miss.
        assert!(
            hits > 5 * misses && misses > 0,
            "{hits} hits, {misses} misses"
        );
        let last = t.metrics.caches.last().unwrap();
        assert!(last.hits_total > 0 && last.misses_total > 0);
    }

    #[test]
    fn consumers_process_each_message_in_the_producers_trace() {
        let t = run(&default_mesh(50.0, 5_000), 5);
        let producers: BTreeMap<SpanId, &Span> = t
            .spans
            .iter()
            .filter(|s| s.kind == SpanKind::Producer)
            .map(|s| (s.span_id, s))
            .collect();
        let consumers: Vec<&Span> = t
            .spans
            .iter()
            .filter(|s| s.kind == SpanKind::Consumer)
            .collect();
        assert!(consumers.len() > 50, "{}", consumers.len());
        for c in &consumers {
            let p = producers[&c.parent.expect("a parent")];
            assert_eq!(p.trace_id, c.trace_id);
            assert!(c.start >= p.start);
            assert_eq!(t.service_name(c.service), "notifications");
            for key in [
                "messaging.system",
                "messaging.destination.name",
                "messaging.operation",
            ] {
                assert!(attribute(&t, c, key).is_some(), "{key}");
                assert!(attribute(&t, p, key).is_some(), "{key}");
            }
            assert!(attribute(&t, c, "http.route").is_none());
        }
        // Healthy: every message is consumed, and none waits long.
        let queue = t.metrics.queues.last().unwrap();
        assert_eq!(queue.published_total, queue.consumed_total);
        assert_eq!(queue.consumed_total, consumers.len() as u64);
        assert!(t.metrics.queues.iter().all(|q| q.lag_us < 500_000));
        let processed: Vec<_> = t
            .logs
            .iter()
            .filter(|l| t.text(l.message) == "message processed")
            .collect();
        assert_eq!(processed.len(), consumers.len());
        for line in processed {
            let fields: Vec<&str> = line.fields.iter().map(|(k, _)| t.text(*k)).collect();
            assert_eq!(fields, ["messaging.destination.name", "duration_ms"]);
        }
    }

    #[test]
    fn a_stalled_consumer_group_builds_a_backlog_and_drains_it_after() {
        let mut scenario = default_mesh(50.0, 8_000);
        scenario.faults.push(FaultSpec {
            service: "notifications".into(),
            instance: None,
            from_ms: 2_000,
            until_ms: 5_000,
            effect: FaultEffect::ConsumerStall,
        });
        let (t, truth) = crate::Simulation::new(scenario, 9).unwrap().finish();
        let depth: Vec<u32> = t.metrics.queues.iter().map(|q| q.depth).collect();
        // Buckets 2, 3 and 4 end inside the window: the backlog only grows.
        assert!(depth[1] <= 1, "{depth:?}");
        assert!(depth[2] < depth[3] && depth[3] < depth[4], "{depth:?}");
        assert!(
            t.metrics.queues[4].lag_us > 2_000_000,
            "{:?}",
            t.metrics.queues
        );
        // Four consumers drain it within a second or two of the window's end.
        assert!(depth[7] == 0, "{depth:?}");
        let last = t.metrics.queues.last().unwrap();
        assert_eq!(last.published_total, last.consumed_total);
        let stall = &truth.faults[0];
        assert!(stall.first_effect.unwrap().0 >= 2_000_000);
        assert!(stall.affected_traces.len() as u32 > depth[4]);
    }

    #[test]
    fn cache_and_queue_steps_are_checked_at_the_boundary() {
        let problems = |edit: &dyn Fn(&mut Scenario)| {
            let mut s = default_mesh(10.0, 1_000);
            edit(&mut s);
            s.validate()
                .into_iter()
                .map(|e| e.field)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            problems(&|s| {
                if let Step::CacheGet { miss_steps, .. } = &mut s.services[1].operations[0].steps[0]
                {
                    *miss_steps = 3;
                }
            }),
            ["services[1].operations[0].steps[0].miss_steps"]
        );
        assert_eq!(
            problems(&|s| s.services[5].consumer.as_mut().unwrap().operation = "nope".into()),
            ["services[5].consumer.operation"]
        );
        let fault = |service: &str, instance, effect| FaultSpec {
            service: service.into(),
            instance,
            from_ms: 0,
            until_ms: 100,
            effect,
        };
        assert_eq!(
            problems(&|s| s
                .faults
                .push(fault("orders", None, FaultEffect::CacheOutage))),
            ["faults[0].service"]
        );
        assert_eq!(
            problems(&|s| s
                .faults
                .push(fault("cache", Some(0), FaultEffect::CacheOutage))),
            ["faults[0].instance"]
        );
        assert_eq!(
            problems(&|s| s
                .faults
                .push(fault("orders", None, FaultEffect::ConsumerStall))),
            ["faults[0].service"]
        );
        // A consumer that publishes would feed the queue from the queue.
        assert_eq!(
            problems(&|s| {
                s.services[5].operations[0].steps.push(Step::Publish {
                    service: "queue".into(),
                    operation: "publish".into(),
                    topic: "order.created".into(),
                    policy: Default::default(),
                })
            }),
            ["services[5].consumer.operation"]
        );
    }
}
