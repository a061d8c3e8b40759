//! Scenario files: TOML that instructors write, read into the engine's `Scenario` and checked.
//! Shape errors (a missing or unknown field, a wrong type) carry line and column; rule errors
//! from the engine's validation carry the field path.

use faultline_engine::Scenario;

use crate::error::LessonError;

/// Reads and validates a scenario file; Err lists every problem found.
pub fn parse_scenario(file: &str, text: &str) -> Result<Scenario, Vec<LessonError>> {
    let scenario: Scenario = crate::error::from_toml(file, text)?;
    let problems = scenario.validate();
    if problems.is_empty() {
        return Ok(scenario);
    }
    Err(problems
        .into_iter()
        .map(|p| LessonError::Field {
            file: file.to_string(),
            field: p.field,
            problem: p.problem,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::parse_scenario;

    const SMALL: &str = r#"
name = "two services"
duration_ms = 1000

[[services]]
name = "front"
instances = 1
workers = 4
queue_limit = 8
[[services.operations]]
name = "GET /"
steps = [{ kind = "call", service = "back", operation = "read", policy = { timeout_ms = 100 } }]

[[services]]
name = "back"
instances = 1
workers = 4
queue_limit = 8
[[services.operations]]
name = "read"
steps = [{ kind = "work", p50_ms = 2.0, p99_ms = 9.0 }]

[workload]
rate_per_s = 20.0
entries = [{ service = "front", operation = "GET /", weight = 1 }]
"#;

    #[test]
    fn every_feature_of_the_default_mesh_can_be_written_in_toml() {
        // The default mesh uses every mechanism (sagas, caches, queues, locks, runtimes):
        // written out as TOML and read back, it is the same scenario.
        let mut mesh = faultline_engine::mesh::default_mesh(50.0, 10_000);
        mesh.faults = faultline_engine::scenario::FAULT_CATALOG
            .iter()
            .filter_map(|name| example_fault(name))
            .collect();
        let text = toml::to_string(&mesh).unwrap();
        let back = crate::error::from_toml::<faultline_engine::Scenario>("mesh.toml", &text)
            .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        assert_eq!(back, mesh);
        assert!(text.contains("compensate = \"release\""), "{text}");
    }

    /// One fault of each kind that takes no target-specific settings beyond its kind.
    fn example_fault(kind: &str) -> Option<faultline_engine::scenario::FaultSpec> {
        let effect: faultline_engine::scenario::FaultEffect =
            toml::from_str(&format!("kind = \"{kind}\"")).ok()?;
        Some(faultline_engine::scenario::FaultSpec {
            service: "orders".into(),
            instance: None,
            from_ms: 1_000,
            until_ms: 2_000,
            effect,
        })
    }

    fn errors(text: &str) -> Vec<String> {
        match parse_scenario("s.toml", text) {
            Ok(_) => vec![],
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_small_scenario_parses_and_runs() {
        let scenario = parse_scenario("s.toml", SMALL).unwrap();
        let telemetry = faultline_engine::run(&scenario, 1).unwrap();
        assert!(telemetry.spans.len() > 20);
    }

    #[test]
    fn shape_errors_have_a_position() {
        let text = SMALL.replace(
            "workers = 4\nqueue_limit = 8\n[[services.operations]]\nname = \"read\"",
            "workers = -4\nqueue_limit = 8\n[[services.operations]]\nname = \"read\"",
        );
        assert_eq!(
            errors(&text),
            ["s.toml:17:11: invalid value: integer `-4`, expected u16"]
        );
    }

    #[test]
    fn rule_errors_name_the_field() {
        let text = SMALL.replace(
            "service = \"back\", operation",
            "service = \"ledger\", operation",
        );
        assert_eq!(
            errors(&text),
            ["s.toml: `services[0].operations[0].steps[0].service`: no service is named `ledger`"]
        );
    }
}
