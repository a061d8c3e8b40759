//! The only code that touches the browser's storage: the learner's settings in localStorage (for
//! now, the theme), and the trace file last opened in this tab's sessionStorage. Reads never fail
//! loudly: a missing or unreadable value falls back to the default.

/// Which colour scheme the app uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Theme {
    /// Follow the operating system's light or dark setting.
    #[default]
    System,
    Light,
    Dark,
}

impl Theme {
    pub const ALL: [Theme; 3] = [Theme::System, Theme::Light, Theme::Dark];

    pub fn key(self) -> &'static str {
        match self {
            Theme::System => "system",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Theme::System => "Match the system",
            Theme::Light => "Light",
            Theme::Dark => "Dark",
        }
    }

    pub fn from_key(key: &str) -> Theme {
        Theme::ALL
            .into_iter()
            .find(|t| t.key() == key)
            .unwrap_or_default()
    }
}

/// The localStorage key; index.html reads the same key before the app loads, to avoid a flash.
const THEME_KEY: &str = "faultline.theme";

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

pub fn load_theme() -> Theme {
    local_storage()
        .and_then(|s| s.get_item(THEME_KEY).ok()?)
        .map(|key| Theme::from_key(&key))
        .unwrap_or_default()
}

/// Saves the theme and applies it. Returns false when the browser refused to store it (private
/// mode, quota), in which case the theme still applies for this visit.
pub fn save_theme(theme: Theme) -> bool {
    apply_theme(theme);
    local_storage().is_some_and(|s| s.set_item(THEME_KEY, theme.key()).is_ok())
}

/// The sessionStorage key of the trace file last opened in this tab: its name, a newline, its text.
const IMPORTED_KEY: &str = "faultline.imported";
/// Longest file kept for a reload, in characters: a tab's storage holds about 5 MB, and the
/// rest of it stays free.
pub const IMPORTED_MAX_CHARS: usize = 4_000_000;

fn session_storage() -> Option<web_sys::Storage> {
    // Off the browser (the component tests) there is no storage.
    if cfg!(target_arch = "wasm32") {
        web_sys::window()?.session_storage().ok()?
    } else {
        None
    }
}

/// Keeps an opened trace file in this tab, so a reload opens it again. False when it is too big
/// or the browser refused (then an older file kept is dropped, so a reload does not bring it
/// back in place of this one).
pub fn save_imported(name: &str, text: &str) -> bool {
    let Some(storage) = session_storage() else {
        return false;
    };
    let kept = text.chars().count() <= IMPORTED_MAX_CHARS
        && storage
            .set_item(IMPORTED_KEY, &format!("{name}\n{text}"))
            .is_ok();
    if !kept {
        let _ = storage.remove_item(IMPORTED_KEY);
    }
    kept
}

/// Forgets the trace file kept in this tab (one that no longer reads is not read again).
pub fn forget_imported() {
    if let Some(storage) = session_storage() {
        let _ = storage.remove_item(IMPORTED_KEY);
    }
}

/// The trace file kept in this tab, as (name, text).
pub fn load_imported() -> Option<(String, String)> {
    let kept = session_storage()?.get_item(IMPORTED_KEY).ok()??;
    let (name, text) = kept.split_once('\n')?;
    Some((name.to_string(), text.to_string()))
}

/// Sets `data-theme` on `<html>`; the stylesheet follows `prefers-color-scheme` when it is absent.
pub fn apply_theme(theme: Theme) {
    let Some(root) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    else {
        return;
    };
    let _ = match theme {
        Theme::System => root.remove_attribute("data-theme"),
        other => root.set_attribute("data-theme", other.key()),
    };
}

#[cfg(test)]
mod tests {
    use super::Theme;

    #[test]
    fn theme_keys_round_trip_and_unknown_falls_back() {
        for theme in Theme::ALL {
            assert_eq!(Theme::from_key(theme.key()), theme);
        }
        assert_eq!(Theme::from_key("sepia"), Theme::System);
    }
}
