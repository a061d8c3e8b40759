//! The course map: modules in order, each holding lessons in order, read from `course.toml`.
//! Parsing checks the shape (unknown fields are errors); validation checks ids, lengths and
//! uniqueness, and reports every problem with its position.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{LessonError, line_column};

/// The whole course, as a learner sees it on the home page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Course {
    pub title: String,
    pub modules: Vec<Module>,
}

/// A group of lessons on one theme, such as timeouts and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    pub id: String,
    pub title: String,
    pub summary: String,
    pub lessons: Vec<Lesson>,
}

/// One lesson: what it teaches and which faults its investigations use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lesson {
    pub id: String,
    pub title: String,
    pub summary: String,
    pub minutes: u32,
    /// What the learner can do afterwards, each a short imperative sentence.
    pub goals: Vec<String>,
    /// Names of the faults from the engine's catalog that the lesson's scenarios inject.
    pub faults: Vec<String>,
}

/// Longest lesson the map accepts; a longer one should be split.
pub const LESSON_MINUTES_MAX: u32 = 90;

impl Course {
    /// Reads a course file. `file` is the name used in error messages.
    pub fn parse(file: &str, text: &str) -> Result<Course, Vec<LessonError>> {
        let raw: RawCourse = crate::error::from_toml(file, text)?;
        let mut problems = Problems {
            file,
            text,
            errors: Vec::new(),
        };
        let course = raw.validate(&mut problems);
        if problems.errors.is_empty() {
            Ok(course)
        } else {
            // In file order, so a person can fix them top to bottom.
            problems.errors.sort_by_key(LessonError::position);
            Err(problems.errors)
        }
    }

    /// Finds a lesson by id, with the module that holds it.
    pub fn lesson(&self, id: &str) -> Option<(&Module, &Lesson)> {
        self.modules
            .iter()
            .flat_map(|m| m.lessons.iter().map(move |l| (m, l)))
            .find(|(_, l)| l.id == id)
    }

    /// Every lesson in course order.
    pub fn lessons(&self) -> impl Iterator<Item = &Lesson> {
        self.modules.iter().flat_map(|m| m.lessons.iter())
    }

    /// Total study time of the course in minutes.
    pub fn minutes(&self) -> u32 {
        self.lessons().map(|l| l.minutes).sum()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCourse {
    title: Spanned<String>,
    #[serde(default)]
    module: Vec<RawModule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModule {
    id: Spanned<String>,
    title: Spanned<String>,
    summary: Spanned<String>,
    #[serde(default)]
    lesson: Vec<RawLesson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLesson {
    id: Spanned<String>,
    title: Spanned<String>,
    summary: Spanned<String>,
    minutes: Spanned<u32>,
    goals: Spanned<Vec<String>>,
    #[serde(default)]
    faults: Vec<String>,
}

/// Collects validation errors for one file.
struct Problems<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<LessonError>,
}

impl Problems<'_> {
    fn add<T>(&mut self, at: &Spanned<T>, field: String, problem: impl Into<String>) {
        let (line, column) = line_column(self.text, at.span().start);
        self.errors.push(LessonError::Invalid {
            file: self.file.to_string(),
            line,
            column,
            field,
            problem: problem.into(),
        });
    }

    fn text(&mut self, value: &Spanned<String>, field: String) -> String {
        if value.get_ref().trim().is_empty() {
            self.add(value, field, "must not be empty");
        }
        value.get_ref().trim().to_string()
    }

    fn id(&mut self, value: &Spanned<String>, field: String) -> String {
        let id = value.get_ref();
        let well_formed = !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !id.starts_with('-')
            && !id.ends_with('-');
        if !well_formed {
            self.add(
                value,
                field,
                format!("`{id}` is not an id: use lower-case letters, digits and inner hyphens"),
            );
        }
        id.clone()
    }
}

impl RawCourse {
    fn validate(&self, p: &mut Problems) -> Course {
        let title = p.text(&self.title, "title".into());
        if self.module.is_empty() {
            p.add(
                &self.title,
                "module".into(),
                "a course needs at least one [[module]]",
            );
        }
        // First place each id was seen, to name both places when one repeats.
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let mut check_unique = |p: &mut Problems, id: &Spanned<String>, field: String| {
            if let Some(first) = seen.get(id.get_ref()) {
                let problem = format!("`{}` is already the id of {first}", id.get_ref());
                p.add(id, field, problem);
            } else {
                seen.insert(id.get_ref().clone(), field);
            }
        };
        let mut modules = Vec::new();
        for (m, raw) in self.module.iter().enumerate() {
            let at = format!("module[{m}]");
            check_unique(p, &raw.id, format!("{at}.id"));
            let mut lessons = Vec::new();
            for (l, lesson) in raw.lesson.iter().enumerate() {
                let at = format!("{at}.lesson[{l}]");
                check_unique(p, &lesson.id, format!("{at}.id"));
                lessons.push(lesson.validate(p, &at));
            }
            if raw.lesson.is_empty() {
                p.add(
                    &raw.id,
                    format!("{at}.lesson"),
                    "a module needs at least one [[module.lesson]]",
                );
            }
            modules.push(Module {
                id: p.id(&raw.id, format!("{at}.id")),
                title: p.text(&raw.title, format!("{at}.title")),
                summary: p.text(&raw.summary, format!("{at}.summary")),
                lessons,
            });
        }
        Course { title, modules }
    }
}

impl RawLesson {
    fn validate(&self, p: &mut Problems, at: &str) -> Lesson {
        let minutes = *self.minutes.get_ref();
        if !(1..=LESSON_MINUTES_MAX).contains(&minutes) {
            p.add(
                &self.minutes,
                format!("{at}.minutes"),
                format!("{minutes} is outside 1..={LESSON_MINUTES_MAX}"),
            );
        }
        let goals: Vec<String> = self
            .goals
            .get_ref()
            .iter()
            .map(|g| g.trim().to_string())
            .collect();
        if goals.is_empty() || goals.iter().any(String::is_empty) {
            p.add(
                &self.goals,
                format!("{at}.goals"),
                "list at least one goal, none empty",
            );
        }
        Lesson {
            id: p.id(&self.id, format!("{at}.id")),
            title: p.text(&self.title, format!("{at}.title")),
            summary: p.text(&self.summary, format!("{at}.summary")),
            minutes,
            goals,
            faults: self.faults.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `text` and compares the rendered errors (or "ok") with `expected`.
    fn check(text: &str, expected: &[&str]) {
        let got: Vec<String> = match Course::parse("c.toml", text) {
            Ok(_) => vec![],
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        };
        assert_eq!(got, expected, "\n{text}");
    }

    const LESSON: &str =
        "id = \"l1\"\ntitle = \"T\"\nsummary = \"S\"\nminutes = 10\ngoals = [\"g\"]\n";

    #[test]
    fn a_minimal_course_parses() {
        let text = format!(
            "title = \"C\"\n[[module]]\nid = \"m\"\ntitle = \"M\"\nsummary = \"S\"\n[[module.lesson]]\n{LESSON}"
        );
        check(&text, &[]);
        let course = Course::parse("c.toml", &text).unwrap();
        assert_eq!(course.lesson("l1").unwrap().0.id, "m");
        assert_eq!(course.minutes(), 10);
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        check(
            "title = \"C\"\n[[module]]\nid = \"m\"\ntitle = \n",
            &["c.toml:4:9: string values must be quoted, expected literal string"],
        );
    }

    #[test]
    fn unknown_fields_are_errors() {
        let errors = Course::parse("c.toml", "title = \"C\"\ncolour = 1\n").unwrap_err();
        let text = errors[0].to_string();
        assert!(
            text.starts_with("c.toml:2:1: unknown field `colour`"),
            "{text}"
        );
    }

    #[test]
    fn every_validation_problem_is_reported_at_once() {
        let text = format!(
            "title = \"C\"\n[[module]]\nid = \"Bad Id\"\ntitle = \"M\"\nsummary = \"\"\n\
             [[module.lesson]]\n{LESSON}[[module.lesson]]\n{}",
            LESSON.replace("10", "500")
        );
        check(
            &text,
            &[
                "c.toml:3:6: `module[0].id`: `Bad Id` is not an id: use lower-case letters, digits and inner hyphens",
                "c.toml:5:11: `module[0].summary`: must not be empty",
                "c.toml:13:6: `module[0].lesson[1].id`: `l1` is already the id of module[0].lesson[0].id",
                "c.toml:16:11: `module[0].lesson[1].minutes`: 500 is outside 1..=90",
            ],
        );
    }

    #[test]
    fn the_builtin_course_is_valid() {
        let course = crate::builtin_course().unwrap_or_else(|errors| {
            panic!(
                "{}",
                errors.iter().map(|e| format!("{e}\n")).collect::<String>()
            )
        });
        assert!(course.modules.len() >= 3);
        assert!(course.lessons().all(|l| !l.goals.is_empty()));
        for lesson in course.lessons() {
            for fault in &lesson.faults {
                assert!(
                    faultline_engine::scenario::FAULT_CATALOG.contains(&fault.as_str()),
                    "lesson {} cites `{fault}`, which the fault catalog does not have",
                    lesson.id
                );
            }
        }
    }
}
