//! Components shared by several pages: navigation, icons and empty states.
//! Components render props and emit callbacks; they hold no app state.

pub mod empty_state;
pub mod icon;
pub mod nav;
