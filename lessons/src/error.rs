//! Errors from reading lesson and course files.
//! Each names the file, and the line, column and field when the parser got that far.

/// One problem found in a lesson or course file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LessonError {
    /// The text is not valid TOML, or does not have the shape the format expects.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        file: String,
        line: u32,
        column: u32,
        message: String,
    },
    /// The text parsed but a value breaks a rule, e.g. two lessons share an id.
    #[error("{file}:{line}:{column}: `{field}`: {problem}")]
    Invalid {
        file: String,
        line: u32,
        column: u32,
        field: String,
        problem: String,
    },
    /// A rule broken by a value whose position is known only by its field path.
    #[error("{file}: `{field}`: {problem}")]
    Field {
        file: String,
        field: String,
        problem: String,
    },
}

impl LessonError {
    /// Line and column, for sorting errors into file order.
    pub fn position(&self) -> (u32, u32) {
        match self {
            LessonError::Syntax { line, column, .. }
            | LessonError::Invalid { line, column, .. } => (*line, *column),
            LessonError::Field { .. } => (0, 0),
        }
    }
}

/// Deserializes TOML, turning a parse or shape error into a `Syntax` error at its position.
pub fn from_toml<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
) -> Result<T, Vec<LessonError>> {
    toml::from_str(text).map_err(|e| {
        let (line, column) = line_column(text, e.span().map_or(0, |s| s.start));
        vec![LessonError::Syntax {
            file: file.to_string(),
            line,
            column,
            message: e.message().trim().to_string(),
        }]
    })
}

/// Turns a byte offset into a 1-based line and column (counted in characters), once, at the
/// boundary where a file's text meets the parser's spans.
pub fn line_column(text: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (saturate(line), saturate(column))
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::line_column;

    #[test]
    fn offsets_become_lines_and_columns() {
        let text = "ab\ncdé\nf";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 2), (1, 3));
        assert_eq!(line_column(text, 3), (2, 1));
        assert_eq!(line_column(text, 7), (2, 4)); // after the two-byte é
        assert_eq!(line_column(text, 6), (2, 3)); // inside é: floors to its start
        assert_eq!(line_column(text, 99), (3, 2));
    }
}
