//! `faultline`, the command-line shell over the engine for authors and for checking the engine
//! from outside: `run` a scenario and write its telemetry in standard formats, `bench` the
//! engine. Holds no simulation logic; it reads files, calls the engine and writes files.

mod alloc;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use faultline_engine::{Scenario, Telemetry, export, mesh};

/// `println!` and `print!` that end the program quietly once the reader has gone, as Unix tools
/// do (`faultline logs DIR QUERY | head`), where std's would panic on the closed pipe.
macro_rules! println {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(error) = writeln!(std::io::stdout(), $($arg)*) {
            crate::output_failed(&error)
        }
    }};
}
macro_rules! print {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(error) = write!(std::io::stdout(), $($arg)*) {
            crate::output_failed(&error)
        }
    }};
}

/// Standard output could not be written: done, quietly, when its reader closed it; else says why.
fn output_failed(error: &std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("faultline: writing the output: {error}");
    std::process::exit(1);
}

const USAGE: &str = "\
usage:
  faultline run SCENARIO [--seed N] --out DIR   run a scenario (a .toml file, or `default`)
                                                and write traces, logs and metrics to DIR
  faultline inspect FILE                        import a Jaeger JSON or OTLP/JSON file and
                                                print each trace's shape, critical path and
                                                warnings
  faultline logql 'QUERY'                       check a log query: print how it reads, or
                                                the error and where it is
  faultline logs DIR 'QUERY'                    run a log query over DIR/logs.ndjson
  faultline bench [--requests N] [--rate R]     time the engine on the default mesh
                                                (R requests a second, default 1000;
                                                the lesson is --requests 15000 --rate 50)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("inspect") => inspect(&args[1..]),
        Some("logql") => logql(&args[1..]),
        Some("logs") => logs(&args[1..]),
        Some("help" | "--help" | "-h") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("faultline: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `--flag value` pairs, and the positional arguments.
type Parsed = (Vec<(String, String)>, Vec<String>);

/// Values of `--flag value` options, and the remaining positional arguments.
fn options(args: &[String], flags: &[&str]) -> Result<Parsed, String> {
    let (mut found, mut positional) = (Vec::new(), Vec::new());
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if let Some(flag) = flags.iter().find(|f| **f == arg) {
            let value = iter.next().ok_or(format!("{flag} needs a value"))?;
            found.push((flag.to_string(), value.clone()));
        } else if arg.starts_with("--") {
            return Err(format!("unknown option {arg}\n\n{USAGE}"));
        } else {
            positional.push(arg.clone());
        }
    }
    Ok((found, positional))
}

fn number(options: &[(String, String)], flag: &str, default: u64) -> Result<u64, String> {
    match options.iter().rev().find(|(f, _)| f == flag) {
        None => Ok(default),
        Some((_, v)) => v
            .parse()
            .map_err(|_| format!("{flag} takes a whole number, not `{v}`")),
    }
}

fn load_scenario(name: &str) -> Result<Scenario, String> {
    if name == "default" {
        return Ok(mesh::default_mesh(50.0, 60_000));
    }
    let text = std::fs::read_to_string(name).map_err(|e| format!("{name}: {e}"))?;
    faultline_lessons::parse_scenario(name, &text)
        .map_err(|errors| {
            errors
                .iter()
                .map(|e| format!("\n  {e}"))
                .collect::<String>()
        })
        .map_err(|list| format!("{name} has errors:{list}"))
}

fn run(args: &[String]) -> Result<(), String> {
    let (options, positional) = options(args, &["--seed", "--out"])?;
    let [scenario_name] = positional.as_slice() else {
        return Err(format!("run takes one scenario\n\n{USAGE}"));
    };
    let seed = number(&options, "--seed", 1)?;
    let out = options
        .iter()
        .find(|(f, _)| f == "--out")
        .map(|(_, v)| PathBuf::from(v))
        .ok_or("run needs --out DIR")?;
    let scenario = load_scenario(scenario_name)?;
    let simulation =
        faultline_engine::Simulation::new(scenario.clone(), seed).map_err(|errors| {
            errors
                .iter()
                .map(|e| format!("\n  {e}"))
                .collect::<String>()
        })?;
    let (telemetry, truth) = simulation.finish();
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let files: [(&str, String); 5] = [
        ("ground-truth.json", ground_truth_json(&truth)),
        ("traces.otlp.json", export::otlp_json(&telemetry)),
        ("traces.jaeger.json", export::jaeger_json(&telemetry)),
        ("logs.ndjson", export::ndjson_logs(&telemetry)),
        ("metrics.prom", export::prometheus(&telemetry)),
    ];
    for (name, text) in &files {
        write(&out.join(name), text)?;
    }
    summarize(&scenario, seed, &telemetry);
    for (name, text) in &files {
        println!(
            "wrote {} ({} KB)",
            out.join(name).display(),
            text.len() / 1024
        );
    }
    Ok(())
}

/// The ground truth as JSON: per fault its kind, root cause, window, first effect and the
/// traces it touched (ids as hex), times as microseconds from the run's start.
fn ground_truth_json(truth: &faultline_engine::GroundTruth) -> String {
    let faults: Vec<serde_json::Value> = truth
        .faults
        .iter()
        .map(|f| {
            serde_json::json!({
                "kind": f.kind,
                "service": f.service,
                "instance": f.instance,
                "from_us": f.from.0,
                "until_us": f.until.0,
                "first_effect_us": f.first_effect.map(|t| t.0),
                "affected_trace_count": f.affected_traces.len(),
                "affected_traces": f.affected_traces.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&serde_json::json!({
        "faults": faults,
        "charges": truth.charges,
        "duplicate_charges": truth.duplicate_charges,
        "oversold_units": truth.oversold_units,
        "refunds": truth.refunds,
        "sagas_failed": truth.sagas_failed,
        "sagas_compensated": truth.sagas_compensated,
        "saga_steps_left": truth.saga_steps_left,
    }))
    .unwrap_or_default();
    text.push('\n');
    text
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn summarize(scenario: &Scenario, seed: u64, t: &Telemetry) {
    let traces = t.spans.iter().filter(|s| s.parent.is_none()).count();
    let failed = t
        .spans
        .iter()
        .filter(|s| {
            s.parent.is_none() && s.status == faultline_engine::telemetry::SpanStatus::Error
        })
        .count();
    println!("scenario `{}`, seed {seed}", scenario.name);
    println!(
        "  {traces} requests ({failed} failed), {} spans, {} log lines",
        t.spans.len(),
        t.logs.len()
    );
    println!("  digest {}", t.digest_hex());
}

/// Prints a query's canonical form, or its error with a caret under the position.
fn logql(args: &[String]) -> Result<(), String> {
    let [query] = args else {
        return Err(format!("logql takes one query (quote it)\n\n{USAGE}"));
    };
    println!("{}", parse_query(query)?);
    Ok(())
}

fn parse_query(query: &str) -> Result<faultline_engine::logql::LogQuery, String> {
    faultline_engine::logql::parse(query).map_err(|e| {
        let caret = format!("{}^", " ".repeat(e.offset));
        format!("{e}\n  {query}\n  {caret}")
    })
}

/// Runs a query over a run directory's logs and prints the matching lines.
fn logs(args: &[String]) -> Result<(), String> {
    let [dir, query] = args else {
        return Err(format!("logs takes a directory and a query\n\n{USAGE}"));
    };
    let query = parse_query(query)?;
    let path = Path::new(dir).join("logs.ndjson");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let t = faultline_engine::import::import_ndjson_logs(&text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let started = Instant::now();
    let hits = query.run(&t);
    let elapsed = started.elapsed();
    for &i in &hits {
        let line = &t.logs[i as usize];
        println!(
            "{} {:<5} {}-{} {}",
            line.time,
            line.level.name(),
            t.service_name(line.service),
            line.instance,
            faultline_engine::logql::line_text(&t, line)
        );
    }
    eprintln!(
        "{} of {} lines matched in {:.1} ms",
        hits.len(),
        t.logs.len(),
        elapsed.as_secs_f64() * 1e3
    );
    Ok(())
}

/// Imports a trace file and prints, per trace, what a trace viewer would show first.
fn inspect(args: &[String]) -> Result<(), String> {
    let [path] = args else {
        return Err(format!("inspect takes one file\n\n{USAGE}"));
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let imported =
        faultline_engine::import::import_json(&text).map_err(|e| format!("{path}: {e}"))?;
    let t = &imported.telemetry;
    let ids = faultline_engine::trace::trace_ids(t);
    println!(
        "{path}: {:?}, {} traces, {} spans",
        imported.format,
        ids.len(),
        t.spans.len()
    );
    for note in &imported.notes {
        println!("  note: {note}");
    }
    for id in ids {
        let tree = faultline_engine::trace::TraceTree::new(t, id);
        let services: std::collections::BTreeSet<&str> = tree
            .spans
            .iter()
            .map(|s| t.service_name(s.service))
            .collect();
        let original = t.strings.lookup("import.span_id");
        // Spans are named by the id the file gave them, hashed ids only when it had none.
        let describe = |i: usize| {
            let s = tree.spans[i];
            let id = t
                .attributes(s)
                .iter()
                .find_map(|(k, v)| match v {
                    faultline_engine::telemetry::Value::Str(text) if Some(*k) == original => {
                        Some(t.text(*text).to_string())
                    }
                    _ => None,
                })
                .unwrap_or_else(|| s.span_id.to_string());
            format!(
                "{}: {} ({id})",
                t.service_name(s.service),
                t.text(s.operation)
            )
        };
        println!("trace {id}");
        println!("  spans     {}", tree.spans.len());
        println!(
            "  services  {}",
            services.into_iter().collect::<Vec<_>>().join(", ")
        );
        for &root in &tree.roots {
            println!("  root      {}", describe(root));
        }
        println!(
            "  duration  {}",
            faultline_engine::Duration(tree.duration_us())
        );
        println!("  critical path (latest first):");
        let position: std::collections::BTreeMap<_, _> = tree
            .spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.span_id, i))
            .collect();
        for section in tree.critical_path() {
            println!(
                "    {:>10} .. {:<10} {}",
                section.start.to_string(),
                section.end.to_string(),
                describe(position[&section.span])
            );
        }
        for warning in &tree.warnings {
            println!("  warning: {warning}");
        }
    }
    Ok(())
}

/// Runs `f` and returns the bytes it left allocated and the milliseconds it took.
fn measure(f: impl FnOnce()) -> (usize, f64) {
    let before = alloc::current();
    let started = Instant::now();
    f();
    let ms = started.elapsed().as_secs_f64() * 1e3;
    (alloc::current().saturating_sub(before), ms)
}

/// Runs the default mesh for about `--requests` requests with all telemetry on and prints
/// throughput and memory. Figures, not a pass/fail test: compare them across changes.
fn bench(args: &[String]) -> Result<(), String> {
    let (options, positional) = options(args, &["--requests", "--rate"])?;
    if !positional.is_empty() {
        return Err(format!("bench takes no positional arguments\n\n{USAGE}"));
    }
    let requests = number(&options, "--requests", 100_000)?.max(1);
    let rate = number(&options, "--rate", 1_000)?.clamp(1, 1_000_000);
    let rate_per_s = rate as f64;
    let duration_ms = requests * 1_000 / rate;
    let scenario = mesh::default_mesh(rate_per_s, duration_ms);
    let before = alloc::reset_peak();
    let started = Instant::now();
    let mut simulation =
        faultline_engine::Simulation::new(scenario, 7).map_err(|e| format!("{e:?}"))?;
    simulation.step_until(faultline_engine::SimTime(u64::MAX));
    let events = simulation.events_processed() as f64;
    let telemetry = simulation.run();
    let seconds = started.elapsed().as_secs_f64();
    let peak = alloc::peak().saturating_sub(before);
    let retained = alloc::current().saturating_sub(before);
    let spans = telemetry.spans.len() as f64;
    let logs = telemetry.logs.len() as f64;
    let roots = telemetry
        .spans
        .iter()
        .filter(|s| s.parent.is_none())
        .count();
    println!("bench: default mesh, {roots} requests, seed 7");
    println!("  wall time      {:>10.3} s", seconds);
    println!(
        "  events         {:>10} ({:.0} events/s)",
        events,
        events / seconds
    );
    println!(
        "  spans          {:>10} ({:.0} spans/s)",
        spans,
        spans / seconds
    );
    println!(
        "  log lines      {:>10} ({:.0} lines/s)",
        logs,
        logs / seconds
    );
    println!("  peak memory    {:>10.1} MB", peak as f64 / 1e6);
    println!(
        "  retained       {:>10.1} MB ({:.0} bytes per span, logs and metrics included)",
        retained as f64 / 1e6,
        retained as f64 / spans
    );
    // The spans, the one list of their attributes, and their events.
    let span_bytes: usize = telemetry.attribute_bytes()
        + telemetry
            .spans
            .iter()
            .map(|s| std::mem::size_of_val(s) + s.events.heap_bytes())
            .sum::<usize>();
    println!(
        "  spans alone    {:>10.1} MB ({:.0} bytes per span: {} inline, the rest attributes and events)",
        span_bytes as f64 / 1e6,
        span_bytes as f64 / spans,
        std::mem::size_of::<faultline_engine::telemetry::Span>()
    );
    // The index, built in one go over the finished run (mid-run it catches up per query):
    // spans first, with the logs set aside, then the logs, so each part is measured alone.
    let mut telemetry = telemetry;
    let lines = std::mem::take(&mut telemetry.logs);
    let (span_index_bytes, span_index_ms) = measure(|| drop(telemetry.index()));
    telemetry.logs = lines;
    let (log_index_bytes, log_index_ms) = measure(|| drop(telemetry.index()));
    println!(
        "  span index     {:>10.1} MB ({:.0} bytes per span, built in {span_index_ms:.0} ms)",
        span_index_bytes as f64 / 1e6,
        span_index_bytes as f64 / spans,
    );
    println!(
        "  log index      {:>10.1} MB ({:.0} bytes per line, built in {log_index_ms:.0} ms)",
        log_index_bytes as f64 / 1e6,
        log_index_bytes as f64 / logs,
    );
    // Log queries over every line of the run, as the lab's log view would send them; the
    // last over ten seconds in the middle of the workload only.
    let middle = faultline_engine::SimTime::from_ms(duration_ms / 2);
    let window = (
        Some(middle),
        Some(middle.after(faultline_engine::Duration::from_secs(10))),
    );
    for (query, (from, until)) in [
        (
            r#"{service="payments", level=~"warn|error"} |= "timeout""#,
            (None, None),
        ),
        (
            r#"{service=~".+"} | json | duration_ms > 100"#,
            (None, None),
        ),
        (
            r#"{level="info"} |~ "card_number=[0-9]{13,19}""#,
            (None, None),
        ),
        (r#"{service=~".+"} |= "timeout""#, (None, None)),
        (r#"{service="payments"} | json | duration_ms > 100"#, window),
    ] {
        let parsed = faultline_engine::logql::parse(query).map_err(|e| e.to_string())?;
        let started = Instant::now();
        let hits = parsed.run_between(&telemetry, from, until).len();
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let range = if from.is_some() { ", 10 s of them" } else { "" };
        println!(
            "  log query      {ms:>10.1} ms over {} lines{range}, {hits} hits: {query}",
            telemetry.logs.len()
        );
    }
    // Trace searches as the lab's search form would send them, and opening one trace.
    let searches = [
        ("newest 20", "", false, None),
        ("payments, errors only", "", true, Some("payments")),
        ("error.type=timeout", "error.type=timeout", false, None),
        ("status 200", "http.response.status_code=200", false, None),
        ("status 503", "http.response.status_code=503", false, None),
        (
            "gateway, status 200",
            "http.response.status_code=200",
            false,
            Some("gateway"),
        ),
    ];
    for (name, tags, errors_only, service) in searches {
        let q = faultline_engine::query::TraceQuery {
            service: service.map(String::from),
            tags: faultline_engine::query::parse_tags(tags)?,
            errors_only,
            ..Default::default()
        };
        let started = Instant::now();
        let rows = faultline_engine::query::search_traces(&telemetry, &q).len();
        let ms = started.elapsed().as_secs_f64() * 1e3;
        println!("  trace search   {ms:>10.2} ms, {rows} rows: {name}");
    }
    let middle = telemetry.spans[telemetry.spans.len() / 2].trace_id;
    let started = Instant::now();
    let tree = faultline_engine::trace::TraceTree::new(&telemetry, middle);
    let ms = started.elapsed().as_secs_f64() * 1e3;
    println!(
        "  open a trace   {ms:>10.2} ms, {} spans, critical path of {} sections",
        tree.spans.len(),
        tree.critical_path().len()
    );
    drop(tree);
    drop(telemetry);
    Ok(())
}
