//! Opening a trace file from a real system — Jaeger JSON or OTLP/JSON, read by the engine's
//! importer — to explore it in the lab's trace views. The file stays in this tab (a URL cannot
//! hold it; sessionStorage keeps it for a reload): the lab opens it as the scenario `imported`,
//! and says what the importer repaired.

use std::cell::RefCell;

use faultline_engine::Telemetry;
use faultline_engine::import::{Format, import_json};
use yew::prelude::*;

/// The scenario name under which the lab shows the opened file.
pub const IMPORTED: &str = "imported";

/// The last file opened: its name, the format it was read as and the importer's notes.
#[derive(Clone, Debug, PartialEq)]
pub struct Opened {
    pub file: String,
    pub format: &'static str,
    pub traces: usize,
    pub spans: usize,
    pub notes: Vec<String>,
    /// Kept in this tab's storage, so a reload opens it again.
    pub kept: bool,
}

thread_local! {
    static OPENED: RefCell<Option<(Opened, Telemetry)>> = const { RefCell::new(None) };
}

/// Reads a file's text into the store, or says why it cannot be read (naming the file).
pub fn open(file: &str, text: &str) -> Result<Opened, String> {
    let imported = import_json(text).map_err(|e| format!("{file}: {e}"))?;
    let traces = faultline_engine::trace::trace_ids(&imported.telemetry).len();
    let opened = Opened {
        file: file.to_string(),
        format: match imported.format {
            Format::Jaeger => "Jaeger JSON",
            Format::Otlp => "OTLP/JSON",
        },
        traces,
        spans: imported.telemetry.spans.len(),
        notes: imported.notes,
        kept: false,
    };
    OPENED.with_borrow_mut(|o| *o = Some((opened.clone(), imported.telemetry)));
    Ok(opened)
}

/// Reads a file the learner chose, and keeps it in this tab for a reload.
fn open_and_keep(file: &str, text: &str) -> Result<Opened, String> {
    let mut opened = open(file, text)?;
    opened.kept = crate::storage::save_imported(file, text);
    OPENED.with_borrow_mut(|o| {
        if let Some((o, _)) = o {
            o.kept = opened.kept;
        }
    });
    Ok(opened)
}

/// The opened file's telemetry (a copy, so a restart can open it again) and what was said of it;
/// after a reload, the file this tab kept, read again.
pub fn opened() -> Option<(Opened, Telemetry)> {
    if OPENED.with_borrow(Option::is_none) {
        if let Some((file, text)) = crate::storage::load_imported() {
            if open(&file, &text).is_ok() {
                OPENED.with_borrow_mut(|o| {
                    if let Some((o, _)) = o {
                        o.kept = true;
                    }
                });
            } else {
                // Else every later call, each render, would parse the same text again.
                crate::storage::forget_imported();
            }
        }
    }
    OPENED.with_borrow(Clone::clone)
}

#[derive(Properties, PartialEq)]
pub struct OpenFileProps {
    /// A file was read: the lab opens it.
    pub on_opened: Callback<()>,
}

/// The "Open trace file" button: a file input read with gloo-file; an error names the file and
/// leaves the lab as it was.
#[component]
pub fn OpenFile(props: &OpenFileProps) -> Html {
    let error = use_state(|| None::<String>);
    let reader = use_mut_ref(|| None::<gloo_file::callbacks::FileReader>);
    let onchange = {
        let (error, reader, on_opened) = (error.clone(), reader.clone(), props.on_opened.clone());
        Callback::from(move |e: Event| {
            let input: web_sys::HtmlInputElement = e.target_unchecked_into();
            let Some(file) = input.files().and_then(|f| f.get(0)) else {
                return;
            };
            let name = file.name();
            let file = gloo_file::File::from(file);
            let (error, on_opened) = (error.clone(), on_opened.clone());
            let task = gloo_file::callbacks::read_as_text(&file, move |text| {
                let result = text
                    .map_err(|e| format!("{name}: {e}"))
                    .and_then(|text| open_and_keep(&name, &text));
                match result {
                    Ok(_) => {
                        error.set(None);
                        on_opened.emit(());
                    }
                    Err(message) => error.set(Some(message)),
                }
            });
            *reader.borrow_mut() = Some(task);
            // The same file may be opened again after a fix.
            input.set_value("");
        })
    };
    html! {
        <div class="open-file">
            <label class="button" for="import-file">{ "Open trace file…" }</label>
            <input id="import-file" class="visually-hidden" type="file" accept=".json,application/json" {onchange} />
            if let Some(message) = (*error).clone() {
                <p class="notice error" role="alert" id="import-error">{ message }</p>
            }
        </div>
    }
}

/// What the lab says when the scenario is `imported` and no file is there to show.
pub fn gone() -> String {
    format!(
        "The opened file is not in this tab any more (a file over {} million characters is not \
         kept for a reload, and none outlives its tab): open it again.",
        crate::storage::IMPORTED_MAX_CHARS / 1_000_000
    )
}

/// What the importer said of the opened file, shown above its traces.
#[component]
pub fn ImportSummary() -> Html {
    let Some((o, _)) = opened() else {
        return html! {
            <p class="notice error" role="alert">
                { gone() }
            </p>
        };
    };
    html! {
        <section class="import-summary" id="import-summary" aria-label="Imported file">
            <p>
                <strong>{ o.file.clone() }</strong>
                { format!(
                    " read as {}: {} trace{}, {} span{}, times shifted so the first span starts at 0:00.",
                    o.format, o.traces, if o.traces == 1 { "" } else { "s" }, o.spans, if o.spans == 1 { "" } else { "s" }
                ) }
                <span class="muted" id="import-kept">{
                    if o.kept { " Kept in this tab for a reload." } else { " Not kept for a reload (too big for this tab's storage): after one, open it again." }
                }</span>
            </p>
            if !o.notes.is_empty() {
                <details open=true>
                    <summary>{ format!("{} repaired or skipped while reading", o.notes.len()) }</summary>
                    <ul>
                        for n in o.notes.iter().take(50) { <li>{ n.clone() }</li> }
                    </ul>
                </details>
            }
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_opens_with_its_notes_or_says_why_not_naming_it() {
        let orphans = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/fixtures/traces/jaeger-multiple-orphans.json"
        ))
        .expect("../shared holds the fixtures");
        let o = open("orphans.json", &orphans).unwrap();
        assert_eq!(o.format, "Jaeger JSON");
        assert!(o.traces >= 1 && o.spans > 0);
        let (again, telemetry) = opened().unwrap();
        assert_eq!(again, o);
        assert_eq!(telemetry.spans.len(), o.spans);
        let error = open("notes.txt", "not json").unwrap_err();
        assert!(error.starts_with("notes.txt: not JSON"), "{error}");
        // A failed open leaves the last good file in place.
        assert_eq!(opened().unwrap().0.file, "orphans.json");
    }
}
