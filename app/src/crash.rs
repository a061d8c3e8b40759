//! The crash screen. A panic in wasm stops the app for good, so the panic hook logs the message
//! to the console and replaces the page with a screen that says what happened and offers a
//! reload; the learner's progress is in localStorage and survives it.

use std::panic::PanicHookInfo;

/// Installs the hook through yew, which would otherwise replace any std hook with its own when
/// the app is mounted.
pub fn install_panic_hook() {
    yew::set_custom_panic_hook(Box::new(on_panic));
}

fn on_panic(info: &PanicHookInfo<'_>) {
    let message = info.to_string();
    web_sys::console::error_1(&format!("Faultline crashed: {message}").into());
    show_crash_screen(&message);
}

/// Writes the crash screen straight into the DOM: Yew cannot render any more after a panic.
fn show_crash_screen(message: &str) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let Some(body) = document.body() else {
        return;
    };
    body.set_inner_html(&format!(
        r##"<div class="crash" role="alert">
  <h1>Faultline stopped</h1>
  <p>Something inside the app went wrong and it could not carry on. Your progress and settings
  are saved in this browser; reloading brings them back.</p>
  <p><button class="button primary" onclick="location.reload()">Reload Faultline</button>
  <a class="button" href="#/">Reload on the home page</a></p>
  <details><summary>Details for a bug report</summary><pre>{}</pre></details>
</div>"##,
        escape_html(message)
    ));
    // A hash change alone would not restart the stopped app, so the link reloads too.
    if let Ok(links) = document.query_selector_all(".crash a") {
        for i in 0..links.length() {
            if let Some(link) = links.get(i) {
                let element: &web_sys::Element = wasm_bindgen::JsCast::unchecked_ref(&link);
                let _ = element.set_attribute(
                    "onclick",
                    "location.hash = '#/'; location.reload(); return false;",
                );
            }
        }
    }
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup_in_panic_messages() {
        assert_eq!(
            super::escape_html(r#"<b>"x" & y</b>"#),
            "&lt;b&gt;&quot;x&quot; &amp; y&lt;/b&gt;"
        );
    }
}
