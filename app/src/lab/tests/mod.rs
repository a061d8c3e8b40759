//! Component tests of the lab's views: each view is rendered natively by yew's server renderer
//! inside a router set to the URL under test and a finished run, and the HTML is checked against
//! what the engine's queries say. `html` below is the small, loose reader of that HTML.

mod findable;
mod logs;
mod map;
mod metrics;
mod overview;
mod playback;
mod scenario;
mod trace_view;
mod traces;

use std::cell::RefCell;
use std::rc::Rc;

use faultline_engine::SimTime;
use faultline_engine::mesh::default_mesh;
use yew::prelude::*;
use yew::{BaseComponent, LocalServerRenderer};
use yew_router::history::{AnyHistory, History, MemoryHistory};
use yew_router::prelude::*;
use yew_router::query::Raw;

use super::run::Run;
use super::tabs::View;
use super::url::LabQuery;
use super::{LabRun, panel};

/// Renders a component to HTML as the server renderer writes it (without hydration marks), on
/// a current-thread runtime: yew's renderer needs one to run on natively.
pub fn render<C: BaseComponent>(props: C::Properties) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(
        &runtime,
        LocalServerRenderer::<C>::with_props(props)
            .hydratable(false)
            .render(),
    )
}

/// The default mesh for `duration_ms` at 50 requests a second, seed 7, run to its end.
pub fn finished_default_run(duration_ms: u64) -> Run {
    let mut run = Run::start(default_mesh(50.0, duration_ms), 7).expect("the default mesh runs");
    assert!(run.advance(SimTime(u64::MAX), || true));
    assert!(run.finished());
    run
}

#[derive(Properties)]
pub struct AtUrlProps {
    /// The lab's path and query, as after `#` in the browser: `/lab?view=traces&min=300ms`.
    pub url: String,
    pub run: Rc<RefCell<Run>>,
}

impl PartialEq for AtUrlProps {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url && Rc::ptr_eq(&self.run, &other.run)
    }
}

/// The lab's panel for a URL: a router on that URL, and the run provided as the lab provides it
/// once the run has stopped.
#[component]
pub fn AtUrl(props: &AtUrlProps) -> Html {
    // Memory history takes the query apart from the path (a `?` in the path is refused).
    let history = MemoryHistory::new();
    let (path, query) = props.url.split_once('?').unwrap_or((&props.url, ""));
    history
        .replace_with_query(path, Raw(query))
        .expect("a raw query always encodes");
    let history = AnyHistory::from(history);
    html! {
        <Router {history}>
            <Panel run={props.run.clone()} />
        </Router>
    }
}

#[derive(Properties)]
struct PanelProps {
    run: Rc<RefCell<Run>>,
}

impl PartialEq for PanelProps {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.run, &other.run)
    }
}

/// Reads the lab's state from the URL as `Lab` does and draws the view it names.
#[component]
fn Panel(props: &PanelProps) -> Html {
    let query: LabQuery = use_location()
        .and_then(|l| l.query::<LabQuery>().ok())
        .unwrap_or_default();
    html! {
        <WithRun run={props.run.clone()}>
            { panel(View::from_query(query.view.as_deref()), &query, &Callback::noop()) }
        </WithRun>
    }
}

#[derive(Properties)]
pub struct WithRunProps {
    pub run: Rc<RefCell<Run>>,
    pub children: Html,
}

impl PartialEq for WithRunProps {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.run, &other.run) && self.children == other.children
    }
}

/// Any part of a view, drawn with the run provided as the lab provides it once it has stopped.
#[component]
pub fn WithRun(props: &WithRunProps) -> Html {
    let context = LabRun {
        run: props.run.clone(),
        version: 1,
        moving: false,
    };
    html! {
        <ContextProvider<LabRun> {context}>
            { props.children.clone() }
        </ContextProvider<LabRun>>
    }
}

/// Renders the lab's panel at `url` over `run`.
pub fn render_at(url: &str, run: &Rc<RefCell<Run>>) -> String {
    render::<AtUrl>(AtUrlProps {
        url: url.into(),
        run: run.clone(),
    })
}

/// A loose reader of rendered HTML: elements by tag and class or id, their attributes and text.
/// It relies on the renderer's well-formed output (every element closed, void ones aside).
pub mod html {
    /// One element: its opening tag and what is between it and its closing tag.
    #[derive(Clone, Copy, Debug)]
    pub struct Element<'a> {
        pub open: &'a str,
        pub inner: &'a str,
    }

    impl<'a> Element<'a> {
        /// An attribute's value as written (still escaped).
        pub fn attr(&self, name: &str) -> Option<&'a str> {
            let open = self.open;
            let mut from = 0;
            while let Some(at) = open[from..].find(name) {
                let start = from + at;
                let rest = &open[start + name.len()..];
                let before = open[..start].chars().last();
                let value = rest.strip_prefix("=\"");
                if let (Some(value), true) = (value, before.is_some_and(char::is_whitespace)) {
                    return value.split('"').next();
                }
                from = start + name.len();
            }
            None
        }

        pub fn has_class(&self, class: &str) -> bool {
            self.attr("class")
                .is_some_and(|c| c.split_whitespace().any(|c| c == class))
        }

        /// The text inside, tags removed and entities decoded.
        pub fn text(&self) -> String {
            text(self.inner)
        }

        /// Elements inside this one.
        pub fn find(&self, tag: &str, class: &str) -> Vec<Element<'a>> {
            find(self.inner, tag, class)
        }
    }

    /// Every `tag` element carrying `class` (any class when empty), in document order, nested
    /// ones included.
    pub fn find<'a>(html: &'a str, tag: &str, class: &str) -> Vec<Element<'a>> {
        let opening = format!("<{tag}");
        let mut found = Vec::new();
        let mut from = 0;
        while let Some(at) = html[from..].find(&opening) {
            let start = from + at;
            from = start + opening.len();
            let after = html[from..].chars().next();
            if !after.is_some_and(|c| c.is_whitespace() || c == '>' || c == '/') {
                continue;
            }
            let Some(end) = html[start..].find('>').map(|e| start + e + 1) else {
                break;
            };
            let open = &html[start..end];
            let inner = &html[end..close_of(html, tag, end)];
            let element = Element { open, inner };
            if class.is_empty() || element.has_class(class) {
                found.push(element);
            }
        }
        found
    }

    /// Where the `tag` element whose contents start at `from` closes (its contents' end).
    fn close_of(html: &str, tag: &str, from: usize) -> usize {
        if VOID.contains(&tag) || html[..from].ends_with("/>") {
            return from;
        }
        let (opening, closing) = (format!("<{tag}"), format!("</{tag}>"));
        let mut depth = 1;
        let mut at = from;
        loop {
            let next_open = html[at..].find(&opening).map(|i| at + i);
            let Some(next_close) = html[at..].find(&closing).map(|i| at + i) else {
                return html.len();
            };
            match next_open {
                Some(o) if o < next_close => {
                    let after = html[o + opening.len()..].chars().next();
                    if after.is_some_and(|c| c.is_whitespace() || c == '>') {
                        depth += 1;
                    }
                    at = o + opening.len();
                }
                _ => {
                    depth -= 1;
                    if depth == 0 {
                        return next_close;
                    }
                    at = next_close + closing.len();
                }
            }
        }
    }

    const VOID: [&str; 6] = ["input", "br", "img", "hr", "meta", "link"];

    /// The element with this id.
    pub fn by_id<'a>(html: &'a str, id: &str) -> Option<Element<'a>> {
        let needle = format!(" id=\"{id}\"");
        let at = html.find(&needle)?;
        let start = html[..at].rfind('<')?;
        let tag: String = html[start + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        find(&html[start..], &tag, "").into_iter().next()
    }

    /// Text with the tags removed and the renderer's entities decoded.
    pub fn text(html: &str) -> String {
        let mut out = String::new();
        let mut in_tag = false;
        for c in html.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        unescape(&out)
    }

    pub fn unescape(s: &str) -> String {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    }

    /// How many times `needle` occurs.
    pub fn count(html: &str, needle: &str) -> usize {
        html.matches(needle).count()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn elements_are_found_by_tag_and_class_nested_ones_included() {
            let page = r#"<div class="a b" id="x"><div class="b">one &amp; <i>two</i></div><input class="b" value="v"><p>three</p></div><div class="c"></div>"#;
            let bs = find(page, "div", "b");
            assert_eq!(bs.len(), 2);
            assert_eq!(bs[0].text(), "one & twothree");
            assert_eq!(bs[1].text(), "one & two");
            assert_eq!(find(page, "input", "b")[0].attr("value"), Some("v"));
            assert_eq!(find(page, "i", "").len(), 1);
            assert_eq!(by_id(page, "x").map(|e| e.find("p", "").len()), Some(1));
            assert_eq!(by_id(page, "y").map(|e| e.text()), None);
            assert_eq!(count(page, "<div"), 3);
        }
    }
}
