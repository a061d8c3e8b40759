//! Importing trace files from real tools (`../shared/fixtures/traces`): each loads, and its
//! orphans, cycles and critical path come out as the tools that made them would show them.

use faultline_engine::import::{Format, import_json};
use faultline_engine::trace::{TraceTree, TraceWarning, trace_ids};
use faultline_tests::shared_fixtures;

fn load(name: &str) -> faultline_engine::import::Imported {
    let path = shared_fixtures().join("traces").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    import_json(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn otlp_example_keeps_its_upper_case_ids_and_reports_the_missing_parent() {
    let imported = load("otlp-example.json");
    assert_eq!(imported.format, Format::Otlp);
    let t = &imported.telemetry;
    assert_eq!(t.spans.len(), 1);
    let span = &t.spans[0];
    assert_eq!(
        span.trace_id.to_string(),
        "5b8efff798038103d269b633813fc60c"
    );
    assert_eq!(span.span_id.to_string(), "eee19b7ec3c1b174");
    assert_eq!(t.service_name(span.service), "my.service");
    assert_eq!(span.end().unwrap().0 - span.start.0, 1_000_000); // one second, from numbers
    let tree = TraceTree::new(t, span.trace_id);
    assert!(tree.incomplete());
    assert_eq!(
        tree.warnings[0].to_string(),
        "orphan: span eee19b7ec3c1b174's parent eee19b7ec3c1b173 is not in the trace"
    );
}

#[test]
fn jaeger_ui_wrapper_with_non_hex_ids_gives_jaeger_uis_critical_path() {
    let imported = load("jaeger-ui-critical-path.json");
    assert_eq!(imported.format, Format::Jaeger);
    let t = &imported.telemetry;
    assert_eq!(t.spans.len(), 6);
    let ids = trace_ids(t);
    assert_eq!(ids.len(), 1);
    let tree = TraceTree::new(t, ids[0]);
    assert!(tree.warnings.is_empty(), "{:?}", tree.warnings);
    // Every child here starts exactly when its parent ends, so Jaeger UI's clipping drops
    // span-3 and everything under it: the whole 60 ms of span-1 is the critical path.
    let path = tree.critical_path();
    assert_eq!(path.len(), 1);
    let root = &tree.spans[tree.roots[0]];
    assert_eq!(path[0].span, root.span_id);
    assert_eq!((path[0].start.0, path[0].end.0), (0, 60_000));
    let original = t.strings.lookup("import.span_id").unwrap();
    assert!(t.attributes(root).iter().any(|(k, v)| *k == original
        && matches!(v, faultline_engine::telemetry::Value::Str(s) if t.text(*s) == "span-1")));
}

#[test]
fn jaeger_parent_cycle_loads_with_a_cycle_warning() {
    let t = load("jaeger-parent-cycle.json").telemetry;
    let tree = TraceTree::new(&t, trace_ids(&t)[0]);
    assert_eq!(tree.roots.len(), 1);
    assert!(matches!(&tree.warnings[..], [TraceWarning::Cycle { spans }] if spans.len() == 2));
    assert_eq!(tree.critical_path().len(), 2, "the cut root and its child");
}

#[test]
fn jaeger_multiple_orphans_load_with_a_warning_each() {
    let t = load("jaeger-multiple-orphans.json").telemetry;
    let tree = TraceTree::new(&t, trace_ids(&t)[0]);
    let orphans = tree
        .warnings
        .iter()
        .filter(|w| matches!(w, TraceWarning::Orphan { .. }))
        .count();
    assert_eq!(orphans, 2);
    assert_eq!(tree.roots.len(), 3); // the real root and two orphans
    let root = tree.spans[tree.roots[1]];
    assert_eq!(t.text(root.operation), "rootOperation");
    assert_eq!(
        tree.children[tree.roots[1]].len(),
        2,
        "children listed before their root still attach"
    );
}

#[test]
fn garbage_is_refused_with_a_reason() {
    assert_eq!(
        import_json("{")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
            .split(':')
            .next(),
        Some("not JSON")
    );
    assert!(import_json("{\"hello\": 1}").is_err());
    assert!(import_json("{\"data\": []}").is_err());
}
