//! A loop on the browser's animation frames: calls a function once per frame, with the frame's
//! timestamp, until the function says stop or the loop's handle is dropped.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

type Tick = Closure<dyn FnMut(f64)>;

/// Stops the loop when dropped.
pub struct FrameLoop {
    request: Rc<RefCell<Option<i32>>>,
    // Kept alive while the loop runs; the closure holds a reference to itself through it.
    closure: Rc<RefCell<Option<Tick>>>,
}

impl Drop for FrameLoop {
    fn drop(&mut self) {
        if let (Some(id), Some(window)) = (self.request.borrow_mut().take(), web_sys::window()) {
            let _ = window.cancel_animation_frame(id);
        }
        // Breaks the closure's reference to itself.
        self.closure.borrow_mut().take();
    }
}

/// Starts calling `tick(timestamp_ms)` on every frame while it returns true.
pub fn start(mut tick: impl FnMut(f64) -> bool + 'static) -> FrameLoop {
    let request = Rc::new(RefCell::new(None::<i32>));
    let closure = Rc::new(RefCell::new(None::<Tick>));
    let (request_in, closure_in) = (request.clone(), closure.clone());
    *closure.borrow_mut() = Some(Closure::new(move |timestamp: f64| {
        request_in.borrow_mut().take();
        if !tick(timestamp) {
            return;
        }
        if let Some(id) = closure_in.borrow().as_ref().and_then(request_frame) {
            *request_in.borrow_mut() = Some(id);
        }
    }));
    if let Some(id) = closure.borrow().as_ref().and_then(request_frame) {
        *request.borrow_mut() = Some(id);
    }
    FrameLoop { request, closure }
}

fn request_frame(closure: &Tick) -> Option<i32> {
    web_sys::window()?
        .request_animation_frame(closure.as_ref().unchecked_ref())
        .ok()
}

/// Milliseconds since the page loaded, to budget work within a frame. Off wasm (the native
/// component tests, which render views without a browser) there is no page: always 0.
pub fn now_ms() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        web_sys::window()
            .and_then(|w| w.performance())
            .map_or(0.0, |p| p.now())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0.0
    }
}
