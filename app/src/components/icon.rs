//! Line icons drawn as inline SVG (24×24, stroke in the current text colour), so they follow
//! the theme and cost no extra requests.

use yew::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IconName {
    Map,
    Book,
    Lab,
    Sliders,
    Cards,
    Pen,
    Gear,
    Clock,
    Alert,
    Play,
    Pause,
    SkipEnd,
    Restart,
}

#[derive(Properties, PartialEq)]
pub struct IconProps {
    pub name: IconName,
}

#[component]
pub fn Icon(props: &IconProps) -> Html {
    let paths: &[&str] = match props.name {
        IconName::Map => &["M9 4 3 6v14l6-2 6 2 6-2V4l-6 2-6-2z", "M9 4v14", "M15 6v14"],
        IconName::Book => &[
            "M4 5a2 2 0 0 1 2-2h13v16H6a2 2 0 0 0-2 2z",
            "M4 21V5",
            "M8 7h7",
        ],
        IconName::Lab => &[
            "M9 3h6",
            "M10 3v6L4.5 18.5A1.7 1.7 0 0 0 6 21h12a1.7 1.7 0 0 0 1.5-2.5L14 9V3",
            "M7 15h10",
        ],
        IconName::Sliders => &[
            "M4 7h9", "M17 7h3", "M15 5v4", "M4 17h3", "M11 17h9", "M9 15v4",
        ],
        IconName::Cards => &["M3 7h13v13H3z", "M8 4h13v13"],
        IconName::Pen => &["M4 20h4L19 9l-4-4L4 16z", "M13 7l4 4"],
        IconName::Gear => &[
            "M12 9a3 3 0 1 0 0 6 3 3 0 0 0 0-6z",
            "M19 12a7 7 0 0 0-.1-1.2l2-1.6-2-3.4-2.4 1a7 7 0 0 0-2-1.2L14 3h-4l-.5 2.6a7 7 0 0 0-2 1.2l-2.4-1-2 3.4 2 1.6a7 7 0 0 0 0 2.4l-2 1.6 2 3.4 2.4-1a7 7 0 0 0 2 1.2L10 21h4l.5-2.6a7 7 0 0 0 2-1.2l2.4 1 2-3.4-2-1.6c.1-.4.1-.8.1-1.2z",
        ],
        IconName::Clock => &["M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18z", "M12 7v5l3 2"],
        IconName::Alert => &["M12 3 2 20h20z", "M12 10v4", "M12 17h.01"],
        IconName::Play => &["M7 4v16l13-8z"],
        IconName::Pause => &["M8 5v14", "M16 5v14"],
        IconName::SkipEnd => &["M5 5l10 7-10 7z", "M19 5v14"],
        IconName::Restart => &["M4 12a8 8 0 1 0 2.3-5.7", "M4 4v4h4"],
    };
    html! {
        <svg class="icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true"
             fill="none" stroke="currentColor" stroke-width="1.8"
             stroke-linecap="round" stroke-linejoin="round">
            for d in paths.iter() { <path d={*d} /> }
        </svg>
    }
}
