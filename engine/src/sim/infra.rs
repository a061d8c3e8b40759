//! Infrastructure in the event loop: a database, a cache or a broker is simulated as fully as
//! any service but, like the real PostgreSQL, Redis or RabbitMQ, writes no spans, no line per
//! request and no request metrics. What shows instead: its callers' client spans (with what a
//! client library records, errors included), a database's slow-statement and error lines, and
//! its `pg_stat_*` counters.

use super::*;
use crate::metrics::DatabaseSample;
use crate::scenario::LOG_MIN_DURATION_STATEMENT_MS_DEFAULT;

/// Attributes `database_call_attributes` adds to a client span: `db.system`,
/// `db.operation.name`, `db.namespace` and `server.address`.
pub(super) const DATABASE_ATTRIBUTES: usize = 4;

/// Per database service: its slow-statement threshold, and per instance the transactions it
/// committed and rolled back so far (`pg_stat_database`).
#[derive(Default)]
pub(super) struct Databases {
    /// By service index; None for a service that is no database.
    by_service: Vec<Option<Database>>,
}

struct Database {
    slow: Duration,
    /// (committed, rolled back) per instance.
    transactions: Vec<(u64, u64)>,
}

impl Databases {
    pub(super) fn new(scenario: &Scenario) -> Databases {
        let by_service = scenario
            .services
            .iter()
            .map(|s| {
                s.db_system.as_ref()?;
                let ms = s
                    .log_min_duration_statement_ms
                    .unwrap_or(LOG_MIN_DURATION_STATEMENT_MS_DEFAULT);
                Some(Database {
                    slow: Duration::from_ms(ms),
                    transactions: vec![(0, 0); usize::from(s.instances)],
                })
            })
            .collect();
        Databases { by_service }
    }
}

/// What PostgreSQL answers a statement that failed with `status`: its SQLSTATE, the severity it
/// logs it at, and its message. A full queue stands for a server out of connection slots.
fn postgres_error(status: u16) -> (&'static str, &'static str) {
    match status {
        503 => ("53300", "sorry, too many clients already"),
        _ => ("XX000", "internal error"),
    }
}

impl Simulation {
    /// A query to a database, as an OpenTelemetry database client instrumentation records it:
    /// the span is named by the operation (`SELECT`) and carries the system, the operation,
    /// the database (named after its service) and the server.
    pub(super) fn database_call_attributes(&mut self, call: CallId, span: u32, system: Sym) {
        let c = &self.calls[call.0 as usize];
        let callee = &self.services[usize::from(c.service)];
        let operation = callee.routes[usize::from(c.operation)].db_operation;
        let server = self.telemetry.service_names[usize::from(c.service)];
        let keys = match self.database_keys {
            Some(keys) => keys,
            None => {
                let keys = [
                    self.intern_static("db.system"),
                    self.intern_static("db.operation.name"),
                    self.intern_static("db.namespace"),
                    self.intern_static("server.address"),
                ];
                self.database_keys = Some(keys);
                keys
            }
        };
        self.telemetry.spans[span as usize].operation = operation;
        let mut attributes = self.telemetry.attributes_mut(span as usize);
        for (key, value) in keys.into_iter().zip([system, operation, server, server]) {
            attributes.push((key, Value::Str(value)));
        }
    }

    /// A database, cache or broker answered a call with an error (`status` 500 and up): the
    /// client span records it as its library reports it, with `error.type` (a database's
    /// SQLSTATE, Redis's error prefix `ERR`, `_OTHER` for a broker) and, for a database or
    /// Redis, `db.response.status_code`. Returns the `error.type`, for the caller's line.
    pub(super) fn store_error(&mut self, call: CallId, status: u16) -> &'static str {
        let c = &self.calls[call.0 as usize];
        let (span, role) = (c.attempt_span as usize, c.role);
        let code = match (self.services[usize::from(c.service)].role, role) {
            (ServiceRole::Database, _) => Some(postgres_error(status).0),
            (_, CallRole::CacheGet { .. } | CallRole::CacheSet { .. }) => Some("ERR"),
            _ => None,
        };
        let error_key = self.keys.error_type;
        let error_type = code.unwrap_or("_OTHER");
        let value = self.intern_static(error_type);
        if let Some(code) = code {
            let (key, code) = (
                self.intern_static("db.response.status_code"),
                self.intern_static(code),
            );
            self.telemetry
                .attributes_mut(span)
                .push((key, Value::Str(code)));
        }
        self.telemetry
            .attributes_mut(span)
            .push((error_key, Value::Str(value)));
        error_type
    }

    /// A request to infrastructure is answered. A database counts the transaction (a
    /// statement refused for want of a connection slot is none) and logs the statement if it
    /// failed or, like `log_min_duration_statement`, took its threshold or longer; a cache
    /// or a broker writes nothing.
    pub(super) fn infrastructure_answered(&mut self, inv: InvId, status: u16, elapsed: Duration) {
        let i = &self.invocations[inv.0 as usize];
        let (service, instance, operation) = (i.service, i.instance, i.operation);
        let Some(db) = self.databases.by_service[usize::from(service)].as_mut() else {
            return;
        };
        let counts = &mut db.transactions[usize::from(instance)];
        match status {
            503 => {}
            s if s >= 400 => counts.1 += 1,
            _ => counts.0 += 1,
        }
        let slow = elapsed >= db.slow;
        if status < 500 && !slow {
            return;
        }
        let statement =
            self.services[usize::from(service)].routes[usize::from(operation)].db_operation;
        // The client names itself in `application_name`, as libpq and JDBC drivers let it.
        let application = i
            .caller
            .map(|(call, _)| {
                self.invocations[self.calls[call.0 as usize].caller.0 as usize].service
            })
            .map(|caller| self.telemetry.service_names[usize::from(caller)]);
        let mut fields: Fields =
            smallvec![(self.intern_static("statement"), Value::Str(statement))];
        if let Some(application) = application {
            fields.push((
                self.intern_static("application_name"),
                Value::Str(application),
            ));
        }
        if status >= 500 {
            let (state, message) = postgres_error(status);
            let state = self.intern_static(state);
            fields.insert(0, (self.intern_static("state_code"), Value::Str(state)));
            self.log(service, instance, Level::Error, None, message, fields);
            return;
        }
        // Written only when it will be kept: the message is made for the line.
        if self.scenario.services[usize::from(service)].log_level > LogLevel::Info {
            return;
        }
        let us = elapsed.0;
        let text = format!(
            "duration: {}.{:03} ms  statement: {}",
            us / 1_000,
            us % 1_000,
            self.telemetry.strings.get(statement)
        );
        let message = self.telemetry.strings.intern(&text);
        fields.insert(
            0,
            (
                self.keys.duration_ms,
                Value::int(i64::try_from(us / 1_000).unwrap_or(i64::MAX)),
            ),
        );
        self.log(service, instance, Level::Info, None, message, fields);
    }

    /// Samples each database instance: connections running a statement (its busy workers),
    /// and its transactions so far.
    pub(super) fn sample_databases(&mut self, bucket: u32) {
        for (s, db) in self.databases.by_service.iter().enumerate() {
            let Some(db) = db else {
                continue;
            };
            for (i, &(committed, rolled_back)) in db.transactions.iter().enumerate() {
                self.telemetry.metrics.databases.push(DatabaseSample {
                    bucket,
                    service: ServiceId(s as u16),
                    instance: i as u16,
                    active: self.services[s].instances[i].busy,
                    xact_commit_total: committed,
                    xact_rollback_total: rolled_back,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crate::mesh::default_mesh;
    use crate::scenario::{FaultEffect, FaultSpec, Scenario};
    use crate::telemetry::{Level, LogLine, Span, SpanKind, SpanStatus, Sym, Telemetry, TraceId};
    use crate::time::SimTime;

    fn run(scenario: &Scenario, seed: u64) -> (Telemetry, crate::GroundTruth) {
        crate::Simulation::new(scenario.clone(), seed)
            .unwrap_or_else(|e| panic!("{e:?}"))
            .finish()
    }

    fn field(t: &Telemetry, fields: &[(Sym, super::Value)], key: &str) -> Option<String> {
        fields
            .iter()
            .find(|(k, _)| t.text(*k) == key)
            .map(|(_, v)| t.value_text(v))
    }

    fn text(t: &Telemetry, s: &Span, key: &str) -> Option<String> {
        t.attributes(s)
            .iter()
            .find(|(k, _)| t.text(*k) == key)
            .map(|(_, v)| t.value_text(v))
    }

    /// Client spans of calls to `service` (by `peer.service`).
    fn calls_to<'a>(t: &'a Telemetry, service: &'a str) -> impl Iterator<Item = &'a Span> {
        t.spans.iter().filter(move |s| {
            s.kind != SpanKind::Server && text(t, s, "peer.service").as_deref() == Some(service)
        })
    }

    fn lines<'a>(t: &'a Telemetry, service: &'a str) -> impl Iterator<Item = &'a LogLine> {
        t.logs
            .iter()
            .filter(move |l| t.service_name(l.service) == service)
    }

    #[test]
    fn infrastructure_writes_no_spans_no_request_lines_and_no_request_metrics() {
        let (t, _) = run(&default_mesh(50.0, 5_000), 3);
        for service in ["database", "cache", "queue"] {
            assert!(
                t.spans.iter().all(|s| t.service_name(s.service) != service),
                "{service}"
            );
            assert_eq!(lines(&t, service).count(), 0, "{service}");
            assert!(
                t.metrics
                    .requests
                    .keys()
                    .all(|((s, _, _), _)| t.service_name(*s) != service),
                "{service}"
            );
            assert!(calls_to(&t, service).count() > 50, "{service}");
        }
        // A query is the caller's client span, named by its operation, with what a PostgreSQL
        // client instrumentation records.
        let queries: Vec<&Span> = calls_to(&t, "database").collect();
        for q in &queries {
            let name = t.text(q.operation);
            assert!(
                ["SELECT", "INSERT", "UPDATE", "DELETE"].contains(&name),
                "{name}"
            );
            assert_eq!(text(&t, q, "db.operation.name").as_deref(), Some(name));
            for (key, value) in [
                ("db.system", "postgresql"),
                ("db.namespace", "database"),
                ("server.address", "database"),
            ] {
                assert_eq!(text(&t, q, key).as_deref(), Some(value), "{key}");
            }
            assert_eq!(text(&t, q, "http.response.status_code"), None);
            assert_eq!(q.status, SpanStatus::Unset);
        }
        // Its exporter counts the transactions: one per query, all committed (no query is
        // slow enough for its caller to give up on it in a healthy run).
        let last = t.metrics.databases.last().unwrap();
        assert_eq!(last.xact_commit_total, queries.len() as u64);
        assert_eq!(last.xact_rollback_total, 0);
        // Its backends at work show at the sampling instants: queries take a few milliseconds,
        // so at 50 requests a second most instants find none; at 200 over 20 s some find one.
        let (busy, _) = run(&default_mesh(200.0, 20_000), 3);
        assert!(busy.metrics.databases.iter().any(|d| d.active > 0));
        let text = crate::export::prometheus(&t);
        for family in [
            "pg_stat_activity_count",
            "pg_stat_database_xact_commit",
            "pg_stat_database_xact_rollback",
        ] {
            assert!(text.contains(&format!("# TYPE {family} ")), "{family}");
        }
        assert!(text.contains(&format!(
            "pg_stat_database_xact_commit{{service=\"database\",instance=\"database-0\",datname=\"database\"}} {} ",
            last.xact_commit_total
        )));
    }

    #[test]
    fn a_slow_database_logs_its_slow_statements_and_only_those() {
        let mut scenario = default_mesh(50.0, 6_000);
        scenario.faults.push(FaultSpec::new(
            "database",
            None,
            2_000,
            4_000,
            FaultEffect::Latency { extra_ms: 600 },
        ));
        let (t, truth) = run(&scenario, 5);
        let slow: Vec<&LogLine> = lines(&t, "database").collect();
        assert!(slow.len() > 20, "{}", slow.len());
        for line in &slow {
            // `duration: 612.345 ms  statement: SELECT`, as log_min_duration_statement writes it.
            let message = t.text(line.message);
            let field = |key| field(&t, &line.fields, key).unwrap();
            let ms: u64 = field("duration_ms").parse().unwrap();
            assert!(ms >= 600, "{message}");
            assert!(
                message.starts_with(&format!("duration: {ms}.")),
                "{message}"
            );
            assert!(message.ends_with(&format!(" ms  statement: {}", field("statement"))));
            assert!(
                ["auth", "orders", "payments", "inventory"]
                    .contains(&field("application_name").as_str())
            );
            assert_eq!(
                (line.level, line.trace_id, line.span_id),
                (Level::Info, None, None)
            );
            assert!(line.time >= SimTime::from_ms(2_000) && line.time < SimTime::from_ms(4_700));
        }
        // The callers' queries show the same wait, and the ground truth names the traces that
        // hold them: the database has none of its own.
        let fault = &truth.faults[0];
        assert!(fault.first_effect.unwrap() >= SimTime::from_ms(2_000));
        let waited: BTreeSet<TraceId> = calls_to(&t, "database")
            .filter(|s| s.start >= SimTime::from_ms(2_000) && s.start < SimTime::from_ms(4_000))
            .filter(|s| {
                s.end().unwrap().since(s.start).0 > 150_000 || s.status == SpanStatus::Error
            })
            .map(|s| s.trace_id)
            .collect();
        assert!(waited.len() > 10, "{}", waited.len());
        assert!(waited.is_subset(&fault.affected_traces));
        let held: BTreeSet<TraceId> = calls_to(&t, "database").map(|s| s.trace_id).collect();
        assert!(fault.affected_traces.is_subset(&held));

        // A database's clock is the host's: a skew shows in its lines' timestamps, and the
        // ground truth dates the first one (they belong to no trace).
        let mut skewed = default_mesh(50.0, 6_000);
        skewed.faults = scenario.faults.clone();
        skewed.faults.push(FaultSpec::new(
            "database",
            None,
            2_500,
            6_000,
            FaultEffect::ClockSkew {
                offset_ms: -900,
                drift_ppm: 0,
            },
        ));
        let (t, truth) = run(&skewed, 5);
        let late: Vec<&LogLine> = lines(&t, "database")
            .filter(|l| l.time >= SimTime::from_ms(2_500))
            .collect();
        assert!(!late.is_empty() && late.iter().all(|l| l.clock_offset_us == -900_000));
        assert_eq!(truth.faults[1].first_effect, Some(late[0].time));
        assert!(truth.faults[1].affected_traces.is_empty());

        // A threshold of 0 logs every statement that ran to the end, as PostgreSQL's does.
        let mut every = default_mesh(50.0, 2_000);
        let database = every
            .services
            .iter_mut()
            .find(|s| s.name == "database")
            .unwrap();
        database.log_min_duration_statement_ms = Some(0);
        let (t, _) = run(&every, 5);
        let committed = t.metrics.databases.last().unwrap().xact_commit_total;
        assert_eq!(lines(&t, "database").count() as u64, committed);
    }

    #[test]
    fn a_failing_database_logs_its_errors_and_its_callers_record_them() {
        let mut scenario = default_mesh(50.0, 4_000);
        scenario.faults.push(FaultSpec::new(
            "database",
            None,
            1_000,
            3_000,
            FaultEffect::ErrorRate { rate: 0.5 },
        ));
        let (t, truth) = run(&scenario, 6);
        let failed: Vec<&Span> = calls_to(&t, "database")
            .filter(|s| s.status == SpanStatus::Error)
            .collect();
        // About half the statements in the window fail (retries make their number vary).
        let window = calls_to(&t, "database")
            .filter(|s| (1_000_000..3_000_000).contains(&s.start.0))
            .count();
        assert!(
            failed.len() > 10 && (window / 4..=window * 3 / 4).contains(&failed.len()),
            "{} of {window}",
            failed.len()
        );
        for s in &failed {
            assert_eq!(text(&t, s, "error.type").as_deref(), Some("XX000"));
            assert_eq!(
                text(&t, s, "db.response.status_code").as_deref(),
                Some("XX000")
            );
        }
        let errors: Vec<&LogLine> = lines(&t, "database").collect();
        // Every failed statement is logged once, whether its caller was still waiting or not.
        let rolled_back = t.metrics.databases.last().unwrap().xact_rollback_total;
        assert_eq!(errors.len() as u64, rolled_back);
        assert!(rolled_back >= failed.len() as u64);
        for line in &errors {
            assert_eq!(
                (line.level, t.text(line.message)),
                (Level::Error, "internal error")
            );
            assert_eq!(
                field(&t, &line.fields, "state_code").as_deref(),
                Some("XX000")
            );
        }
        let affected = &truth.faults[0].affected_traces;
        assert!(failed.iter().all(|s| affected.contains(&s.trace_id)));

        // A database out of connection slots refuses with 53300, and says so.
        let mut crowded = default_mesh(80.0, 3_000);
        let database = crowded
            .services
            .iter_mut()
            .find(|s| s.name == "database")
            .unwrap();
        (database.workers, database.queue_limit) = (1, 0);
        let (t, _) = run(&crowded, 6);
        let refused = calls_to(&t, "database")
            .filter(|s| text(&t, s, "error.type").as_deref() == Some("53300"))
            .count();
        assert!(refused > 0);
        assert_eq!(
            lines(&t, "database")
                .filter(|l| t.text(l.message) == "sorry, too many clients already")
                .count(),
            refused
        );
    }

    #[test]
    fn redis_and_broker_errors_show_on_their_callers_spans_as_their_clients_report_them() {
        let mut scenario = default_mesh(50.0, 4_000);
        for service in ["cache", "queue"] {
            scenario.faults.push(FaultSpec::new(
                service,
                None,
                1_000,
                3_000,
                FaultEffect::ErrorRate { rate: 0.5 },
            ));
        }
        let (t, truth) = run(&scenario, 8);
        for (service, kind, error, code) in [
            ("cache", SpanKind::Client, "ERR", Some("ERR")),
            ("queue", SpanKind::Producer, "_OTHER", None),
        ] {
            let failed: Vec<&Span> = calls_to(&t, service)
                .filter(|s| s.status == SpanStatus::Error)
                .collect();
            assert!(failed.len() > 5, "{service}: {}", failed.len());
            for s in &failed {
                assert_eq!(s.kind, kind);
                assert_eq!(text(&t, s, "error.type").as_deref(), Some(error));
                assert_eq!(text(&t, s, "db.response.status_code").as_deref(), code);
                assert_eq!(text(&t, s, "http.response.status_code"), None);
            }
            // Neither writes a line about it; its callers' traces are the affected ones.
            assert_eq!(lines(&t, service).count(), 0);
            let f = usize::from(service == "queue");
            assert!(
                failed
                    .iter()
                    .all(|s| truth.faults[f].affected_traces.contains(&s.trace_id))
            );
        }
        // The callers say so in their own words, with the same error.type.
        let warned = t
            .logs
            .iter()
            .filter(|l| t.text(l.message) == "call failed, retrying")
            .filter(|l| field(&t, &l.fields, "error.type").as_deref() == Some("_OTHER"))
            .count();
        assert!(warned > 0);
    }

    #[test]
    fn a_crashed_cache_shows_in_its_callers_refused_lookups_only() {
        let mut scenario = default_mesh(50.0, 4_000);
        scenario.faults.push(FaultSpec::new(
            "cache",
            Some(0),
            1_000,
            2_000,
            FaultEffect::Crash,
        ));
        let (t, truth) = run(&scenario, 7);
        // Lookups sent while it is down are refused; one on the wire when it crashed is reset.
        let failed = |error: &str| -> BTreeSet<TraceId> {
            calls_to(&t, "cache")
                .filter(|s| text(&t, s, "error.type").as_deref() == Some(error))
                .map(|s| s.trace_id)
                .collect()
        };
        let (refused, reset) = (failed("connection_refused"), failed("connection_reset"));
        assert!(refused.len() > 20, "{}", refused.len());
        assert!(reset.len() <= 2, "{reset:?}");
        assert_eq!(
            truth.faults[0].affected_traces,
            refused.union(&reset).copied().collect()
        );
        // Redis writes nothing about it; the read-through callers warn.
        assert_eq!(lines(&t, "cache").count(), 0);
        assert!(
            t.logs
                .iter()
                .any(|l| t.text(l.message) == "cache unavailable, reading through")
        );
    }
}
