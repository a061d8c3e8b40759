//! Keyboard shortcuts of the lab's views, heard on the whole document: `/` focuses the query,
//! `j`/`k` move, Enter opens, Esc closes. Keys typed into a field are left to the field.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use yew::prelude::*;

/// Whether a key press belongs to a text field or a list box (so a shortcut must not act),
/// Escape aside.
pub fn typed_into_field(e: &KeyboardEvent) -> bool {
    if e.key() == "Escape" {
        return false;
    }
    if e.ctrl_key() || e.meta_key() || e.alt_key() {
        return true;
    }
    e.target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .is_some_and(|el| matches!(el.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA"))
}

/// Calls `handler` on every keydown in the document while the component is mounted (the
/// newest handler each render).
#[hook]
pub fn use_keydown(handler: Callback<KeyboardEvent>) {
    let current: Rc<RefCell<Callback<KeyboardEvent>>> = use_mut_ref(|| handler.clone());
    *current.borrow_mut() = handler;
    use_effect_with((), move |_| {
        let closure = Closure::<dyn FnMut(KeyboardEvent)>::new(move |e: KeyboardEvent| {
            let handler = current.borrow().clone();
            handler.emit(e);
        });
        let document = web_sys::window().and_then(|w| w.document());
        if let Some(d) = &document {
            let _ = d.add_event_listener_with_callback("keydown", closure.as_ref().unchecked_ref());
        }
        move || {
            if let Some(d) = document {
                let _ = d.remove_event_listener_with_callback(
                    "keydown",
                    closure.as_ref().unchecked_ref(),
                );
            }
            drop(closure);
        }
    });
}
