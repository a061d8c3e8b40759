//! Components shared by several pages: navigation, icons, empty states and a virtualized list.
//! Components render props and emit callbacks; they hold no app state.

pub mod empty_state;
pub mod icon;
pub mod nav;
pub mod virtual_list;
