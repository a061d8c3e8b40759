//! One column's setup form: load (rate, duration, seed), the fault list (added from the catalog),
//! the call-edge policy table with one edge's editor open at a time, and stock. Every field says
//! what is wrong with it beside it, whether the text does not read or the engine refuses it.

use std::rc::Rc;

use faultline_engine::ScenarioError;
use faultline_engine::edge::{BreakerPolicy, BulkheadPolicy};
use faultline_engine::mesh::default_mesh;
use faultline_engine::sandbox::{
    DURATIONS_MS, Edge, FaultTemplate, Setup, fault_params, fault_templates, peers, set_fault_param,
};
use faultline_engine::scenario::{CallPolicy, FaultSpec};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use super::{Column, Side};

/// Text typed into a field that did not read, kept so the field shows it with the reason.
#[derive(Clone, Debug, PartialEq)]
pub struct Typed {
    pub field: String,
    pub text: String,
    pub problem: String,
}

/// What typing into a field does to the thing it edits; Err says why the text does not read.
type Apply<T> = Rc<dyn Fn(&mut T, &str) -> Result<(), String>>;

/// `12`, `2.5`: a number as a field shows it.
pub fn number(v: f64) -> String {
    let text = format!("{v}");
    text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
}

fn whole<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("`{}` is not a whole number", text.trim()))
}

fn decimal(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("`{}` is not a number", text.trim())),
    }
}

/// Seconds as typed (`12`, `7.5`) into milliseconds.
fn seconds(text: &str) -> Result<u64, String> {
    match decimal(text)? {
        s if s < 0.0 => Err("must not be negative".into()),
        s => Ok((s * 1_000.0).round() as u64),
    }
}

/// What a fault needs beside it to show in the comparison, for the kinds that need something.
pub fn kind_hint(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "non_idempotent_retry" => {
            "Charges go twice only when a charge times out after it went through: slow payments \
             too (latency, extra_ms 900)."
        }
        "stock_race" => "Oversold units only show when stock runs out: lower the stock (Stock).",
        "retry_storm" => {
            "Shows in p99, calls sent and retries more than in the error rate; slow its callee \
             (latency on database) to set it off."
        }
        _ => return None,
    })
}

/// `1 min`, `10 min`, `90 s`.
pub fn run_length(ms: u64) -> String {
    if ms % 60_000 == 0 {
        format!("{} min", ms / 60_000)
    } else {
        format!("{} s", number(ms as f64 / 1_000.0))
    }
}

impl Column {
    /// The column with `field` set from `text` by `apply`, or the text kept with its problem.
    pub fn edited(
        &self,
        field: &str,
        text: &str,
        apply: impl FnOnce(&mut Column, &str) -> Result<(), String>,
    ) -> Column {
        let mut next = self.clone();
        next.typed.retain(|t| t.field != field);
        if let Err(problem) = apply(&mut next, text) {
            next.typed.push(Typed {
                field: field.into(),
                text: text.into(),
                problem,
            });
        }
        next
    }

    /// What the field shows: the text that did not read, else the value.
    fn shown(&self, field: &str, value: String) -> String {
        self.typed
            .iter()
            .find(|t| t.field == field)
            .map_or(value, |t| t.text.clone())
    }
}

/// The problems of one field: its text does not read, or the engine names it.
fn problems(column: &Column, errors: &[ScenarioError], field: &str) -> Vec<String> {
    let mut out: Vec<String> = column
        .typed
        .iter()
        .filter(|t| t.field == field)
        .map(|t| t.problem.clone())
        .collect();
    out.extend(
        errors
            .iter()
            .filter(|e| e.field == field)
            .map(|e| e.problem.clone()),
    );
    out
}

/// An id from a field path: `b-faults-1-until_ms`.
fn field_id(side: Side, field: &str) -> String {
    let mut id = format!("{}-", side.letter());
    for c in field.chars() {
        match c {
            '[' | '.' => id.push('-'),
            ']' => {}
            c => id.push(c),
        }
    }
    id
}

#[derive(Properties, PartialEq)]
struct TextFieldProps {
    id: AttrValue,
    label: AttrValue,
    value: AttrValue,
    #[prop_or_default]
    unit: Option<AttrValue>,
    #[prop_or_default]
    problems: Vec<String>,
    #[prop_or_default]
    disabled: bool,
    /// The label is read by screen readers only (inside a table row that says it).
    #[prop_or_default]
    quiet: bool,
    on_text: Callback<String>,
}

/// A labelled text field for a number, with its problems beside it.
#[component]
fn TextField(props: &TextFieldProps) -> Html {
    let onchange = props.on_text.reform(|e: Event| {
        let input: HtmlInputElement = e.target_unchecked_into();
        input.value()
    });
    let bad = !props.problems.is_empty();
    let error_id = format!("{}-error", props.id);
    html! {
        <div class={classes!("field", bad.then_some("invalid"))}>
            <label for={props.id.clone()} class={classes!(props.quiet.then_some("sr-only"))}>
                { props.label.clone() }
            </label>
            <span class="field-input">
                <input type="text" inputmode="decimal" id={props.id.clone()}
                       value={props.value.clone()} {onchange} disabled={props.disabled}
                       aria-invalid={bad.then_some("true")}
                       aria-describedby={bad.then(|| error_id.clone())} />
                if let Some(unit) = &props.unit { <span class="field-unit">{ unit.clone() }</span> }
            </span>
            if bad {
                <span class="field-error" id={error_id}>{ props.problems.join("; ") }</span>
            }
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct CheckProps {
    id: AttrValue,
    label: AttrValue,
    checked: bool,
    on_check: Callback<bool>,
}

#[component]
fn Check(props: &CheckProps) -> Html {
    let onchange = props.on_check.reform(|e: Event| {
        let input: HtmlInputElement = e.target_unchecked_into();
        input.checked()
    });
    html! {
        <label class="check" for={props.id.clone()}>
            <input type="checkbox" id={props.id.clone()} checked={props.checked} {onchange} />
            <span>{ props.label.clone() }</span>
        </label>
    }
}

#[derive(Properties, PartialEq)]
pub struct SetupFormProps {
    pub side: Side,
    pub column: Column,
    pub errors: Rc<Vec<ScenarioError>>,
    pub on_change: Callback<Column>,
}

/// Instances of each service in the default mesh, for the instance pickers.
fn instances(service: &str) -> u16 {
    default_mesh(50.0, 60_000)
        .services
        .iter()
        .find(|s| s.name == service)
        .map_or(0, |s| s.instances)
}

#[component]
pub fn SetupForm(props: &SetupFormProps) -> Html {
    let side = props.side;
    let column = &props.column;
    let setup = &column.setup;
    let errors = &props.errors;
    let templates = use_memo((), |_| fault_templates());
    let edges = use_memo(setup.edges.clone(), {
        let setup = setup.clone();
        move |_| setup.edges()
    });
    // A text field of the column: its id, shown value, problems and what typing does.
    let text_field = |field: &str,
                      label: &str,
                      value: String,
                      unit: Option<&str>,
                      apply: Apply<Column>| {
        let (current, on_change, f) = (column.clone(), props.on_change.clone(), field.to_string());
        let on_text = Callback::from(move |text: String| {
            on_change.emit(current.edited(&f, &text, |c, t| apply(c, t)));
        });
        html! {
            <TextField id={field_id(side, field)} label={label.to_string()}
                       value={column.shown(field, value)} unit={unit.map(|u| AttrValue::from(u.to_string()))}
                       problems={problems(column, errors, field)} {on_text} />
        }
    };

    let on_duration = {
        let (column, on_change) = (column.clone(), props.on_change.clone());
        Callback::from(move |e: Event| {
            let select: HtmlSelectElement = e.target_unchecked_into();
            if let Ok(ms) = select.value().parse::<u64>() {
                let mut next = column.clone();
                next.setup.duration_ms = ms;
                on_change.emit(next);
            }
        })
    };
    let on_locking = {
        let (column, on_change) = (column.clone(), props.on_change.clone());
        Callback::from(move |on: bool| {
            let mut next = column.clone();
            next.setup.optimistic_locking = on;
            on_change.emit(next);
        })
    };
    let mut durations: Vec<u64> = DURATIONS_MS.to_vec();
    if !durations.contains(&setup.duration_ms) {
        durations.push(setup.duration_ms);
    }
    let changed_edges = setup.edges.len();
    html! {
        <div class="setup-form">
            <fieldset class="form-row">
                <legend class="sr-only">{ "Load" }</legend>
                { text_field("rate_per_s", "Rate", number(setup.rate_per_s), Some("req/s"),
                    Rc::new(|c, t| { c.setup.rate_per_s = decimal(t)?; Ok(()) })) }
                <div class={classes!("field", (!problems(column, errors, "duration_ms").is_empty()).then_some("invalid"))}>
                    <label for={field_id(side, "duration_ms")}>{ "Duration" }</label>
                    <select id={field_id(side, "duration_ms")} onchange={on_duration}>
                        for ms in durations {
                            <option value={ms.to_string()} selected={ms == setup.duration_ms}>{ run_length(ms) }</option>
                        }
                    </select>
                    if let Some(p) = problems(column, errors, "duration_ms").first() {
                        <span class="field-error">{ p.clone() }</span>
                    }
                </div>
                { text_field("seed", "Seed", column.seed.to_string(), None,
                    Rc::new(|c, t| { c.seed = whole(t)?; Ok(()) })) }
            </fieldset>
            <details class="form-section" open=true>
                <summary>{ format!("Faults ({})", setup.faults.len()) }</summary>
                <Faults {side} column={column.clone()} errors={errors.clone()}
                        templates={templates.clone()} edges={edges.clone()}
                        on_change={props.on_change.clone()} />
            </details>
            <details class="form-section">
                <summary>{
                    match changed_edges {
                        0 => "Call policies (as the mesh has them)".to_string(),
                        1 => "Call policies (1 edge changed)".to_string(),
                        n => format!("Call policies ({n} edges changed)"),
                    }
                }</summary>
                <EdgeTable {side} column={column.clone()} errors={errors.clone()}
                           edges={edges.clone()} on_change={props.on_change.clone()} />
            </details>
            <details class="form-section" open={setup.stock != Setup::default().stock || !setup.optimistic_locking}>
                <summary>{
                    format!("Stock ({} units, {})", super::count(u64::from(setup.stock)),
                        if setup.optimistic_locking { "optimistic locking" } else { "no locking" })
                }</summary>
                <div class="form-row">
                    { text_field("stock", "Units in stock", setup.stock.to_string(), Some("units"),
                        Rc::new(|c, t| { c.setup.stock = whole(t)?; Ok(()) })) }
                    <Check id={field_id(side, "optimistic_locking")} label="Optimistic locking on stock writes"
                           checked={setup.optimistic_locking} on_check={on_locking} />
                </div>
                <p class="form-hint">{
                    "Oversold units only show when stock runs out: with stock_race or without locking, \
                     lower the stock (e.g. 200)."
                }</p>
            </details>
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct FaultsProps {
    side: Side,
    column: Column,
    errors: Rc<Vec<ScenarioError>>,
    templates: Rc<Vec<FaultTemplate>>,
    edges: Rc<Vec<Edge>>,
    on_change: Callback<Column>,
}

/// The fault list and the row that adds one from the catalog.
#[component]
fn Faults(props: &FaultsProps) -> Html {
    let side = props.side;
    let column = &props.column;
    let templates = &props.templates;
    let kind = use_state(|| "latency".to_string());
    let target = use_state(String::new);
    let template = templates.iter().find(|t| t.kind == kind.as_str()).cloned();
    // For missing_timeout the target is an edge (by its label); else a service.
    let targets: Vec<(String, String)> = match &template {
        Some(t) if t.effect.is_none() => props
            .edges
            .iter()
            .filter(|e| e.policy.timeout_ms.is_some())
            .map(|e| (e.label(), e.label()))
            .collect(),
        Some(t) => t.targets.iter().map(|s| (s.clone(), s.clone())).collect(),
        None => vec![],
    };
    let current_target = targets
        .iter()
        .find(|(v, _)| *v == *target)
        .or(targets.first())
        .map(|(v, _)| v.clone())
        .unwrap_or_default();
    let on_kind = {
        let (kind, target) = (kind.clone(), target.clone());
        Callback::from(move |e: Event| {
            let select: HtmlSelectElement = e.target_unchecked_into();
            kind.set(select.value());
            target.set(String::new());
        })
    };
    let on_target = {
        let target = target.clone();
        Callback::from(move |e: Event| {
            let select: HtmlSelectElement = e.target_unchecked_into();
            target.set(select.value());
        })
    };
    let add_problem = use_state(|| None::<String>);
    let on_add = {
        let (column, on_change) = (column.clone(), props.on_change.clone());
        let (template, chosen, edges) = (
            template.clone(),
            current_target.clone(),
            props.edges.clone(),
        );
        let add_problem = add_problem.clone();
        Callback::from(move |_: MouseEvent| {
            let Some(t) = &template else { return };
            let mut next = column.clone();
            let added = if t.effect.is_none() {
                edges.iter().find(|e| e.label() == chosen).is_some_and(|e| {
                    next.setup
                        .apply_edge_fault(t.kind, &e.caller, &e.callee, &e.operation)
                })
            } else if let Some(fault) = t.fault(&chosen, next.setup.duration_ms) {
                next.setup.faults.push(fault);
                true
            } else {
                false
            };
            if added {
                add_problem.set(None);
                on_change.emit(next);
            } else {
                add_problem.set(Some(format!("{} cannot be added on `{chosen}`", t.kind)));
            }
        })
    };
    let kind_id = format!("{}-fault-kind", side.letter());
    let target_id = format!("{}-fault-target", side.letter());
    html! {
        <div class="faults">
            if column.setup.faults.is_empty() {
                <p class="form-hint">{ "No faults: the mesh as it runs on a good day." }</p>
            }
            <ol class="fault-list">
                for (i, fault) in column.setup.faults.iter().enumerate() {
                    <FaultRow {side} index={i} column={column.clone()} errors={props.errors.clone()}
                              templates={templates.clone()} fault={fault.clone()}
                              on_change={props.on_change.clone()} />
                }
            </ol>
            <div class="fault-add">
                <div class="field">
                    <label for={kind_id.clone()}>{ "Add a fault" }</label>
                    <select id={kind_id} onchange={on_kind}>
                        for t in templates.iter() {
                            <option value={t.kind} selected={t.kind == kind.as_str()}>{ t.kind }</option>
                        }
                    </select>
                </div>
                <div class="field">
                    <label for={target_id.clone()}>{
                        if template.as_ref().is_some_and(|t| t.effect.is_none()) { "on the edge" } else { "on" }
                    }</label>
                    <select id={target_id} onchange={on_target}>
                        for (value, label) in targets.iter() {
                            <option value={value.clone()} selected={*value == current_target}>{ label.clone() }</option>
                        }
                    </select>
                </div>
                <button type="button" class="button small" id={format!("{}-fault-add", side.letter())}
                        onclick={on_add} disabled={targets.is_empty()}>{ "Add" }</button>
            </div>
            if template.as_ref().is_some_and(|t| t.effect.is_none()) {
                <p class="form-hint">{ "missing_timeout is a policy: it removes the timeout on the edge (see Call policies)." }</p>
            }
            if let Some(p) = &*add_problem { <p class="field-error">{ p.clone() }</p> }
        </div>
    }
}

/// The column with fault `index` changed by `edit`.
fn with_fault(column: &Column, index: usize, edit: impl FnOnce(&mut FaultSpec)) -> Column {
    let mut next = column.clone();
    if let Some(f) = next.setup.faults.get_mut(index) {
        edit(f);
    }
    next
}

#[derive(Properties, PartialEq)]
struct FaultRowProps {
    side: Side,
    index: usize,
    column: Column,
    errors: Rc<Vec<ScenarioError>>,
    templates: Rc<Vec<FaultTemplate>>,
    fault: FaultSpec,
    on_change: Callback<Column>,
}

/// One fault: kind, target and instance, its window in seconds, its parameters, remove.
#[component]
fn FaultRow(props: &FaultRowProps) -> Html {
    let side = props.side;
    let i = props.index;
    let fault = &props.fault;
    let column = &props.column;
    let errors = &props.errors;
    let row = Rc::new(column.clone());
    let kind = fault.effect.name();
    let template = props.templates.iter().find(|t| t.kind == kind).cloned();
    let at = format!("faults[{i}]");
    let mut targets = template
        .as_ref()
        .map(|t| t.targets.clone())
        .unwrap_or_default();
    if !targets.contains(&fault.service) {
        targets.insert(0, fault.service.clone());
    }
    let on_service = {
        let (row, on_change) = (row.clone(), props.on_change.clone());
        Callback::from(move |e: Event| {
            let select: HtmlSelectElement = e.target_unchecked_into();
            let service = select.value();
            on_change.emit(with_fault(&row, i, |f| {
                // A partition's peer must be one the new service calls.
                if let faultline_engine::scenario::FaultEffect::Partition { peer } = &mut f.effect {
                    let reachable = peers(&service);
                    if !reachable.contains(peer) {
                        *peer = reachable.into_iter().next().unwrap_or_default();
                    }
                }
                f.service = service;
                f.instance = None;
            }));
        })
    };
    let on_instance = {
        let (row, on_change) = (row.clone(), props.on_change.clone());
        Callback::from(move |e: Event| {
            let select: HtmlSelectElement = e.target_unchecked_into();
            let instance = select.value().parse::<u16>().ok();
            on_change.emit(with_fault(&row, i, |f| f.instance = instance));
        })
    };
    let on_remove = {
        let (column, on_change) = (column.clone(), props.on_change.clone());
        Callback::from(move |_: MouseEvent| {
            let mut next = column.clone();
            if i < next.setup.faults.len() {
                next.setup.faults.remove(i);
            }
            // Typed text of this fault and those after it no longer lines up.
            next.typed.retain(|t| !t.field.starts_with("faults["));
            on_change.emit(next);
        })
    };
    let text = |field: &str,
                label: &str,
                value: String,
                unit: Option<&str>,
                apply: Apply<FaultSpec>| {
        let full = format!("{at}.{field}");
        let (row, on_change, f) = (row.clone(), props.on_change.clone(), full.clone());
        let on_text = Callback::from(move |text: String| {
            let apply = apply.clone();
            on_change.emit(row.edited(&f, &text, move |c, t| {
                let fault = c
                    .setup
                    .faults
                    .get_mut(i)
                    .ok_or_else(|| "this fault is gone".to_string())?;
                apply(fault, t)
            }));
        });
        html! {
            <TextField id={field_id(side, &full)} label={label.to_string()}
                       value={column.shown(&full, value)} unit={unit.map(|u| AttrValue::from(u.to_string()))}
                       problems={problems(column, errors, &full)} {on_text} />
        }
    };
    let per_instance = template.as_ref().is_some_and(|t| t.per_instance);
    let count = instances(&fault.service);
    let params = fault_params(&fault.effect);
    // Problems of this fault no field shows (`faults[0]`, `faults[0].effect`).
    let shown_fields: Vec<String> = ["service", "instance", "from_ms", "until_ms"]
        .iter()
        .map(|f| format!("{at}.{f}"))
        .chain(params.iter().map(|(p, _)| format!("{at}.effect.{p}")))
        .collect();
    let other: Vec<&ScenarioError> = errors
        .iter()
        .filter(|e| {
            (e.field == at || e.field.starts_with(&format!("{at}.")))
                && !shown_fields.contains(&e.field)
        })
        .collect();
    let service_id = field_id(side, &format!("{at}.service"));
    let instance_id = field_id(side, &format!("{at}.instance"));
    let service_problems = problems(column, errors, &format!("{at}.service"));
    let instance_problems = problems(column, errors, &format!("{at}.instance"));
    html! {
        <li class="fault" id={field_id(side, &at)} data-kind={kind}>
            <div class="fault-head">
                <span class="fault-kind">{ kind }</span>
                <button type="button" class="button small quiet remove" onclick={on_remove}
                        aria-label={format!("Remove fault {} ({kind} on {})", i + 1, fault.service)}>
                    { "Remove" }
                </button>
            </div>
            <div class="fault-body">
                <div class={classes!("field", (!service_problems.is_empty()).then_some("invalid"))}>
                    <label for={service_id.clone()}>{ "on" }</label>
                    <select id={service_id} onchange={on_service}>
                        for s in targets.iter() {
                            <option value={s.clone()} selected={*s == fault.service}>{ s.clone() }</option>
                        }
                    </select>
                    if !service_problems.is_empty() { <span class="field-error">{ service_problems.join("; ") }</span> }
                </div>
                if per_instance {
                    <div class={classes!("field", (!instance_problems.is_empty()).then_some("invalid"))}>
                        <label for={instance_id.clone()}>{ "instance" }</label>
                        <select id={instance_id} onchange={on_instance}>
                            <option value="" selected={fault.instance.is_none()}>{ "all" }</option>
                            for n in 0..count.max(fault.instance.map_or(0, |n| n + 1)) {
                                <option value={n.to_string()} selected={fault.instance == Some(n)}>
                                    { format!("{}-{n}", fault.service) }
                                </option>
                            }
                        </select>
                        if !instance_problems.is_empty() { <span class="field-error">{ instance_problems.join("; ") }</span> }
                    </div>
                }
                { text("from_ms", "from", number(fault.from_ms as f64 / 1_000.0), Some("s"),
                    Rc::new(|f, t| { f.from_ms = seconds(t)?; Ok(()) })) }
                { text("until_ms", "until", number(fault.until_ms as f64 / 1_000.0), Some("s"),
                    Rc::new(|f, t| { f.until_ms = seconds(t)?; Ok(()) })) }
                for (name, value) in params.iter().cloned() {
                    if name == "peer" {
                        <PeerField {side} at={at.clone()} service={fault.service.clone()} {value}
                                   problems={problems(column, errors, &format!("{at}.effect.peer"))}
                                   on_peer={{
                                       let (row, on_change) = (row.clone(), props.on_change.clone());
                                       Callback::from(move |peer: String| on_change.emit(with_fault(&row, i, |f| {
                                           let _ = set_fault_param(&mut f.effect, "peer", &peer);
                                       })))
                                   }} />
                    } else {
                        { text(&format!("effect.{name}"), name, value, None,
                            Rc::new(move |f, t| set_fault_param(&mut f.effect, name, t))) }
                    }
                }
            </div>
            if let Some(hint) = kind_hint(kind) {
                <p class="form-hint">{ hint }</p>
            }
            if !other.is_empty() {
                <ul class="field-error fault-problems">
                    for e in other { <li>{ format!("{}: {}", e.field, e.problem) }</li> }
                </ul>
            }
        </li>
    }
}

#[derive(Properties, PartialEq)]
struct PeerFieldProps {
    side: Side,
    at: String,
    service: String,
    value: String,
    problems: Vec<String>,
    on_peer: Callback<String>,
}

/// A partition's peer: one of the services the target calls.
#[component]
fn PeerField(props: &PeerFieldProps) -> Html {
    let id = field_id(props.side, &format!("{}.effect.peer", props.at));
    let mut choices = peers(&props.service);
    if !choices.contains(&props.value) {
        choices.insert(0, props.value.clone());
    }
    let onchange = props.on_peer.reform(|e: Event| {
        let select: HtmlSelectElement = e.target_unchecked_into();
        select.value()
    });
    html! {
        <div class={classes!("field", (!props.problems.is_empty()).then_some("invalid"))}>
            <label for={id.clone()}>{ "cut from" }</label>
            <select {id} {onchange}>
                for p in choices {
                    <option value={p.clone()} selected={p == props.value}>{ p.clone() }</option>
                }
            </select>
            if !props.problems.is_empty() { <span class="field-error">{ props.problems.join("; ") }</span> }
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct EdgeTableProps {
    side: Side,
    column: Column,
    errors: Rc<Vec<ScenarioError>>,
    edges: Rc<Vec<Edge>>,
    on_change: Callback<Column>,
}

/// `1 s`, `250 ms`, `none`.
fn timeout_text(ms: Option<u64>) -> String {
    match ms {
        None => "none".into(),
        Some(ms) if ms % 1_000 == 0 => format!("{} s", ms / 1_000),
        Some(ms) => format!("{ms} ms"),
    }
}

/// The mesh's call edges: one summary row each; the open one (or one with a problem) shows its
/// editor below it.
#[component]
fn EdgeTable(props: &EdgeTableProps) -> Html {
    let side = props.side;
    let open = use_state(|| None::<String>);
    let column = &props.column;
    let setup = &column.setup;
    html! {
        <table class="edge-table">
            <caption class="sr-only">{ "Client policy on each call edge of the mesh" }</caption>
            <thead><tr>
                <th scope="col">{ "edge" }</th>
                <th scope="col">{ "timeout" }</th>
                <th scope="col" class="num">{ "retries" }</th>
                <th scope="col">{ "guards" }</th>
                <th scope="col"><span class="sr-only">{ "edit" }</span></th>
            </tr></thead>
            <tbody>
                for (row, edge) in props.edges.iter().enumerate() {
                    {{
                        let label = edge.label();
                        // The setting's index names its errors: `edges[k].policy.retries`.
                        let setting = setup.edges.iter().position(|s| {
                            s.caller == edge.caller && s.callee == edge.callee && s.operation == edge.operation
                        });
                        let at = setting.map(|k| format!("edges[{k}]"));
                        let has_problem = at.as_ref().is_some_and(|at| {
                            props.errors.iter().any(|e| e.field.starts_with(at.as_str()))
                        }) || column.typed.iter().any(|t| t.field.starts_with(&format!("edge:{label}")));
                        let is_open = open.as_deref() == Some(label.as_str()) || has_problem;
                        let p = &edge.policy;
                        let mut guards: Vec<&str> = Vec::new();
                        if p.breaker.is_some() { guards.push("breaker"); }
                        if p.bulkhead.is_some() { guards.push("bulkhead"); }
                        if p.idempotency_key { guards.push("key"); }
                        if p.retry_budget.is_some() { guards.push("budget"); }
                        let toggle = {
                            let (open, label) = (open.clone(), label.clone());
                            Callback::from(move |_: MouseEvent| {
                                open.set(if open.as_deref() == Some(label.as_str()) { None } else { Some(label.clone()) });
                            })
                        };
                        let editor_id = format!("{}-edge-{row}", side.letter());
                        html! {
                            <>
                                <tr class={classes!("edge-row", setting.is_some().then_some("changed"), has_problem.then_some("invalid"))}>
                                    <th scope="row" class="edge-label">
                                        <span>{ format!("{} → {}", edge.caller, edge.callee) }</span>
                                        <span class="edge-op">{ format!(":{}", edge.operation) }</span>
                                        if setting.is_some() { <span class="badge">{ "changed" }</span> }
                                    </th>
                                    <td class={classes!(p.timeout_ms.is_none().then_some("warn-text"))}>{ timeout_text(p.timeout_ms) }</td>
                                    <td class="num">{ p.retries }</td>
                                    <td class="guards">{ if guards.is_empty() { "—".to_string() } else { guards.join(" · ") } }</td>
                                    <td>
                                        <button type="button" class="button small quiet" onclick={toggle}
                                                aria-expanded={is_open.to_string()} aria-controls={editor_id.clone()}
                                                aria-label={format!("{} {label}", if is_open { "Close" } else { "Edit" })}>
                                            { if is_open { "Close" } else { "Edit" } }
                                        </button>
                                    </td>
                                </tr>
                                if is_open {
                                    <tr class="edge-editor-row" id={editor_id}>
                                        <td colspan="5">
                                            <EdgeEditor {side} {row} edge={edge.clone()} at={at.clone()}
                                                        column={column.clone()} errors={props.errors.clone()}
                                                        on_change={props.on_change.clone()} />
                                        </td>
                                    </tr>
                                }
                            </>
                        }
                    }}
                }
            </tbody>
        </table>
    }
}

#[derive(Properties, PartialEq)]
struct EdgeEditorProps {
    side: Side,
    row: usize,
    edge: Edge,
    /// `edges[k]` when the setup changes this edge.
    at: Option<String>,
    column: Column,
    errors: Rc<Vec<ScenarioError>>,
    on_change: Callback<Column>,
}

/// Every field of one edge's policy.
#[component]
fn EdgeEditor(props: &EdgeEditorProps) -> Html {
    let side = props.side;
    let edge = &props.edge;
    let p = &edge.policy;
    let column = &props.column;
    let label = edge.label();
    // Typed text is kept under the edge's label (its setting index moves as settings come and go).
    let key = |name: &str| format!("edge:{label}:{name}");
    let id = |name: &str| format!("{}-edge-{}-{name}", side.letter(), props.row);
    let engine_problems = |name: &str| -> Vec<String> {
        props.at.as_ref().map_or_else(Vec::new, |at| {
            let field = format!("{at}.policy.{name}");
            props
                .errors
                .iter()
                .filter(|e| e.field == field)
                .map(|e| e.problem.clone())
                .collect()
        })
    };
    let set = {
        let (on_change, edge) = (props.on_change.clone(), edge.clone());
        Rc::new(move |mut next: Column, policy: CallPolicy| {
            next.setup
                .set_edge(&edge.caller, &edge.callee, &edge.operation, policy);
            on_change.emit(next);
        })
    };
    let text = |name: &str,
                label_text: &str,
                value: String,
                unit: Option<&str>,
                disabled: bool,
                apply: Apply<CallPolicy>| {
        let field = key(name);
        let mut shown_problems: Vec<String> = column
            .typed
            .iter()
            .filter(|t| t.field == field)
            .map(|t| t.problem.clone())
            .collect();
        shown_problems.extend(engine_problems(name));
        let (column, set, policy, f) = (column.clone(), set.clone(), p.clone(), field.clone());
        let on_text = Callback::from(move |text: String| {
            let mut policy = policy.clone();
            // A text that does not read leaves the policy as it was.
            let next = column.edited(&f, &text, |_, t| apply(&mut policy, t));
            set(next, policy);
        });
        html! {
            <TextField id={id(name)} label={label_text.to_string()}
                       value={props.column.shown(&field, value)}
                       unit={unit.map(|u| AttrValue::from(u.to_string()))}
                       problems={shown_problems} {disabled} {on_text} />
        }
    };
    let check = |name: &str, label_text: &str, checked: bool, apply: fn(&mut CallPolicy, bool)| {
        let (column, set, policy) = (column.clone(), set.clone(), p.clone());
        let on_check = Callback::from(move |on: bool| {
            let mut policy = policy.clone();
            apply(&mut policy, on);
            set(column.clone(), policy);
        });
        html! { <Check id={id(name)} label={label_text.to_string()} {checked} {on_check} /> }
    };
    let breaker = p.breaker.clone().unwrap_or_default();
    let bulkhead = p.bulkhead.clone().unwrap_or(BulkheadPolicy {
        max_concurrent: 16,
        max_queue: 0,
    });
    let reset = {
        let (column, on_change, edge) = (column.clone(), props.on_change.clone(), edge.clone());
        Callback::from(move |_: MouseEvent| {
            let mut next = column.clone();
            next.setup.edges.retain(|s| {
                !(s.caller == edge.caller
                    && s.callee == edge.callee
                    && s.operation == edge.operation)
            });
            let prefix = format!("edge:{}:", edge.label());
            next.typed.retain(|t| !t.field.starts_with(&prefix));
            on_change.emit(next);
        })
    };
    let other: Vec<String> = props.at.as_ref().map_or_else(Vec::new, |at| {
        props
            .errors
            .iter()
            .filter(|e| e.field == *at || e.field == format!("{at}.policy.breaker"))
            .map(|e| format!("{}: {}", e.field, e.problem))
            .collect()
    });
    html! {
        <div class="edge-editor">
            <p class="edge-used">{ format!("{label} · used by {}", edge.used_by.join(", ")) }</p>
            <fieldset>
                <legend>{ "Timeout and retries" }</legend>
                { check("has-timeout", "Timeout", p.timeout_ms.is_some(),
                    |p, on| p.timeout_ms = if on { Some(1_000) } else { None }) }
                { text("timeout_ms", "Timeout after", p.timeout_ms.map_or(String::new(), |t| t.to_string()), Some("ms"),
                    p.timeout_ms.is_none(), Rc::new(|p, t| { p.timeout_ms = Some(whole(t)?); Ok(()) })) }
                { text("retries", "Retries", p.retries.to_string(), None, false,
                    Rc::new(|p, t| { p.retries = whole(t)?; Ok(()) })) }
                { text("backoff_base_ms", "Backoff base", p.backoff_base_ms.to_string(), Some("ms"), false,
                    Rc::new(|p, t| { p.backoff_base_ms = whole(t)?; Ok(()) })) }
                { text("backoff_max_ms", "Backoff max", p.backoff_max_ms.to_string(), Some("ms"), false,
                    Rc::new(|p, t| { p.backoff_max_ms = whole(t)?; Ok(()) })) }
                { check("jitter", "Jitter", p.jitter, |p, on| p.jitter = on) }
                { check("has-budget", "Retry budget", p.retry_budget.is_some(),
                    |p, on| p.retry_budget = if on { Some(0.2) } else { None }) }
                { text("retry_budget", "Budget (share of calls)", p.retry_budget.map_or(String::new(), number), None,
                    p.retry_budget.is_none(), Rc::new(|p, t| { p.retry_budget = Some(decimal(t)?); Ok(()) })) }
            </fieldset>
            <fieldset>
                <legend>{ "Circuit breaker" }</legend>
                { check("has-breaker", "Breaker", p.breaker.is_some(),
                    |p, on| p.breaker = if on { Some(BreakerPolicy::default()) } else { None }) }
                if p.breaker.is_some() {
                    { text("breaker.consecutive_failures", "Failures in a row", breaker.consecutive_failures.to_string(), None, false,
                        Rc::new(|p, t| { breaker_mut(p).consecutive_failures = whole(t)?; Ok(()) })) }
                    { text("breaker.failure_rate", "Failure rate", number(breaker.failure_rate), None, false,
                        Rc::new(|p, t| { breaker_mut(p).failure_rate = decimal(t)?; Ok(()) })) }
                    { text("breaker.window_ms", "Window", breaker.window_ms.to_string(), Some("ms"), false,
                        Rc::new(|p, t| { breaker_mut(p).window_ms = whole(t)?; Ok(()) })) }
                    { text("breaker.min_requests", "Min calls", breaker.min_requests.to_string(), None, false,
                        Rc::new(|p, t| { breaker_mut(p).min_requests = whole(t)?; Ok(()) })) }
                    { text("breaker.open_ms", "Open for", breaker.open_ms.to_string(), Some("ms"), false,
                        Rc::new(|p, t| { breaker_mut(p).open_ms = whole(t)?; Ok(()) })) }
                    { text("breaker.half_open_probes", "Half-open probes", breaker.half_open_probes.to_string(), None, false,
                        Rc::new(|p, t| { breaker_mut(p).half_open_probes = whole(t)?; Ok(()) })) }
                }
            </fieldset>
            <fieldset>
                <legend>{ "Bulkhead and headers" }</legend>
                { check("has-bulkhead", "Bulkhead", p.bulkhead.is_some(),
                    |p, on| p.bulkhead = if on { Some(BulkheadPolicy { max_concurrent: 16, max_queue: 0 }) } else { None }) }
                if p.bulkhead.is_some() {
                    { text("bulkhead.max_concurrent", "Concurrent", bulkhead.max_concurrent.to_string(), None, false,
                        Rc::new(|p, t| { bulkhead_mut(p).max_concurrent = whole(t)?; Ok(()) })) }
                    { text("bulkhead.max_queue", "Queue", bulkhead.max_queue.to_string(), None, false,
                        Rc::new(|p, t| { bulkhead_mut(p).max_queue = whole(t)?; Ok(()) })) }
                }
                { check("idempotency_key", "Idempotency key", p.idempotency_key, |p, on| p.idempotency_key = on) }
                { check("propagate_context", "Propagate trace context", p.propagate_context,
                    |p, on| p.propagate_context = on) }
            </fieldset>
            if !other.is_empty() {
                <ul class="field-error">
                    for e in other { <li>{ e }</li> }
                </ul>
            }
            if props.at.is_some() {
                <button type="button" class="button small quiet" onclick={reset}>{ "Reset to the mesh's policy" }</button>
            }
        </div>
    }
}

fn breaker_mut(p: &mut CallPolicy) -> &mut BreakerPolicy {
    p.breaker.get_or_insert_with(BreakerPolicy::default)
}

fn bulkhead_mut(p: &mut CallPolicy) -> &mut BulkheadPolicy {
    p.bulkhead.get_or_insert(BulkheadPolicy {
        max_concurrent: 16,
        max_queue: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_text_that_does_not_read_stays_with_its_problem_until_fixed() {
        let column = Column::default();
        let bad = column.edited("rate_per_s", "fast", |c, t| {
            c.setup.rate_per_s = decimal(t)?;
            Ok(())
        });
        assert_eq!(
            bad.setup, column.setup,
            "the setup keeps its last good value"
        );
        assert_eq!(bad.shown("rate_per_s", "50".into()), "fast");
        assert_eq!(
            problems(&bad, &[], "rate_per_s"),
            ["`fast` is not a number"]
        );
        let good = bad.edited("rate_per_s", " 80 ", |c, t| {
            c.setup.rate_per_s = decimal(t)?;
            Ok(())
        });
        assert_eq!(good.setup.rate_per_s, 80.0);
        assert!(good.typed.is_empty());
        // The engine's problems land on the field they name.
        let errors = Setup {
            rate_per_s: 900.0,
            ..Setup::default()
        }
        .scenario()
        .unwrap_err();
        assert!(problems(&good, &errors, "rate_per_s")[0].starts_with("must be"));
        assert!(problems(&good, &errors, "duration_ms").is_empty());
    }

    #[test]
    fn fields_read_numbers_and_seconds_and_name_themselves_in_ids() {
        assert_eq!(seconds("12"), Ok(12_000));
        assert_eq!(seconds("7.5"), Ok(7_500));
        assert!(seconds("-1").is_err());
        assert!(seconds("soon").is_err());
        assert!(whole::<u32>("1.5").is_err());
        assert!(decimal("NaN").is_err());
        assert_eq!(number(50.0), "50");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(run_length(300_000), "5 min");
        assert_eq!(run_length(90_500), "90.5 s");
        assert_eq!(timeout_text(None), "none");
        assert_eq!(timeout_text(Some(1_500)), "1500 ms");
        assert_eq!(
            field_id(Side::B, "faults[1].until_ms"),
            "b-faults-1-until_ms"
        );
        assert_eq!(instances("payments"), 2);
    }
}
