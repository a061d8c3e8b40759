//! What each service is to the mesh: an application instrumented with OpenTelemetry, or a piece
//! of infrastructure (a database, a cache, a message broker) that the run simulates as fully but
//! that, like the real PostgreSQL, Redis or RabbitMQ, writes no spans. Derived from how the
//! scenario uses the service, and checked here.

use super::{DataEffect, Scenario, Step};

/// How a service shows in the telemetry, from how the scenario uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceRole {
    /// Instrumented: server spans, a log line per request, request metrics.
    Application,
    /// Has a `db_system`: its callers' client spans carry the database conventions; it logs
    /// only slow statements and errors, and has `pg_stat_*`-style metrics.
    Database,
    /// Read by `cache_get` steps: Redis semantics, no spans and no lines of its own.
    Cache,
    /// Published to by `publish` steps, or a consumer's `queue`: a RabbitMQ-style broker, no
    /// spans and no lines of its own; the consumer spans are in the consuming services.
    Broker,
}

impl ServiceRole {
    /// Whether the service writes spans, per-request lines and request metrics.
    pub fn instrumented(self) -> bool {
        self == ServiceRole::Application
    }

    fn name(self) -> &'static str {
        match self {
            ServiceRole::Application => "an application",
            ServiceRole::Database => "a database (it has a db_system)",
            ServiceRole::Cache => "a cache (cache_get steps read from it)",
            ServiceRole::Broker => "a broker (publish steps or a consumer's queue name it)",
        }
    }
}

/// A database's slow-statement threshold when the scenario sets none, as a
/// `log_min_duration_statement = 500ms` in `postgresql.conf`.
pub const LOG_MIN_DURATION_STATEMENT_MS_DEFAULT: u64 = 500;

impl Scenario {
    /// Every role the scenario gives service `index`, in the order Database, Cache, Broker:
    /// more than one is a mistake `validate` reports; none makes it an application.
    fn roles_of(&self, index: usize) -> Vec<ServiceRole> {
        let name = &self.services[index].name;
        let steps = || {
            self.services
                .iter()
                .flat_map(|s| &s.operations)
                .flat_map(|o| &o.steps)
        };
        let mut roles = Vec::new();
        if self.services[index].db_system.is_some() {
            roles.push(ServiceRole::Database);
        }
        if steps().any(|s| matches!(s, Step::CacheGet { service, .. } if service == name)) {
            roles.push(ServiceRole::Cache);
        }
        if steps().any(|s| matches!(s, Step::Publish { service, .. } if service == name))
            || self
                .services
                .iter()
                .any(|s| s.consumer.as_ref().is_some_and(|c| &c.queue == name))
        {
            roles.push(ServiceRole::Broker);
        }
        roles
    }

    /// The role of each service, by index.
    pub fn roles(&self) -> Vec<ServiceRole> {
        (0..self.services.len())
            .map(|s| {
                self.roles_of(s)
                    .first()
                    .copied()
                    .unwrap_or(ServiceRole::Application)
            })
            .collect()
    }

    /// Infrastructure stays infrastructure: one role per service; it serves requests with work
    /// steps only (no calls, jobs, locks or consumers of its own, and no business effect: a
    /// database inserts and deletes rows, nothing that logs a line), is reached only by its
    /// callers (never from outside the mesh), a cache only through `cache_get` and a broker
    /// only through `publish`; only a database takes a slow-statement threshold.
    pub(super) fn check_roles(&self, bad: &mut impl FnMut(String, String)) {
        let roles = self.roles();
        for (s, service) in self.services.iter().enumerate() {
            let at = format!("services[{s}]");
            let all = self.roles_of(s);
            if all.len() > 1 {
                let names: Vec<&str> = all.iter().map(|r| r.name()).collect();
                bad(
                    format!("{at}.name"),
                    format!("`{}` is {}", service.name, names.join(" and ")),
                );
            }
            if let Some(ms) = service.log_min_duration_statement_ms {
                if service.db_system.is_none() {
                    bad(
                        format!("{at}.log_min_duration_statement_ms"),
                        "only a database (a service with a db_system) logs slow statements".into(),
                    );
                } else if ms > super::DURATION_MS_MAX {
                    bad(
                        format!("{at}.log_min_duration_statement_ms"),
                        format!("at most {}", super::DURATION_MS_MAX),
                    );
                }
            }
            // Calls from any service: to a cache or a broker only through their own steps.
            for (o, op) in service.operations.iter().enumerate() {
                for (i, step) in op.steps.iter().enumerate() {
                    let Step::Call {
                        service: target, ..
                    } = step
                    else {
                        continue;
                    };
                    let Some(t) = self.services.iter().position(|x| &x.name == target) else {
                        continue;
                    };
                    if matches!(roles[t], ServiceRole::Cache | ServiceRole::Broker) {
                        bad(
                            format!("{at}.operations[{o}].steps[{i}].service"),
                            format!(
                                "`{target}` is {}: reach it with a {} step",
                                roles[t].name(),
                                if roles[t] == ServiceRole::Cache {
                                    "cache_get"
                                } else {
                                    "publish"
                                }
                            ),
                        );
                    }
                }
            }
            let role = roles[s];
            if role.instrumented() {
                continue;
            }
            let what = role.name();
            if service.consumer.is_some() {
                bad(
                    format!("{at}.consumer"),
                    format!("`{}` is {what}, which consumes no queue", service.name),
                );
            }
            for (o, op) in service.operations.iter().enumerate() {
                let at = format!("{at}.operations[{o}]");
                if op.every_ms.is_some() {
                    bad(
                        format!("{at}.every_ms"),
                        format!("`{}` is {what}, which runs no jobs", service.name),
                    );
                }
                if op
                    .effect
                    .is_some_and(|e| !matches!(e, DataEffect::Insert | DataEffect::Delete))
                {
                    bad(
                        format!("{at}.effect"),
                        format!(
                            "`{}` is {what}: its only effects are insert and delete",
                            service.name
                        ),
                    );
                }
                if op.lock.is_some() {
                    bad(
                        format!("{at}.lock"),
                        format!("`{}` is {what}, which takes no locks", service.name),
                    );
                }
                for (i, step) in op.steps.iter().enumerate() {
                    if !matches!(step, Step::Work { .. }) {
                        bad(
                            format!("{at}.steps[{i}]"),
                            format!("`{}` is {what}: it runs work steps only", service.name),
                        );
                    }
                }
            }
        }
        for (e, entry) in self.workload.entries.iter().enumerate() {
            let Some(s) = self.services.iter().position(|x| x.name == entry.service) else {
                continue;
            };
            if !roles[s].instrumented() {
                bad(
                    format!("workload.entries[{e}].service"),
                    format!(
                        "`{}` is {}: requests come from outside to applications only",
                        entry.service,
                        roles[s].name()
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::default_mesh;
    use crate::scenario::{CallPolicy, DataEffect, Entry};

    /// The fields `validate` blames after `edit` on the default mesh.
    fn problems(edit: &dyn Fn(&mut Scenario)) -> Vec<String> {
        let mut scenario = default_mesh(10.0, 1_000);
        edit(&mut scenario);
        scenario.validate().into_iter().map(|e| e.field).collect()
    }

    fn call(service: &str, operation: &str) -> Step {
        Step::Call {
            service: service.into(),
            operation: operation.into(),
            policy: CallPolicy::default(),
            compensate: None,
        }
    }

    #[test]
    fn the_default_mesh_has_three_pieces_of_infrastructure() {
        let scenario = default_mesh(10.0, 1_000);
        let roles = scenario.roles();
        assert_eq!(
            roles[6..],
            [
                ServiceRole::Database,
                ServiceRole::Cache,
                ServiceRole::Broker
            ]
        );
        assert!(roles[..6].iter().all(|r| r.instrumented()));
        assert!(problems(&|_| {}).is_empty());
    }

    #[test]
    fn infrastructure_stays_infrastructure() {
        // One role per service.
        assert_eq!(
            problems(&|s| s.services[7].db_system = Some("redis".into())),
            ["services[7].name"]
        );
        // Work steps only, no jobs, locks, consumers or business effects.
        assert_eq!(
            problems(&|s| s.services[6].operations[0]
                .steps
                .push(call("auth", "verify"))),
            ["services[6].operations[0].steps[1]"]
        );
        assert_eq!(
            problems(&|s| s.services[6].operations[1].every_ms = Some(1_000)),
            ["services[6].operations[1].every_ms"]
        );
        assert_eq!(
            problems(&|s| s.services[6].operations[0].effect = Some(DataEffect::Charge)),
            ["services[6].operations[0].effect"]
        );
        assert_eq!(
            problems(&|s| {
                let mut consumer = s.services[5].consumer.clone().unwrap();
                consumer.operation = "get".into();
                s.services[7].consumer = Some(consumer);
            }),
            ["services[7].consumer"]
        );
        // Reached by callers only, the cache through cache_get and the broker through publish.
        assert_eq!(
            problems(&|s| s.workload.entries.push(Entry {
                service: "database".into(),
                operation: "select".into(),
                weight: 1,
            })),
            ["workload.entries[2].service"]
        );
        assert_eq!(
            problems(&|s| s.services[4].operations[1]
                .steps
                .push(call("queue", "publish"))),
            ["services[4].operations[1].steps[2].service"]
        );
        // The slow-statement threshold is a database's, and bounded.
        assert_eq!(
            problems(&|s| s.services[2].log_min_duration_statement_ms = Some(100)),
            ["services[2].log_min_duration_statement_ms"]
        );
        assert_eq!(
            problems(&|s| s.services[6].log_min_duration_statement_ms = Some(u64::MAX)),
            ["services[6].log_min_duration_statement_ms"]
        );
        assert!(problems(&|s| s.services[6].log_min_duration_statement_ms = Some(0)).is_empty());
    }
}
