//! A log query language modelled on Grafana Loki's LogQL, for the subset Faultline's logs need:
//! a stream selector (`{service="payments", level=~"warn|error"}`), line filters
//! (`|= != |~ !~`), `| json` and `| logfmt` (accepted as no-ops: lines are already structured)
//! and label filters on strings, numbers and durations joined by `and`, `or`, `,` and
//! parentheses. Within that subset it accepts what Loki accepts, with the same meaning.

use std::fmt;

use regex::Regex;

use std::borrow::Cow;

use crate::index::Stream;
use crate::telemetry::{LogLine, Sym, Telemetry, TraceId, Value};
use crate::time::{Duration, SimTime};

/// A parse error: what was wrong and where (a character offset into the query, from 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQlError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for LogQlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "parse error at column {}: {}",
            self.offset + 1,
            self.message
        )
    }
}

impl std::error::Error for LogQlError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Eq,
    Ne,
    Re,
    NotRe,
}

impl MatchOp {
    fn symbol(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::Ne => "!=",
            MatchOp::Re => "=~",
            MatchOp::NotRe => "!~",
        }
    }
}

/// `label op "value"`, with the regex compiled (anchored, as Loki anchors label matchers).
#[derive(Debug, Clone)]
pub struct Matcher {
    pub label: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl Matcher {
    fn new(label: String, op: MatchOp, value: String, at: usize) -> Result<Matcher, LogQlError> {
        let regex = match op {
            MatchOp::Re | MatchOp::NotRe => Some(Regex::new(&format!("^(?s:{value})$")).map_err(
                |e| LogQlError {
                    offset: at,
                    message: format!("invalid regex `{value}`: {}", first_line(&e.to_string())),
                },
            )?),
            _ => None,
        };
        Ok(Matcher {
            label,
            op,
            value,
            regex,
        })
    }

    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Eq => value == self.value,
            MatchOp::Ne => value != self.value,
            MatchOp::Re => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::NotRe => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }
}

fn first_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
        .trim_start_matches("error: ")
}

/// `|= "text"` and friends. Regex line filters are not anchored, as in Loki.
#[derive(Debug, Clone)]
pub struct LineFilter {
    pub op: MatchOp,
    pub text: String,
    regex: Option<Regex>,
}

impl LineFilter {
    fn keeps(&self, line: &str) -> bool {
        match self.op {
            MatchOp::Eq => line.contains(&self.text),
            MatchOp::Ne => !line.contains(&self.text),
            MatchOp::Re => self.regex.as_ref().is_some_and(|r| r.is_match(line)),
            MatchOp::NotRe => !self.regex.as_ref().is_some_and(|r| r.is_match(line)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
        }
    }

    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
        }
    }
}

/// A predicate over a line's labels (stream labels plus its fields).
#[derive(Debug, Clone)]
pub enum LabelFilter {
    String(Matcher),
    Number {
        label: String,
        op: CmpOp,
        value: f64,
    },
    Duration {
        label: String,
        op: CmpOp,
        value: Duration,
    },
    /// Sizes such as `20MB` or `1KiB`, in bytes.
    Bytes {
        label: String,
        op: CmpOp,
        value: u64,
    },
    And(Box<LabelFilter>, Box<LabelFilter>),
    Or(Box<LabelFilter>, Box<LabelFilter>),
}

#[derive(Debug, Clone)]
pub enum Stage {
    Line(LineFilter),
    /// `| json` or `| logfmt`: the fields are already parsed.
    Parser(&'static str),
    Labels(LabelFilter),
}

/// A parsed query.
#[derive(Debug, Clone)]
pub struct LogQuery {
    pub selector: Vec<Matcher>,
    pub stages: Vec<Stage>,
}

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LBrace,
    RBrace,
    LParen,
    RParen,
    Comma,
    Pipe,
    PipeEq,    // |=
    PipeTilde, // |~
    Eq,        // =
    EqEq,      // ==
    Ne,        // !=
    Re,        // =~
    NotRe,     // !~
    Gt,
    Ge,
    Lt,
    Le,
    Ident(String),
    Str(String),
    Number(String),
    End,
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Str(s) => format!("string \"{s}\""),
        Tok::Number(s) => format!("`{s}`"),
        Tok::End => "the end of the query".into(),
        other => format!("`{}`", symbol(other)),
    }
}

fn symbol(tok: &Tok) -> &'static str {
    match tok {
        Tok::LBrace => "{",
        Tok::RBrace => "}",
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::Comma => ",",
        Tok::Pipe => "|",
        Tok::PipeEq => "|=",
        Tok::PipeTilde => "|~",
        Tok::Eq => "=",
        Tok::EqEq => "==",
        Tok::Ne => "!=",
        Tok::Re => "=~",
        Tok::NotRe => "!~",
        Tok::Gt => ">",
        Tok::Ge => ">=",
        Tok::Lt => "<",
        Tok::Le => "<=",
        _ => "",
    }
}

/// Splits a query into tokens with their character offsets.
fn lex(query: &str) -> Result<Vec<(Tok, usize)>, LogQlError> {
    let chars: Vec<char> = query.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |offset, message: String| Err(LogQlError { offset, message });
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let start = i;
        let two = |t: Tok| (t, 2);
        let (tok, len) = match (c, next) {
            (c, _) if c.is_whitespace() => {
                i += 1;
                continue;
            }
            ('{', _) => (Tok::LBrace, 1),
            ('}', _) => (Tok::RBrace, 1),
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            (',', _) => (Tok::Comma, 1),
            ('|', Some('=')) => two(Tok::PipeEq),
            ('|', Some('~')) => two(Tok::PipeTilde),
            ('|', _) => (Tok::Pipe, 1),
            ('=', Some('=')) => two(Tok::EqEq),
            ('=', Some('~')) => two(Tok::Re),
            ('=', _) => (Tok::Eq, 1),
            ('!', Some('=')) => two(Tok::Ne),
            ('!', Some('~')) => two(Tok::NotRe),
            ('>', Some('=')) => two(Tok::Ge),
            ('>', _) => (Tok::Gt, 1),
            ('<', Some('=')) => two(Tok::Le),
            ('<', _) => (Tok::Lt, 1),
            ('"', _) => {
                let mut text = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return err(start, "a string is not closed".into()),
                        Some('"') => break,
                        Some('\\') => {
                            let escaped = match chars.get(j + 1) {
                                Some('n') => '\n',
                                Some('t') => '\t',
                                Some('r') => '\r',
                                Some('\\') => '\\',
                                Some('"') => '"',
                                Some('\'') => '\'',
                                Some('u') => {
                                    let hex: String = chars.iter().skip(j + 2).take(4).collect();
                                    let code =
                                        u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                                    match code {
                                        Some(c) if hex.len() == 4 => {
                                            text.push(c);
                                            j += 6;
                                            continue;
                                        }
                                        _ => return err(j, "invalid \\u escape".into()),
                                    }
                                }
                                Some(other) => {
                                    // Go's strconv.Unquote rejects unknown escapes such as \d:
                                    // in a regex, write them as \\d or use a `raw string`.
                                    return err(
                                        j,
                                        format!(
                                            "unknown escape `\\{other}` in a string; write `\\\\{other}` or use backticks"
                                        ),
                                    );
                                }
                                None => return err(start, "a string is not closed".into()),
                            };
                            text.push(escaped);
                            j += 2;
                        }
                        Some(c) => {
                            text.push(*c);
                            j += 1;
                        }
                    }
                }
                (Tok::Str(text), j + 1 - i)
            }
            ('`', _) => {
                let close = chars[i + 1..].iter().position(|c| *c == '`');
                match close {
                    None => return err(start, "a raw string is not closed".into()),
                    Some(n) => (Tok::Str(chars[i + 1..i + 1 + n].iter().collect()), n + 2),
                }
            }
            (c, _)
                if c.is_ascii_digit()
                    || (c == '-' && next.is_some_and(|n| n.is_ascii_digit()))
                    || c == '.' =>
            {
                let mut j = i + 1;
                while j < chars.len()
                    && (chars[j].is_ascii_alphanumeric() || chars[j] == '.' || chars[j] == 'µ')
                {
                    j += 1;
                }
                (Tok::Number(chars[i..j].iter().collect()), j - i)
            }
            (c, _) if c.is_ascii_alphabetic() || c == '_' => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                (Tok::Ident(chars[i..j].iter().collect()), j - i)
            }
            (c, _) => return err(start, format!("unexpected character `{c}`")),
        };
        out.push((tok, start));
        i += len;
    }
    out.push((Tok::End, chars.len()));
    Ok(out)
}

// ---------------------------------------------------------------- parser

/// Pipeline stages Loki has that this subset does not.
const UNSUPPORTED_STAGES: [&str; 11] = [
    "line_format",
    "label_format",
    "pattern",
    "regexp",
    "unpack",
    "unwrap",
    "drop",
    "keep",
    "decolorize",
    "distinct",
    "label_replace",
];

struct Parser {
    toks: Vec<(Tok, usize)>,
    at: usize,
}

impl Parser {
    /// The current token; past the end it stays `End`.
    fn current(&self) -> &(Tok, usize) {
        &self.toks[self.at.min(self.toks.len() - 1)]
    }
    fn peek(&self) -> &Tok {
        &self.current().0
    }
    fn offset(&self) -> usize {
        self.current().1
    }
    /// Takes the current token. Always advances, so one step back (`at -= 1`) undoes it.
    fn bump(&mut self) -> Tok {
        let tok = self.peek().clone();
        self.at += 1;
        tok
    }
    fn fail<T>(&self, expected: &str) -> Result<T, LogQlError> {
        Err(LogQlError {
            offset: self.offset(),
            message: format!("expected {expected}, found {}", describe(self.peek())),
        })
    }
    fn string(&mut self) -> Result<String, LogQlError> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.bump();
                Ok(s)
            }
            _ => self.fail("a quoted string"),
        }
    }
    fn label_name(&mut self) -> Result<String, LogQlError> {
        match self.peek().clone() {
            Tok::Ident(s) => {
                self.bump();
                Ok(s)
            }
            _ => self.fail("a label name"),
        }
    }

    fn query(&mut self) -> Result<LogQuery, LogQlError> {
        let selector = self.selector()?;
        let mut stages = Vec::new();
        loop {
            let op = match self.peek() {
                Tok::End => break,
                Tok::PipeEq => Some(MatchOp::Eq),
                Tok::Ne => Some(MatchOp::Ne),
                Tok::PipeTilde => Some(MatchOp::Re),
                Tok::NotRe => Some(MatchOp::NotRe),
                Tok::Pipe => None,
                _ => return self.fail("`|`, a line filter or the end of the query"),
            };
            self.bump();
            if let Some(op) = op {
                let at_text = self.offset();
                let text = self.string()?;
                let regex = match op {
                    MatchOp::Re | MatchOp::NotRe => {
                        Some(Regex::new(&text).map_err(|e| LogQlError {
                            offset: at_text,
                            message: format!(
                                "invalid regex `{text}`: {}",
                                first_line(&e.to_string())
                            ),
                        })?)
                    }
                    _ => None,
                };
                stages.push(Stage::Line(LineFilter { op, text, regex }));
                continue;
            }
            match self.peek().clone() {
                Tok::Ident(word)
                    if (word == "json" || word == "logfmt") && !self.followed_by_comparison() =>
                {
                    self.bump();
                    stages.push(Stage::Parser(if word == "json" {
                        "json"
                    } else {
                        "logfmt"
                    }));
                }
                Tok::Ident(word)
                    if UNSUPPORTED_STAGES.contains(&word.as_str())
                        && !self.followed_by_comparison() =>
                {
                    return Err(LogQlError {
                        offset: self.offset(),
                        message: format!(
                            "`{word}` is valid LogQL, but Faultline's logs support only line filters, json, logfmt and label filters"
                        ),
                    });
                }
                Tok::Ident(_) | Tok::LParen => stages.push(Stage::Labels(self.or_filter()?)),
                _ => return self.fail("`json`, `logfmt` or a label filter after `|`"),
            }
        }
        Ok(LogQuery { selector, stages })
    }

    fn followed_by_comparison(&self) -> bool {
        matches!(
            self.toks.get(self.at + 1).map(|t| &t.0),
            Some(
                Tok::Eq
                    | Tok::EqEq
                    | Tok::Ne
                    | Tok::Re
                    | Tok::NotRe
                    | Tok::Gt
                    | Tok::Ge
                    | Tok::Lt
                    | Tok::Le
            )
        )
    }

    fn selector(&mut self) -> Result<Vec<Matcher>, LogQlError> {
        let open = self.offset();
        if self.bump() != Tok::LBrace {
            return Err(LogQlError {
                offset: open,
                message: "a query starts with a stream selector such as {service=\"payments\"}"
                    .into(),
            });
        }
        let mut matchers = Vec::new();
        loop {
            if *self.peek() == Tok::RBrace && matchers.is_empty() {
                return Err(LogQlError {
                    offset: self.offset(),
                    message: "a stream selector needs at least one matcher".into(),
                });
            }
            let label = self.label_name()?;
            let at = self.offset();
            let op = match self.bump() {
                Tok::Eq => MatchOp::Eq,
                Tok::Ne => MatchOp::Ne,
                Tok::Re => MatchOp::Re,
                Tok::NotRe => MatchOp::NotRe,
                _ => {
                    self.at -= 1;
                    return self.fail("`=`, `!=`, `=~` or `!~`");
                }
            };
            let value = self.string()?;
            matchers.push(Matcher::new(label, op, value, at)?);
            match self.bump() {
                Tok::Comma => continue,
                Tok::RBrace => break,
                _ => {
                    self.at -= 1;
                    return self.fail("`,` or `}`");
                }
            }
        }
        // Loki refuses selectors that would match every stream.
        if matchers.iter().all(|m| m.matches("")) {
            return Err(LogQlError {
                offset: open,
                message: "queries require at least one regexp or equality matcher that does not have an empty-compatible value; for instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will".into(),
            });
        }
        Ok(matchers)
    }

    fn or_filter(&mut self) -> Result<LabelFilter, LogQlError> {
        let mut left = self.and_filter()?;
        while matches!(self.peek(), Tok::Ident(w) if w == "or") {
            self.bump();
            let right = self.and_filter()?;
            left = LabelFilter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_filter(&mut self) -> Result<LabelFilter, LogQlError> {
        let mut left = self.unary_filter()?;
        loop {
            match self.peek() {
                Tok::Comma => {}
                Tok::Ident(w) if w == "and" => {}
                // Loki also reads two predicates side by side as `and`.
                Tok::Ident(w) if w != "or" => {
                    let right = self.unary_filter()?;
                    left = LabelFilter::And(Box::new(left), Box::new(right));
                    continue;
                }
                Tok::LParen => {
                    let right = self.unary_filter()?;
                    left = LabelFilter::And(Box::new(left), Box::new(right));
                    continue;
                }
                _ => return Ok(left),
            }
            self.bump();
            let right = self.unary_filter()?;
            left = LabelFilter::And(Box::new(left), Box::new(right));
        }
    }

    fn unary_filter(&mut self) -> Result<LabelFilter, LogQlError> {
        if *self.peek() == Tok::LParen {
            self.bump();
            let inner = self.or_filter()?;
            if self.bump() != Tok::RParen {
                self.at -= 1;
                return self.fail("`)`");
            }
            return Ok(inner);
        }
        let label = self.label_name()?;
        let op_at = self.offset();
        let op = self.bump();
        match (&op, self.peek().clone()) {
            (Tok::Eq | Tok::Ne | Tok::Re | Tok::NotRe, Tok::Str(value)) => {
                self.bump();
                let op = match op {
                    Tok::Eq => MatchOp::Eq,
                    Tok::Ne => MatchOp::Ne,
                    Tok::Re => MatchOp::Re,
                    _ => MatchOp::NotRe,
                };
                Ok(LabelFilter::String(Matcher::new(label, op, value, op_at)?))
            }
            (
                Tok::Eq | Tok::EqEq | Tok::Ne | Tok::Gt | Tok::Ge | Tok::Lt | Tok::Le,
                Tok::Number(text),
            ) => {
                let value_at = self.offset();
                self.bump();
                let op = match op {
                    Tok::Eq | Tok::EqEq => CmpOp::Eq,
                    Tok::Ne => CmpOp::Ne,
                    Tok::Gt => CmpOp::Gt,
                    Tok::Ge => CmpOp::Ge,
                    Tok::Lt => CmpOp::Lt,
                    _ => CmpOp::Le,
                };
                if let Ok(value) = text.parse::<f64>() {
                    return Ok(LabelFilter::Number { label, op, value });
                }
                if let Some(value) = go_duration(&text) {
                    return Ok(LabelFilter::Duration { label, op, value });
                }
                match bytes(&text) {
                    Some(value) => Ok(LabelFilter::Bytes { label, op, value }),
                    None => Err(LogQlError {
                        offset: value_at,
                        message: format!(
                            "`{text}` is not a number, a duration (250ms) or a size (20MB)"
                        ),
                    }),
                }
            }
            (
                Tok::Eq
                | Tok::EqEq
                | Tok::Ne
                | Tok::Re
                | Tok::NotRe
                | Tok::Gt
                | Tok::Ge
                | Tok::Lt
                | Tok::Le,
                _,
            ) => self.fail("a quoted string, a number or a duration"),
            _ => {
                self.at -= 1;
                self.fail("a comparison such as `=`, `>` or `=~`")
            }
        }
    }
}

/// A Go-style duration as Loki reads them: `1.5s`, `250ms`, `1h30m`, `300us`.
fn go_duration(text: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let unit_at = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let unit_len = rest[unit_at..]
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len() - unit_at);
        let part = &rest[..unit_at + unit_len];
        let unit = &rest[unit_at..unit_at + unit_len];
        let us = match unit {
            "ns" => Duration::parse(&format!("{}us", &rest[..unit_at]))
                .ok()
                .map(|d| d.0 / 1_000)?,
            "us" | "µs" | "ms" | "s" | "m" | "h" => Duration::parse(part).ok()?.0,
            _ => return None,
        };
        total = total.checked_add(us)?;
        rest = &rest[unit_at + unit_len..];
    }
    Some(Duration(total))
}

/// A size as Loki reads it (go-humanize): `20MB` is 20,000,000 bytes, `1KiB` is 1,024.
fn bytes(text: &str) -> Option<u64> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale: f64 = match unit.to_ascii_lowercase().as_str() {
        "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "tb" | "t" => 1e12,
        "kib" | "ki" => 1024.0,
        "mib" | "mi" => 1_048_576.0,
        "gib" | "gi" => 1_073_741_824.0,
        "tib" | "ti" => 1_099_511_627_776.0,
        _ => return None,
    };
    Some((number * scale) as u64)
}

/// Parses a LogQL query, or says what is wrong and where.
pub fn parse(query: &str) -> Result<LogQuery, LogQlError> {
    let toks = lex(query)?;
    let mut parser = Parser { toks, at: 0 };
    parser.query()
}

// ---------------------------------------------------------------- evaluation

/// The labels a line carries: stream labels (service, instance, level) then its fields.
/// Borrowed where the store already holds the text, so scanning lines allocates little.
fn label_value<'a>(t: &'a Telemetry, line: &'a LogLine, label: &str) -> Option<Cow<'a, str>> {
    match label {
        "service" => Some(Cow::Borrowed(t.service_name(line.service))),
        "instance" => Some(Cow::Owned(format!(
            "{}-{}",
            t.service_name(line.service),
            line.instance
        ))),
        "level" => Some(Cow::Borrowed(line.level.name())),
        "trace_id" => line.trace_id.map(|id| Cow::Owned(id.to_string())),
        "span_id" => line.span_id.map(|id| Cow::Owned(id.to_string())),
        "msg" => Some(Cow::Borrowed(t.text(line.message))),
        other => field(t, line, other).map(|v| match v {
            Value::Str(s) => Cow::Borrowed(t.text(*s)),
            other => Cow::Owned(t.value_text(other)),
        }),
    }
}

/// The field of a line whose Loki label name is `label`.
fn field<'a>(t: &Telemetry, line: &'a LogLine, label: &str) -> Option<&'a Value> {
    line.fields
        .iter()
        .find(|(k, _)| is_label_of(t.text(*k), label))
        .map(|(_, v)| v)
}

/// Whether `label_name(field) == label`, without building the name.
fn is_label_of(field: &str, label: &str) -> bool {
    field.len() == label.len()
        && field.bytes().zip(label.bytes()).all(|(f, l)| {
            let f = if f.is_ascii_alphanumeric() || f == b'_' {
                f
            } else {
                b'_'
            };
            f == l
        })
}

/// A line's value for a numeric filter: integers directly, text parsed as a number.
fn number_value(t: &Telemetry, line: &LogLine, label: &str) -> Option<f64> {
    match field(t, line, label) {
        Some(Value::Int(i)) => Some(i.get() as f64),
        _ => label_value(t, line, label)?.parse().ok(),
    }
}

/// A field's name as a Loki label: what `| json` makes of it (`http.route` → `http_route`).
pub fn label_name(field: &str) -> String {
    field
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The text line filters search: the message, then `key=value` for each field (logfmt).
pub fn line_text(t: &Telemetry, line: &LogLine) -> String {
    let mut text = String::new();
    write_line_text(t, line, &mut text);
    text
}

/// Writes `line_text` into `out`, reusing its allocation.
fn write_line_text(t: &Telemetry, line: &LogLine, out: &mut String) {
    use std::fmt::Write as _;
    out.clear();
    let _ = write!(out, "msg=\"{}\"", t.text(line.message));
    for (k, v) in &line.fields {
        let _ = write!(out, " {}=", t.text(*k));
        match v {
            Value::Str(s) if t.text(*s).contains(' ') => {
                let _ = write!(out, "\"{}\"", t.text(*s));
            }
            Value::Str(s) => out.push_str(t.text(*s)),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Bool(b) => {
                let _ = write!(out, "{b}");
            }
        }
    }
}

/// Outcome of a label filter on one line: Loki keeps lines whose value does not convert, and
/// marks them with `__error__`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Keep,
    Drop,
    KeepWithError,
}

fn evaluate(t: &Telemetry, line: &LogLine, filter: &LabelFilter, error: bool) -> Verdict {
    let lookup = |label: &str| -> Option<Cow<'_, str>> {
        if label == "__error__" {
            Some(Cow::Borrowed(if error {
                "SampleExtractionErr"
            } else {
                ""
            }))
        } else {
            label_value(t, line, label)
        }
    };
    let keep = |b: bool| if b { Verdict::Keep } else { Verdict::Drop };
    match filter {
        LabelFilter::String(m) => keep(m.matches(&lookup(&m.label).unwrap_or_default())),
        LabelFilter::Number { label, op, value } => match number_value(t, line, label) {
            Some(actual) => keep(op.holds(actual, *value)),
            None => Verdict::KeepWithError,
        },
        LabelFilter::Duration { label, op, value } => {
            match lookup(label).and_then(|v| go_duration(&v)) {
                Some(actual) => keep(op.holds(actual.0 as f64, value.0 as f64)),
                None => Verdict::KeepWithError,
            }
        }
        LabelFilter::Bytes { label, op, value } => match lookup(label).and_then(|v| bytes(&v)) {
            Some(actual) => keep(op.holds(actual as f64, *value as f64)),
            None => Verdict::KeepWithError,
        },
        LabelFilter::And(a, b) => {
            match (evaluate(t, line, a, error), evaluate(t, line, b, error)) {
                (Verdict::Drop, _) | (_, Verdict::Drop) => Verdict::Drop,
                (Verdict::KeepWithError, _) | (_, Verdict::KeepWithError) => Verdict::KeepWithError,
                _ => Verdict::Keep,
            }
        }
        LabelFilter::Or(a, b) => match (evaluate(t, line, a, error), evaluate(t, line, b, error)) {
            (Verdict::Keep, _) | (_, Verdict::Keep) => Verdict::Keep,
            (Verdict::KeepWithError, _) | (_, Verdict::KeepWithError) => Verdict::KeepWithError,
            _ => Verdict::Drop,
        },
    }
}

impl LogQuery {
    /// Whether a line passes the selector and every stage, decided on the line alone (the
    /// plain reading of the query, which `run` must agree with).
    pub fn keeps(&self, t: &Telemetry, line: &LogLine) -> bool {
        self.selects(t, line) && self.passes_stages(t, line, &mut String::new(), None)
    }

    /// Whether the stream selector takes the line's stream.
    fn selects(&self, t: &Telemetry, line: &LogLine) -> bool {
        self.selector
            .iter()
            .all(|m| m.matches(&label_value(t, line, &m.label).unwrap_or_default()))
    }

    /// Whether the line passes every pipeline stage; `text` is scratch space for its text.
    /// `shortcuts`, one per stage, decide line filters without writing the text where they can.
    fn passes_stages(
        &self,
        t: &Telemetry,
        line: &LogLine,
        text: &mut String,
        mut shortcuts: Option<&mut [Shortcut]>,
    ) -> bool {
        let mut have_text = false;
        let mut error = false;
        for (n, stage) in self.stages.iter().enumerate() {
            match stage {
                Stage::Line(filter) => {
                    let shortcut = shortcuts.as_deref_mut().map(|s| &mut s[n]);
                    let decided = match shortcut {
                        Some(Shortcut::Contains(needle)) => {
                            Some(needle.found(t, line) == (filter.op == MatchOp::Eq))
                        }
                        Some(Shortcut::Needs(needles)) => {
                            // No needle in the line: the regex cannot match it.
                            (!needles.iter_mut().any(|n| n.found(t, line)))
                                .then_some(filter.op == MatchOp::NotRe)
                        }
                        _ => None,
                    };
                    let keep = decided.unwrap_or_else(|| {
                        if !have_text {
                            write_line_text(t, line, text);
                            have_text = true;
                        }
                        filter.keeps(text)
                    });
                    if !keep {
                        return false;
                    }
                }
                Stage::Parser(_) => {}
                Stage::Labels(filter) => match evaluate(t, line, filter, error) {
                    Verdict::Drop => return false,
                    Verdict::KeepWithError => error = true,
                    Verdict::Keep => {}
                },
            }
        }
        true
    }

    /// Indexes of matching lines, ascending (time order for a run's logs).
    pub fn run(&self, t: &Telemetry) -> Vec<u32> {
        self.run_between(t, None, None)
    }

    /// Indexes of matching lines whose (true) time is in [from, until), ascending. Reads only
    /// the lines of the streams the selector takes (or of the trace it names), narrowed to the
    /// time range by binary search, and decides line filters per interned string where exact.
    pub fn run_between(
        &self,
        t: &Telemetry,
        from: Option<SimTime>,
        until: Option<SimTime>,
    ) -> Vec<u32> {
        let index = t.index();
        let ordered = index.logs_in_time_order();
        let in_range = |line: &LogLine| {
            from.is_none_or(|f| line.time >= f) && until.is_none_or(|u| line.time < u)
        };
        // When lines are in time order, a list of them narrows to the range by binary search.
        let narrow = |list: &'_ [u32]| -> (usize, usize) {
            if !ordered {
                return (0, list.len());
            }
            let time = |i: &u32| t.logs[*i as usize].time;
            let lo = from.map_or(0, |f| list.partition_point(|i| time(i) < f));
            let hi = until.map_or(list.len(), |u| list.partition_point(|i| time(i) < u));
            (lo, hi.max(lo))
        };
        let mut shortcuts: Vec<Shortcut> = self.stages.iter().map(Shortcut::for_stage).collect();
        let mut text = String::new();
        let mut hits = Vec::new();
        let mut check = |i: u32, matchers: &[&Matcher]| {
            let line = &t.logs[i as usize];
            if (ordered || in_range(line))
                && matchers
                    .iter()
                    .all(|m| m.matches(&label_value(t, line, &m.label).unwrap_or_default()))
                && self.passes_stages(t, line, &mut text, Some(&mut shortcuts))
            {
                hits.push(i);
            }
        };
        let all: Vec<&Matcher> = self.selector.iter().collect();
        // `trace_id=""` takes the lines without a trace: no help from the index.
        let trace = self
            .selector
            .iter()
            .find(|m| m.label == "trace_id" && m.op == MatchOp::Eq && !m.value.is_empty());
        if let Some(trace) = trace {
            // The lines of one trace; a value that is no trace id's text matches none.
            let list = parse_trace_id(&trace.value).map_or(&[][..], |id| index.logs_of_trace(id));
            let (lo, hi) = narrow(list);
            list[lo..hi].iter().for_each(|&i| check(i, &all));
            return hits;
        }
        let is_stream = |m: &&Matcher| matches!(m.label.as_str(), "service" | "instance" | "level");
        let (stream_matchers, line_matchers): (Vec<&Matcher>, Vec<&Matcher>) =
            all.into_iter().partition(is_stream);
        // Stream labels are the same on every line of a stream: decide on its first line.
        let streams: Vec<(Stream, &[u32], bool)> = index
            .streams()
            .map(|(stream, list)| {
                let first = &t.logs[list[0] as usize];
                let taken = stream_matchers
                    .iter()
                    .all(|m| m.matches(&label_value(t, first, &m.label).unwrap_or_default()));
                (stream, list, taken)
            })
            .collect();
        let lists: Vec<&[u32]> = streams
            .iter()
            .filter(|s| s.2)
            .map(|(_, list, _)| {
                let (lo, hi) = narrow(list);
                &list[lo..hi]
            })
            .collect();
        let lines = t.logs.len() as u32;
        let (lo, hi) = if ordered {
            let time = |i: u32| t.logs[i as usize].time;
            let lo = from.map_or(0, |f| partition_point(lines, |i| time(i) < f));
            let hi = until.map_or(lines, |u| partition_point(lines, |i| time(i) < u));
            (lo, hi.max(lo))
        } else {
            (0, lines)
        };
        // When the streams taken hold a good part of the range, one pass over it in order
        // reads memory sequentially, where one pass per stream would jump about.
        let selected: usize = lists.iter().map(|l| l.len()).sum();
        if selected * 4 >= (hi - lo) as usize {
            if let Some(table) = StreamTable::new(&streams) {
                (lo..hi)
                    .filter(|&i| table.takes(&t.logs[i as usize]))
                    .for_each(|i| check(i, &line_matchers));
                return hits;
            }
        }
        for list in &lists {
            list.iter().for_each(|&i| check(i, &line_matchers));
        }
        if lists.len() > 1 {
            // Each stream's hits are ascending: the stable sort merges the runs.
            hits.sort();
        }
        hits
    }
}

/// Which streams a selector takes, as a table indexed by service, instance and level.
struct StreamTable {
    instances: usize,
    taken: Vec<bool>,
}

impl StreamTable {
    /// None when the table would be large (ids spread wide, as an imported file may have).
    fn new(streams: &[(Stream, &[u32], bool)]) -> Option<StreamTable> {
        let services = streams.iter().map(|s| usize::from(s.0.0.0) + 1).max()?;
        let instances = streams.iter().map(|s| usize::from(s.0.1) + 1).max()?;
        let size = services.checked_mul(instances)?.checked_mul(4)?;
        if size > 1 << 16 {
            return None;
        }
        let mut taken = vec![false; size];
        for &((service, instance, level), _, yes) in streams {
            taken[(usize::from(service.0) * instances + usize::from(instance)) * 4
                + level as usize] = yes;
        }
        Some(StreamTable { instances, taken })
    }

    fn takes(&self, line: &LogLine) -> bool {
        let at = (usize::from(line.service.0) * self.instances + usize::from(line.instance)) * 4
            + line.level as usize;
        self.taken.get(at).copied().unwrap_or(false)
    }
}

/// The first `i` in `0..n` where `before(i)` is false, for `before` true then false.
fn partition_point(n: u32, before: impl Fn(u32) -> bool) -> u32 {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if before(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// A trace id from its label text: exactly 32 lower-case hex digits, as lines show it.
fn parse_trace_id(text: &str) -> Option<TraceId> {
    let hex = text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    hex.then(|| u128::from_str_radix(text, 16).ok().map(TraceId))
        .flatten()
}

/// How a line filter can be decided without writing out the line's text.
enum Shortcut {
    None,
    /// `|=` or `!=` whose text holds no `"`, space or `=`: see `Needle`.
    Contains(Needle),
    /// `|~` or `!~`: every match contains one of these; a line with none cannot match.
    Needs(Vec<Needle>),
}

impl Shortcut {
    fn for_stage(stage: &Stage) -> Shortcut {
        let Stage::Line(filter) = stage else {
            return Shortcut::None;
        };
        match filter.op {
            MatchOp::Eq | MatchOp::Ne => {
                Needle::new(&filter.text).map_or(Shortcut::None, Shortcut::Contains)
            }
            MatchOp::Re | MatchOp::NotRe => {
                required_needles(&filter.text).map_or(Shortcut::None, Shortcut::Needs)
            }
        }
    }
}

/// For a regex, needles such that each match contains one: from the literals each match
/// starts with, the longest stretch of each free of `"`, space and `=`. None if that cannot
/// be said (a match may start with anything).
fn required_needles(pattern: &str) -> Option<Vec<Needle>> {
    use regex_syntax::hir::literal::Extractor;
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    let seq = Extractor::new().extract(&hir);
    let literals = seq.literals()?;
    if literals.is_empty() {
        return None;
    }
    let mut cores = literals
        .iter()
        .map(|literal| {
            let core = literal
                .as_bytes()
                .split(|b| Needle::SEPARATORS.contains(b))
                .max_by_key(|run| run.len())?;
            std::str::from_utf8(core).ok().filter(|c| !c.is_empty())
        })
        .collect::<Option<Vec<&str>>>()?;
    // `[0-9]{13}` after a prefix makes many literals that share one core: look for it once.
    cores.sort_unstable();
    cores.dedup();
    // Many (`(?i)timeout` has 128): writing out the line is cheaper than looking for each.
    if cores.len() > 8 {
        return None;
    }
    cores.into_iter().map(Needle::new).collect()
}

/// Text without `"`, space or `=`, looked for in a line. The line's text (`line_text`) joins
/// its parts (`msg`, the message, each field's key and value) with runs of those three
/// characters only, so such a text occurs in the line exactly when it occurs in one part:
/// decided once per interned string, not once per line.
struct Needle {
    text: String,
    /// Whether `msg` holds it (then every line does).
    in_msg: bool,
    /// Whether an integer's digits could hold it.
    numeric: bool,
    /// Whether `false` and `true` hold it.
    in_bool: [bool; 2],
    /// Per symbol: 0 not yet known, 1 holds it, 2 does not.
    seen: Vec<u8>,
    scratch: String,
}

impl Needle {
    const SEPARATORS: [u8; 3] = [b'"', b' ', b'='];

    fn new(text: &str) -> Option<Needle> {
        if text.bytes().any(|b| Needle::SEPARATORS.contains(&b)) {
            return None;
        }
        Some(Needle {
            text: text.to_string(),
            in_msg: "msg".contains(text),
            numeric: text.bytes().all(|b| b.is_ascii_digit() || b == b'-'),
            in_bool: ["false".contains(text), "true".contains(text)],
            seen: Vec::new(),
            scratch: String::new(),
        })
    }

    fn in_sym(&mut self, t: &Telemetry, sym: Sym) -> bool {
        let at = sym.0 as usize;
        if at >= self.seen.len() {
            self.seen.resize(at + 1, 0);
        }
        if self.seen[at] == 0 {
            self.seen[at] = if t.text(sym).contains(self.text.as_str()) {
                1
            } else {
                2
            };
        }
        self.seen[at] == 1
    }

    /// Whether `line_text(t, line)` contains the text.
    fn found(&mut self, t: &Telemetry, line: &LogLine) -> bool {
        use std::fmt::Write as _;
        if self.in_msg || self.in_sym(t, line.message) {
            return true;
        }
        line.fields.iter().any(|(key, value)| {
            self.in_sym(t, *key)
                || match value {
                    Value::Str(s) => self.in_sym(t, *s),
                    Value::Int(i) => {
                        self.numeric && {
                            self.scratch.clear();
                            let _ = write!(self.scratch, "{i}");
                            self.scratch.contains(self.text.as_str())
                        }
                    }
                    Value::Bool(b) => self.in_bool[usize::from(*b)],
                }
        })
    }
}

fn quote(s: &str) -> String {
    format!("{s:?}")
}

impl fmt::Display for LabelFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelFilter::String(m) => write!(f, "{}{}{}", m.label, m.op.symbol(), quote(&m.value)),
            LabelFilter::Number { label, op, value } => write!(f, "{label}{}{value}", op.symbol()),
            LabelFilter::Duration { label, op, value } => {
                write!(f, "{label}{}{value}", op.symbol())
            }
            LabelFilter::Bytes { label, op, value } => write!(f, "{label}{}{value}B", op.symbol()),
            LabelFilter::And(a, b) => write!(f, "({a} and {b})"),
            LabelFilter::Or(a, b) => write!(f, "({a} or {b})"),
        }
    }
}

impl fmt::Display for LogQuery {
    /// The canonical form: fully parenthesised, strings re-quoted, durations normalised.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let matchers: Vec<String> = self
            .selector
            .iter()
            .map(|m| format!("{}{}{}", m.label, m.op.symbol(), quote(&m.value)))
            .collect();
        write!(f, "{{{}}}", matchers.join(", "))?;
        for stage in &self.stages {
            match stage {
                Stage::Line(l) => {
                    let op = match l.op {
                        MatchOp::Eq => "|=",
                        MatchOp::Ne => "!=",
                        MatchOp::Re => "|~",
                        MatchOp::NotRe => "!~",
                    };
                    write!(f, " {op} {}", quote(&l.text))?;
                }
                Stage::Parser(p) => write!(f, " | {p}")?,
                Stage::Labels(filter) => write!(f, " | {filter}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::default_mesh;
    use crate::scenario::{FaultEffect, FaultSpec};

    /// Queries from Loki's LogQL documentation that Loki accepts, with the canonical form
    /// this parser gives them (which shows how it read them).
    const ACCEPTED: &[(&str, &str)] = &[
        (
            r#"{app="mysql",name="mysql-backup"}"#,
            r#"{app="mysql", name="mysql-backup"}"#,
        ),
        (r#"{name=~"mysql.+"}"#, r#"{name=~"mysql.+"}"#),
        (
            r#"{name!~"mysql.+", app="x"}"#,
            r#"{name!~"mysql.+", app="x"}"#,
        ),
        (
            "{name!~`mysql-\\d+`, app=\"x\"}",
            r#"{name!~"mysql-\\d+", app="x"}"#,
        ),
        (r#"{job="mysql"} |= "error""#, r#"{job="mysql"} |= "error""#),
        (
            r#"{name="kafka"} |~ "tsdb-ops.*io:2003""#,
            r#"{name="kafka"} |~ "tsdb-ops.*io:2003""#,
        ),
        (
            "{name=\"cassandra\"} |~  `error=\\w+`",
            r#"{name="cassandra"} |~ "error=\\w+""#,
        ),
        (
            r#"{instance=~"kafka-[23]",name="kafka"} != "kafka.server:type=ReplicaManager""#,
            r#"{instance=~"kafka-[23]", name="kafka"} != "kafka.server:type=ReplicaManager""#,
        ),
        (
            r#"{job="mysql"} |= "error" != "timeout""#,
            r#"{job="mysql"} |= "error" != "timeout""#,
        ),
        (
            r#"{job="mysql"} | logfmt | duration > 1m and bytes_consumed > 20MB"#,
            r#"{job="mysql"} | logfmt | (duration>1m and bytes_consumed>20000000B)"#,
        ),
        (
            r#"{job="x"} | duration >= 20ms or size == 20kb and method!~"2..""#,
            r#"{job="x"} | (duration>=20ms or (size==20000B and method!~"2.."))"#,
        ),
        (
            r#"{job="x"} | duration >= 20ms or (method="GET" and size <= 20KB)"#,
            r#"{job="x"} | (duration>=20ms or (method="GET" and size<=20000B))"#,
        ),
        (
            r#"{cluster="ops-tools1", namespace="loki-dev", job="loki-dev/query-frontend"} |= "metrics.go" !="out of order" | logfmt | duration > 30s or status_code!="200""#,
            r#"{cluster="ops-tools1", namespace="loki-dev", job="loki-dev/query-frontend"} |= "metrics.go" != "out of order" | logfmt | (duration>30s or status_code!="200")"#,
        ),
        (
            r#"{job="varlogs"} | json | status >= 400, method = "GET""#,
            r#"{job="varlogs"} | json | (status>=400 and method="GET")"#,
        ),
        (
            r#"{app=~".+"} | json | __error__="""#,
            r#"{app=~".+"} | json | __error__="""#,
        ),
        (
            r#"{app="x"} |= "say \"hi\"\n""#,
            r#"{app="x"} |= "say \"hi\"\n""#,
        ),
        (
            r#"{app="x"} | level="error" | latency >= 250ms"#,
            r#"{app="x"} | level="error" | latency>=250ms"#,
        ),
    ];

    /// Queries Loki rejects, with where and why this parser does.
    const REJECTED: &[(&str, &str)] = &[
        (
            "{}",
            "parse error at column 2: a stream selector needs at least one matcher",
        ),
        (
            r#"{app=~".*"}"#,
            "parse error at column 1: queries require at least one regexp or equality matcher",
        ),
        (
            r#"{app="foo"} |= error"#,
            "parse error at column 16: expected a quoted string, found `error`",
        ),
        (
            r#"{app="foo" |= "x""#,
            "parse error at column 12: expected `,` or `}`, found `|=`",
        ),
        (
            r#"app="foo""#,
            "parse error at column 1: a query starts with a stream selector",
        ),
        (
            r#"{app="foo"} | duration > "#,
            "parse error at column 26: expected a quoted string, a number or a duration, found the end of the query",
        ),
        (
            r#"{app="foo"} |~ "(""#,
            "parse error at column 16: invalid regex `(`",
        ),
        (
            r#"{app="foo"} |~ "\d+""#,
            "parse error at column 17: unknown escape `\\d`",
        ),
        (
            r#"{app.name="x"}"#,
            "parse error at column 5: expected `=`, `!=`, `=~` or `!~`",
        ),
        // `parsecs` reads as a second predicate (a space means `and`) that lacks its comparison.
        (
            r#"{app="x"} | size > 20 parsecs"#,
            "parse error at column 30: expected a comparison",
        ),
        (
            r#"{app="x"} | line_format "{{.msg}}""#,
            "parse error at column 13: `line_format` is valid LogQL, but",
        ),
        (
            r#"{app="x""#,
            "parse error at column 9: expected `,` or `}`, found the end of the query",
        ),
        (
            r#"{app="x"} | latency > 10Q"#,
            "parse error at column 23: `10Q` is not a number, a duration",
        ),
    ];

    #[test]
    fn accepts_what_loki_accepts() {
        for (query, canonical) in ACCEPTED {
            let parsed = parse(query).unwrap_or_else(|e| panic!("{query}\n{e}"));
            assert_eq!(parsed.to_string(), *canonical, "{query}");
            // The canonical form is itself a query with the same reading.
            assert_eq!(parse(canonical).unwrap().to_string(), *canonical);
        }
    }

    #[test]
    fn rejects_what_loki_rejects_and_says_where() {
        for (query, expected) in REJECTED {
            let error = parse(query)
                .map(|q| q.to_string())
                .expect_err(query)
                .to_string();
            assert!(
                error.starts_with(expected),
                "{query}\n got: {error}\nwant: {expected}"
            );
        }
    }

    fn telemetry() -> Telemetry {
        let mut scenario = default_mesh(40.0, 5_000);
        scenario.faults.push(FaultSpec {
            service: "auth".into(),
            instance: None,
            from_ms: 0,
            until_ms: 5_000,
            effect: FaultEffect::ErrorRate { rate: 0.3 },
        });
        crate::run(&scenario, 8).unwrap()
    }

    fn count(t: &Telemetry, query: &str) -> usize {
        parse(query)
            .unwrap_or_else(|e| panic!("{query}: {e}"))
            .run(t)
            .len()
    }

    #[test]
    fn selectors_line_filters_and_fields_mean_what_loki_means() {
        let t = telemetry();
        let warn_auth_callers = t
            .logs
            .iter()
            .filter(|l| {
                l.level == crate::telemetry::Level::Warn && t.service_name(l.service) == "gateway"
            })
            .count();
        assert!(warn_auth_callers > 0);
        assert_eq!(
            count(&t, r#"{service="gateway", level="warn"}"#),
            warn_auth_callers
        );
        assert_eq!(
            count(&t, r#"{service="gateway", level=~"warn"}"#),
            warn_auth_callers
        );
        let retrying = count(&t, r#"{level=~"warn|error"} |= "retrying""#);
        assert_eq!(
            retrying,
            t.logs
                .iter()
                .filter(|l| t.text(l.message) == "call failed, retrying")
                .count()
        );
        assert_eq!(
            count(&t, r#"{level=~"warn|error"} |= "retrying" != "retrying""#),
            0
        );
        let errors_500 = count(
            &t,
            r#"{service="auth"} | json | http_response_status_code >= 500"#,
        );
        let errors_500_direct = t
            .logs
            .iter()
            .filter(|l| {
                t.service_name(l.service) == "auth" && l.level == crate::telemetry::Level::Error
            })
            .count();
        assert_eq!(errors_500, errors_500_direct);
        // Regex matchers are anchored: "auth" does not match "oauth"-like substrings.
        assert_eq!(count(&t, r#"{service=~"aut"}"#), 0);
        assert!(count(&t, r#"{service=~"aut."}"#) > 0);
    }

    #[test]
    fn a_missing_number_keeps_the_line_with_an_error_as_loki_does() {
        let t = telemetry();
        let gateway = count(&t, r#"{service="gateway"}"#);
        // backoff_ms exists only on retry warnings; Loki keeps the others, marked __error__.
        assert_eq!(
            count(&t, r#"{service="gateway"} | backoff_ms >= 0"#),
            gateway
        );
        let with_backoff = count(
            &t,
            r#"{service="gateway"} | backoff_ms >= 0 | __error__="""#,
        );
        assert_eq!(
            with_backoff,
            count(&t, r#"{service="gateway"} |= "backoff_ms=""#)
        );
        assert!(with_backoff > 0 && with_backoff < gateway);
    }

    #[test]
    fn go_durations_and_sizes_read_like_loki() {
        assert_eq!(go_duration("1h30m"), Some(Duration::from_secs(5_400)));
        assert_eq!(go_duration("1.5s"), Some(Duration::from_ms(1_500)));
        assert_eq!(go_duration("2000ns"), Some(Duration(2)));
        assert_eq!(go_duration("20MB"), None);
        assert_eq!(bytes("20MB"), Some(20_000_000));
        assert_eq!(bytes("1KiB"), Some(1_024));
        assert_eq!(bytes("3 parsecs"), None);
    }
}
