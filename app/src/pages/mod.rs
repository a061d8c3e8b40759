//! One module per route. A page owns its state and asks the engine and the course for data;
//! the components it renders only display and emit.

pub mod author;
pub mod bench;
pub mod flashcards;
pub mod home;
pub mod lesson;
pub mod not_found;
pub mod settings;
