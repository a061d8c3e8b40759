//! Virtual time: `SimTime` (an instant) and `Duration` (a span), both whole microseconds in a `u64`.
//! Also the human form of durations that search boxes take and charts print ("1.2s", "300ms"),
//! and of instants on the run's clock that a time range takes ("1:05", "65s").

use std::fmt;

/// `a * b`, or `u64::MAX` when that overflows: `u64::saturating_mul` without its 128-bit
/// multiply in the common case, which wasm32 makes a call to `__multi3` (a few percent of a run
/// in wasm, as times are scaled on every step).
#[inline]
pub(crate) const fn saturating_mul(a: u64, b: u64) -> u64 {
    // Both below 2^32: the product fits, one multiply. (Written as `a > u64::MAX / b`, the
    // check is turned back into a multiply with overflow, a 128-bit call in wasm.)
    if (a | b) >> 32 == 0 {
        return a * b;
    }
    match a.checked_mul(b) {
        Some(product) => product,
        None => u64::MAX,
    }
}

/// An instant on the simulation's clock, in microseconds since the run started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(pub u64);

/// A length of virtual time in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub u64);

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);

    pub fn from_ms(ms: u64) -> SimTime {
        SimTime(saturating_mul(ms, 1_000))
    }

    /// The instant `d` later, saturating at the end of time rather than wrapping.
    pub fn after(self, d: Duration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }

    /// How long after `earlier` this instant is; zero if `earlier` is not earlier.
    pub fn since(self, earlier: SimTime) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }

    /// Parses an instant on the run's clock as the lab prints it, `minutes:seconds` with an
    /// optional fraction (`1:05`, `0:07.250`), or as a duration since the run started (`65s`,
    /// `1.5m`, see `Duration::parse`).
    pub fn parse_clock(text: &str) -> Result<SimTime, ClockError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ClockError::Empty);
        }
        let Some((minutes, seconds)) = text.split_once(':') else {
            return Duration::parse(text)
                .map(|d| SimTime(d.0))
                .map_err(|e| match e {
                    DurationError::MissingUnit(n) => ClockError::MissingUnit(n),
                    e => ClockError::Duration(e),
                });
        };
        let bad = || ClockError::BadClock(text.to_string());
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, "0"));
        if !digits(minutes) || !digits(whole) || whole.len() > 2 || !digits(fraction) {
            return Err(bad());
        }
        if whole.parse::<u64>().map_err(|_| bad())? >= 60 {
            return Err(ClockError::SecondsOver(text.to_string()));
        }
        let minutes = Duration::parse(&format!("{minutes}m")).map_err(ClockError::Duration)?;
        let seconds = Duration::parse(&format!("{whole}.{fraction}s")).map_err(|_| bad())?;
        Ok(SimTime(minutes.0.saturating_add(seconds.0)))
    }
}

/// Why an instant on the run's clock did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    #[error("a time is empty; write minutes:seconds (1:05) or a duration (65s)")]
    Empty,
    #[error("`{0}` has no unit; write {0}s, or minutes:seconds such as 1:05")]
    MissingUnit(String),
    #[error("`{0}` is not a clock time; write minutes:seconds such as 1:05 or 1:05.250")]
    BadClock(String),
    #[error("`{0}`: the seconds after `:` go from 00 to 59")]
    SecondsOver(String),
    #[error("{0}")]
    Duration(DurationError),
}

impl Duration {
    pub const ZERO: Duration = Duration(0);

    pub fn from_us(us: u64) -> Duration {
        Duration(us)
    }

    pub fn from_ms(ms: u64) -> Duration {
        Duration(saturating_mul(ms, 1_000))
    }

    pub fn from_secs(secs: u64) -> Duration {
        Duration(saturating_mul(secs, 1_000_000))
    }

    pub fn as_us(self) -> u64 {
        self.0
    }

    /// Parses the forms Jaeger's duration boxes take: a number (integer or decimal) followed by
    /// `us`, `µs`, `ms`, `s`, `m` or `h`, e.g. `300ms`, `1.2s`, `250us`. Whitespace around the
    /// number and unit is allowed; a value finer than a microsecond is rounded to the nearest.
    pub fn parse(text: &str) -> Result<Duration, DurationError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(DurationError::Empty);
        }
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| DurationError::MissingUnit(text.to_string()))?;
        let (number, unit) = text.split_at(split);
        let unit = unit.trim();
        let us_per_unit: u64 = match unit {
            "us" | "µs" => 1,
            "ms" => 1_000,
            "s" => 1_000_000,
            "m" => 60_000_000,
            "h" => 3_600_000_000,
            _ => return Err(DurationError::UnknownUnit(unit.to_string())),
        };
        let (whole, fraction) = match number.split_once('.') {
            Some((w, f)) => (w, f),
            None => (number, ""),
        };
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(DurationError::BadNumber(number.to_string()));
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole
                .parse()
                .map_err(|_| DurationError::BadNumber(number.to_string()))?
        };
        // Exact decimal arithmetic: scale the fraction's digits by the unit, no floats involved.
        let mut fraction_us: u128 = 0;
        let mut scale: u128 = 1;
        for digit in fraction.bytes().take(18) {
            fraction_us = fraction_us * 10 + u128::from(digit - b'0');
            scale *= 10;
        }
        let fraction_us = (fraction_us * u128::from(us_per_unit) + scale / 2) / scale;
        let total = u128::from(whole) * u128::from(us_per_unit) + fraction_us;
        u64::try_from(total)
            .map(Duration)
            .map_err(|_| DurationError::TooLong(text.to_string()))
    }
}

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("a duration is empty; write e.g. 300ms or 1.2s")]
    Empty,
    #[error("`{0}` has no unit; add one of us, ms, s, m, h (e.g. {0}ms)")]
    MissingUnit(String),
    #[error("`{0}` is not a unit; use us, ms, s, m or h")]
    UnknownUnit(String),
    #[error("`{0}` is not a number")]
    BadNumber(String),
    #[error("`{0}` is longer than the simulation can count")]
    TooLong(String),
}

impl fmt::Display for Duration {
    /// The shortest readable form with at most three significant decimals, as Jaeger prints
    /// span durations: `850µs`, `12.35ms`, `1.2s`, `2m 5s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.0;
        if us < 1_000 {
            return write!(f, "{us}µs");
        }
        // Thresholds sit where two-decimal rounding would print `1000ms` or `60s`.
        if us < 999_995 {
            return write_decimal(f, us, 1_000, "ms");
        }
        if us < 59_995_000 {
            return write_decimal(f, us, 1_000_000, "s");
        }
        let total_secs = (us + 500_000) / 1_000_000; // nearest second
        let (minutes, secs) = (total_secs / 60, total_secs % 60);
        if minutes < 60 {
            return if secs == 0 {
                write!(f, "{minutes}m")
            } else {
                write!(f, "{minutes}m {secs}s")
            };
        }
        let (hours, minutes) = (minutes / 60, minutes % 60);
        if minutes == 0 {
            write!(f, "{hours}h")
        } else {
            write!(f, "{hours}h {minutes}m")
        }
    }
}

/// Writes `value / unit` with up to two decimals, trailing zeros dropped, rounded half up.
fn write_decimal(f: &mut fmt::Formatter<'_>, value: u64, unit: u64, suffix: &str) -> fmt::Result {
    let hundredths = (value * 100 + unit / 2) / unit;
    let (whole, frac) = (hundredths / 100, hundredths % 100);
    match frac {
        0 => write!(f, "{whole}{suffix}"),
        f2 if f2 % 10 == 0 => write!(f, "{whole}.{}{suffix}", f2 / 10),
        f2 => write!(f, "{whole}.{f2:02}{suffix}"),
    }
}

impl fmt::Display for SimTime {
    /// An instant as the offset from the run's start, e.g. `+1.25s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}", Duration(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturating_mul_is_u64_saturating_mul() {
        let values = [
            0,
            1,
            2,
            999,
            1_000,
            1_000_000,
            u64::MAX / 1_000,
            u64::MAX / 1_000 + 1,
            u64::MAX,
        ];
        for a in values {
            for b in values {
                assert_eq!(saturating_mul(a, b), a.saturating_mul(b), "{a} * {b}");
            }
        }
    }

    fn check_parse(input: &str, expected_us: u64) {
        assert_eq!(Duration::parse(input), Ok(Duration(expected_us)), "{input}");
    }

    fn check_display(us: u64, expected: &str) {
        assert_eq!(Duration(us).to_string(), expected, "{us}µs");
    }

    #[test]
    fn parses_the_forms_jaeger_takes() {
        check_parse("300ms", 300_000);
        check_parse("1.2s", 1_200_000);
        check_parse("250us", 250);
        check_parse("250µs", 250);
        check_parse(" 2 m ", 120_000_000);
        check_parse("1h", 3_600_000_000);
        check_parse(".5ms", 500);
        check_parse("0.0015ms", 2); // 1.5µs rounds half up
        check_parse("0s", 0);
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        assert_eq!(Duration::parse(""), Err(DurationError::Empty));
        assert_eq!(
            Duration::parse("300"),
            Err(DurationError::MissingUnit("300".into()))
        );
        assert_eq!(
            Duration::parse("3x"),
            Err(DurationError::UnknownUnit("x".into()))
        );
        assert_eq!(
            Duration::parse("1.2.3s"),
            Err(DurationError::BadNumber("1.2.3".into()))
        );
        assert_eq!(
            Duration::parse("ms"),
            Err(DurationError::BadNumber("".into()))
        );
        assert!(matches!(
            Duration::parse("99999999999999999999h"),
            Err(DurationError::BadNumber(_) | DurationError::TooLong(_))
        ));
        assert!(matches!(
            Duration::parse("9999999999999h"),
            Err(DurationError::TooLong(_))
        ));
    }

    #[test]
    fn displays_like_a_trace_viewer() {
        check_display(0, "0µs");
        check_display(850, "850µs");
        check_display(1_000, "1ms");
        check_display(12_345, "12.35ms");
        check_display(12_300, "12.3ms");
        check_display(999_999, "1s");
        check_display(59_999_999, "1m");
        check_display(1_200_000, "1.2s");
        check_display(60_000_000, "1m");
        check_display(125_000_000, "2m 5s");
        check_display(7_200_000_000, "2h");
        check_display(7_260_000_000, "2h 1m");
    }

    #[test]
    fn displayed_durations_parse_back_close() {
        for us in [1u64, 999, 1_000, 45_678, 999_999, 1_234_567, 59_990_000] {
            let shown = Duration(us).to_string();
            let back = Duration::parse(&shown).expect(&shown).0;
            let tolerance = us / 100 + 1; // two decimals: within 1%
            assert!(back.abs_diff(us) <= tolerance, "{us} -> {shown} -> {back}");
        }
    }

    #[test]
    fn clock_times_parse_as_the_lab_prints_them_or_as_durations() {
        let at = |text: &str| SimTime::parse_clock(text);
        assert_eq!(at("1:05"), Ok(SimTime::from_ms(65_000)));
        assert_eq!(at(" 0:07.25 "), Ok(SimTime::from_ms(7_250)));
        assert_eq!(at("2:00.001"), Ok(SimTime::from_ms(120_001)));
        assert_eq!(at("12:3"), Ok(SimTime::from_ms(723_000)));
        assert_eq!(at("65s"), Ok(SimTime::from_ms(65_000)));
        assert_eq!(at("1.5m"), Ok(SimTime::from_ms(90_000)));
        assert_eq!(at(""), Err(ClockError::Empty));
        assert_eq!(at("65"), Err(ClockError::MissingUnit("65".into())));
        assert_eq!(at("1:75"), Err(ClockError::SecondsOver("1:75".into())));
        for bad in [
            "1:", ":05", "1:05:00", "a:05", "1:5x", "1:005", "1:05.", "-1:05",
        ] {
            assert_eq!(at(bad), Err(ClockError::BadClock(bad.into())), "{bad}");
        }
        assert_eq!(
            at("3x"),
            Err(ClockError::Duration(DurationError::UnknownUnit("x".into())))
        );
        assert!(at("65").unwrap_err().to_string().contains("write 65s"));
    }

    #[test]
    fn time_saturates_instead_of_wrapping() {
        assert_eq!(SimTime(u64::MAX).after(Duration(5)), SimTime(u64::MAX));
        assert_eq!(SimTime(3).since(SimTime(10)), Duration::ZERO);
        assert_eq!(SimTime::from_ms(1_250).to_string(), "+1.25s");
    }
}

/// The wall-clock instant a run starts at: 2026-01-01T00:00:00Z, in microseconds since the Unix
/// epoch. Fixed, so exported timestamps are the same on every machine and every day.
pub const RUN_EPOCH_UNIX_US: u64 = 1_767_225_600_000_000;

impl SimTime {
    /// Microseconds since the Unix epoch, for export formats.
    pub fn unix_us(self) -> u64 {
        RUN_EPOCH_UNIX_US.saturating_add(self.0)
    }
}

/// Formats microseconds since the Unix epoch as RFC 3339 with microseconds, in UTC (`Z`) or at
/// a fixed offset from it (`+02:00`), the way a node logging in local time would.
pub fn rfc3339(unix_us: u64, offset_minutes: i32) -> String {
    let shifted = unix_us as i128 + i128::from(offset_minutes) * 60_000_000;
    let shifted = shifted.max(0) as u64;
    let micros = shifted % 1_000_000;
    let secs = shifted / 1_000_000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    let zone = if offset_minutes == 0 {
        "Z".to_string()
    } else {
        let sign = if offset_minutes < 0 { '-' } else { '+' };
        let m = offset_minutes.unsigned_abs();
        format!("{sign}{:02}:{:02}", m / 60, m % 60)
    };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}{zone}",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod wall_clock_tests {
    use super::*;

    #[test]
    fn formats_rfc3339_in_utc_and_at_an_offset() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(RUN_EPOCH_UNIX_US, 0), "2026-01-01T00:00:00.000000Z");
        assert_eq!(SimTime(1_234_567).unix_us(), RUN_EPOCH_UNIX_US + 1_234_567);
        assert_eq!(
            rfc3339(RUN_EPOCH_UNIX_US + 1_234_567, 0),
            "2026-01-01T00:00:01.234567Z"
        );
        assert_eq!(
            rfc3339(RUN_EPOCH_UNIX_US, 120),
            "2026-01-01T02:00:00.000000+02:00"
        );
        assert_eq!(
            rfc3339(RUN_EPOCH_UNIX_US, -330),
            "2025-12-31T18:30:00.000000-05:30"
        );
        // 2024 is a leap year: day 60 of it is 29 February.
        assert_eq!(
            rfc3339(1_709_164_800_000_000, 0),
            "2024-02-29T00:00:00.000000Z"
        );
    }
}
