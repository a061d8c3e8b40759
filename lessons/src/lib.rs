//! Faultline's course content and the code that reads it: the course map (`course.toml`), parsed
//! and validated into plain structs. Knows lessons and scenarios, never the UI.
//! Every problem in a file is reported with its file, line and column, all at once.

pub mod course;
pub mod error;
pub mod scenario;

pub use course::{Course, Lesson, Module};
pub use error::LessonError;
pub use scenario::parse_scenario;

/// The course that ships with Faultline, as written in `lessons/course.toml`.
pub const BUILTIN_COURSE_TOML: &str = include_str!("../course.toml");

/// Parses the built-in course. It is checked by this crate's tests, so failing here is a bug.
pub fn builtin_course() -> Result<Course, Vec<LessonError>> {
    Course::parse("lessons/course.toml", BUILTIN_COURSE_TOML)
}
