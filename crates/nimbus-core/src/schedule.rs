//! EventBridge schedule expressions (`AWS::Events::Rule.ScheduleExpression`, SAM `Schedule`
//! events): parse once, then ask for the next fire time. Time is passed in as epoch
//! milliseconds, UTC; nothing here reads a clock.
//!
//! The rules follow the EventBridge user guide ("Rate expressions reference", "Cron expressions
//! reference") and, where the guide is silent, Quartz's `CronExpression`, whose syntax the guide
//! reproduces:
//!
//! - `rate(value unit)`: `value` is a positive integer; `unit` is `minute`, `hour` or `day` when
//!   the value is 1 and `minutes`, `hours` or `days` when it is larger (`rate(1 minutes)` and
//!   `rate(5 minute)` are rejected). A rate fires at `anchor + k * period` for k = 1, 2, ..,
//!   where the anchor is when the rule was created: the guide says a rate starts when the rule
//!   is created, so its first run comes one period later.
//! - `cron(Minutes Hours Day-of-month Month Day-of-week Year)`: exactly six fields, UTC, firing
//!   at second 0 of every matching minute. Ranges: minutes 0-59, hours 0-23, day-of-month 1-31,
//!   month 1-12 or `JAN`-`DEC`, day-of-week 1-7 or `SUN`-`SAT` (`SUN` = 1), year 1970-2199.
//! - Every field takes lists (`,`), ranges (`-`), `*` and increments (`/`): `a/n` is a, a+n, ..
//!   up to the field's maximum, `*/n` starts at the minimum, `a-b/n` stops at b. The step runs
//!   from 1 to the field's maximum (59, 23, 31, 12, 7; 229 for years), as in Quartz.
//! - Quartz lets a range wrap around (`FRI-MON`, hours `22-2`), and so do we in every field but
//!   the year, where a range that runs backwards is an error.
//! - Exactly one of day-of-month and day-of-week is `?`; `?` is never part of a list and is
//!   refused in the other fields.
//! - Day-of-month also takes, each as the whole field: `L` (the month's last day), `nW` (the
//!   weekday, Monday to Friday, nearest day n without leaving the month: a Saturday 1st moves to
//!   Monday the 3rd, a Sunday on the month's last day moves back to Friday) and `LW` (the
//!   month's last weekday). A month shorter than n has no `nW` day.
//! - Day-of-week also takes, each as the whole field: `L` (Saturday, the week's last day), `nL`
//!   (the month's last day n, `6L` the last Friday) and `n#k` (the k-th day n of the month, k
//!   from 1 to 5; `3#2` the second Tuesday). A month without a fifth such day has no `n#5` day.
//! - Month and day names, `L` and `W` are case-insensitive, as Quartz upper-cases expressions;
//!   the words `rate`, `cron` and the rate units are taken in lower case, as the guide writes
//!   them. Fields are separated by any run of white space.
//!
//! Not modelled: Quartz's `L-n` (n days before the month's end) and day-of-week `L` inside a
//! list, which the guide does not list. A cron expression that can never fire (`cron(0 0 31 2
//! ? *)`) parses, as in Quartz, and simply has no next fire time.

use std::str::FromStr;
use time::{Date, Month};

const MINUTE_MS: i64 = 60_000;
const MINUTES_PER_DAY: i64 = 24 * 60;
/// The Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;
const FIRST_YEAR: i32 = 1970;
const LAST_YEAR: i32 = 2199;

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Why a schedule expression was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Neither `rate(...)` nor `cron(...)`.
    #[error("schedule expression {0:?} is neither rate(value unit) nor cron(fields)")]
    Unrecognized(String),
    /// A malformed `rate(...)`.
    #[error("rate expression: {0}")]
    Rate(String),
    /// A `cron(...)` without exactly six fields.
    #[error(
        "cron expression has {0} fields; it needs 6 \
         (minutes hours day-of-month month day-of-week year)"
    )]
    FieldCount(usize),
    /// One cron field is malformed.
    #[error("cron field {} ({}): {reason}", .field.number(), .field.name())]
    Field { field: CronField, reason: String },
    /// The day-of-month and day-of-week fields do not leave exactly one of them `?`.
    #[error("cron day-of-month and day-of-week: {0}")]
    DayFields(&'static str),
}

impl ScheduleError {
    /// The cron field at fault, when one is.
    pub fn field(&self) -> Option<CronField> {
        match self {
            ScheduleError::Field { field, .. } => Some(*field),
            _ => None,
        }
    }
}

/// The six fields of a cron expression, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CronField {
    Minutes,
    Hours,
    DayOfMonth,
    Month,
    DayOfWeek,
    Year,
}

impl CronField {
    const ALL: [CronField; 6] = [
        CronField::Minutes,
        CronField::Hours,
        CronField::DayOfMonth,
        CronField::Month,
        CronField::DayOfWeek,
        CronField::Year,
    ];

    /// The field's position in the expression, from 1.
    pub fn number(self) -> usize {
        self as usize + 1
    }

    /// The field's name as the user guide writes it, lower-cased.
    pub fn name(self) -> &'static str {
        match self {
            CronField::Minutes => "minutes",
            CronField::Hours => "hours",
            CronField::DayOfMonth => "day-of-month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day-of-week",
            CronField::Year => "year",
        }
    }

    fn min(self) -> u32 {
        match self {
            CronField::Minutes | CronField::Hours => 0,
            CronField::DayOfMonth | CronField::Month | CronField::DayOfWeek => 1,
            CronField::Year => FIRST_YEAR as u32,
        }
    }

    fn max(self) -> u32 {
        match self {
            CronField::Minutes => 59,
            CronField::Hours => 23,
            CronField::DayOfMonth => 31,
            CronField::Month => 12,
            CronField::DayOfWeek => 7,
            CronField::Year => LAST_YEAR as u32,
        }
    }

    fn max_step(self) -> u32 {
        match self {
            CronField::Year => self.max() - self.min(),
            _ => self.max(),
        }
    }

    fn names(self) -> Option<(&'static [&'static str], &'static str)> {
        match self {
            CronField::Month => Some((&MONTH_NAMES, "a month name (JAN-DEC)")),
            CronField::DayOfWeek => Some((&DAY_NAMES, "a day name (SUN-SAT)")),
            _ => None,
        }
    }

    fn error(self, reason: impl Into<String>) -> ScheduleError {
        ScheduleError::Field {
            field: self,
            reason: reason.into(),
        }
    }
}

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// `rate(value unit)`, as a period.
    Rate {
        every_ms: u64,
    },
    Cron(Cron),
}

impl Schedule {
    /// Parses `rate(value unit)` or `cron(fields)`. Surrounding white space is ignored.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let trimmed = text.trim();
        if let Some(inner) = enclosed(trimmed, "rate(") {
            parse_rate(inner).map(|every_ms| Schedule::Rate { every_ms })
        } else if let Some(inner) = enclosed(trimmed, "cron(") {
            Cron::parse_fields(inner).map(Schedule::Cron)
        } else {
            Err(ScheduleError::Unrecognized(text.to_string()))
        }
    }

    /// The first fire time strictly after `after_ms`, in epoch milliseconds (UTC). `anchor_ms`
    /// is when the rule was created or started; only rates use it. `None` when the schedule
    /// never fires again (a cron expression whose years are all past, a time beyond what `i64`
    /// milliseconds hold, or a hand-built `Rate` of 0 ms).
    pub fn next_after(&self, after_ms: i64, anchor_ms: i64) -> Option<i64> {
        match self {
            Schedule::Rate { every_ms: 0 } => None,
            Schedule::Rate { every_ms } => {
                let every = i128::from(*every_ms);
                let (after, anchor) = (i128::from(after_ms), i128::from(anchor_ms));
                // The anchor itself is not a fire time: the first run is one period in.
                let periods = if after < anchor {
                    1
                } else {
                    (after - anchor) / every + 1
                };
                i64::try_from(anchor + periods * every).ok()
            }
            Schedule::Cron(cron) => cron.next_after(after_ms),
        }
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Schedule, ScheduleError> {
        Schedule::parse(text)
    }
}

/// `text` without `prefix` and a closing parenthesis, when it has both.
fn enclosed<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.strip_prefix(prefix)?.strip_suffix(')')
}

fn parse_rate(inner: &str) -> Result<u64, ScheduleError> {
    let err = ScheduleError::Rate;
    let parts: Vec<&str> = inner.split_whitespace().collect();
    let [value, unit] = parts[..] else {
        return Err(err(format!(
            "expected rate(value unit), found {} part(s) in {inner:?}",
            parts.len()
        )));
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(format!("value {value:?} is not a positive integer")));
    }
    let value: u64 = value
        .parse()
        .map_err(|_| err(format!("value {value} is too large")))?;
    if value == 0 {
        return Err(err("value must be positive, found 0".to_string()));
    }
    let (singular, unit_ms) = match unit {
        "minute" | "minutes" => ("minute", MINUTE_MS as u64),
        "hour" | "hours" => ("hour", 60 * MINUTE_MS as u64),
        "day" | "days" => ("day", MINUTES_PER_DAY as u64 * MINUTE_MS as u64),
        _ => {
            return Err(err(format!(
                "unit {unit:?} is not minute(s), hour(s) or day(s)"
            )))
        }
    };
    if value == 1 && unit != singular {
        return Err(err(format!(
            "a value of 1 takes the unit {singular}, not {unit}"
        )));
    }
    if value > 1 && unit == singular {
        return Err(err(format!(
            "a value above 1 takes the unit {singular}s, not {unit}"
        )));
    }
    value
        .checked_mul(unit_ms)
        .ok_or_else(|| err(format!("{value} {unit} is too long a period")))
}

/// A parsed cron expression: sets of matching values, one bit per value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    /// Bit m for minute m.
    minutes: u64,
    /// Bit h for hour h.
    hours: u32,
    days: DayRule,
    /// Bit m for month m (1-12).
    months: u16,
    /// Bit y - 1970 for year y.
    years: [u64; 4],
}

/// Which days of a month match: the one day field that is not `?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayRule {
    /// Bit d for day-of-month d.
    Dates(u32),
    /// `L` in day-of-month.
    LastDay,
    /// `LW`.
    LastWorkday,
    /// `nW`.
    NearestWorkday(u8),
    /// Bit w for day-of-week w (1 = Sunday).
    Weekdays(u8),
    /// `nL` in day-of-week.
    LastOf(u8),
    /// `n#k`.
    NthOf { weekday: u8, nth: u8 },
}

impl Cron {
    /// Parses the six space-separated fields inside `cron(...)`.
    fn parse_fields(inner: &str) -> Result<Cron, ScheduleError> {
        let fields: Vec<&str> = inner.split_whitespace().collect();
        let [minutes, hours, dom, month, dow, year] = fields[..] else {
            return Err(ScheduleError::FieldCount(fields.len()));
        };
        let upper: Vec<String> = [minutes, hours, dom, month, dow, year]
            .iter()
            .map(|f| f.to_ascii_uppercase())
            .collect();
        for (field, text) in CronField::ALL.into_iter().zip(&upper) {
            let is_day = matches!(field, CronField::DayOfMonth | CronField::DayOfWeek);
            if text.contains('?') && !(is_day && text == "?") {
                return Err(field
                    .error("? must be the whole field, and only in day-of-month or day-of-week"));
            }
            if text.contains('#') && field != CronField::DayOfWeek {
                return Err(field.error("# is allowed only in day-of-week"));
            }
        }
        let days = match (upper[2].as_str(), upper[4].as_str()) {
            ("?", "?") => {
                return Err(ScheduleError::DayFields(
                    "only one of them may be ?; the other picks the days",
                ))
            }
            (dom, "?") => parse_day_of_month(dom)?,
            ("?", dow) => parse_day_of_week(dow)?,
            _ => {
                return Err(ScheduleError::DayFields(
                    "they can't both be specified; one of them must be ?",
                ))
            }
        };
        let mut years = [0u64; 4];
        for offset in parse_list(CronField::Year, &upper[5])?.ones() {
            years[offset / 64] |= 1 << (offset % 64);
        }
        Ok(Cron {
            minutes: parse_list(CronField::Minutes, &upper[0])?.low_bits(0),
            hours: parse_list(CronField::Hours, &upper[1])?.low_bits(0) as u32,
            days,
            months: parse_list(CronField::Month, &upper[3])?.low_bits(1) as u16,
            years,
        })
    }

    /// The first fire time strictly after `after_ms` (epoch milliseconds, UTC), or `None` when
    /// there is none up to the end of 2199.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        // Fires happen on whole minutes, so the first candidate is the minute after the one
        // holding `after_ms`; years before 1970 never match, so start no earlier.
        let first_minute = (after_ms.div_euclid(MINUTE_MS) + 1).max(0);
        let first_day = first_minute.div_euclid(MINUTES_PER_DAY);
        let first_time = first_minute.rem_euclid(MINUTES_PER_DAY) as u32;
        let julian = i32::try_from(first_day + UNIX_EPOCH_JULIAN_DAY).ok()?;
        let start = Date::from_julian_day(julian).ok()?;
        let (start_year, start_month, start_dom) = (start.year(), start.month() as u8, start.day());

        // Walk matching years, then months, then the month's matching days, so the search
        // costs at most a few thousand month visits however far the next fire is.
        for year in start_year..=LAST_YEAR {
            if !self.has_year(year) {
                continue;
            }
            let first_month = if year == start_year { start_month } else { 1 };
            for month in first_month..=12 {
                if self.months & (1 << month) == 0 {
                    continue;
                }
                let month = Month::try_from(month).ok()?;
                let in_start_month = year == start_year && month == start.month();
                let from_dom = if in_start_month { start_dom } else { 1 };
                let mut days = self.days.mask(year, month) & (u32::MAX << from_dom);
                while days != 0 {
                    let dom = days.trailing_zeros() as u8;
                    days &= days - 1;
                    let from_time = if in_start_month && dom == start_dom {
                        first_time
                    } else {
                        0
                    };
                    if let Some(time) = self.first_time_from(from_time) {
                        let date = Date::from_calendar_date(year, month, dom).ok()?;
                        let day = i64::from(date.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY;
                        return Some((day * MINUTES_PER_DAY + i64::from(time)) * MINUTE_MS);
                    }
                }
            }
        }
        None
    }

    fn has_year(&self, year: i32) -> bool {
        let Ok(offset) = usize::try_from(year - FIRST_YEAR) else {
            return false;
        };
        offset < 256 && self.years[offset / 64] & (1 << (offset % 64)) != 0
    }

    /// The first matching minute of the day (minutes since midnight) at or after `from`.
    fn first_time_from(&self, from: u32) -> Option<u32> {
        let (from_hour, from_minute) = (from / 60, from % 60);
        (from_hour..24)
            .filter(|hour| self.hours & (1 << hour) != 0)
            .find_map(|hour| {
                let skip = if hour == from_hour { from_minute } else { 0 };
                let minutes = self.minutes & (u64::MAX << skip);
                (minutes != 0).then(|| hour * 60 + minutes.trailing_zeros())
            })
    }
}

impl DayRule {
    /// The matching days of one month: bit d for day d.
    fn mask(self, year: i32, month: Month) -> u32 {
        let len = month.length(year);
        let first_weekday = Date::from_calendar_date(year, month, 1)
            .map(|d| d.weekday().number_from_sunday())
            .unwrap_or(1);
        // Day-of-week, 1 = Sunday, of day d of this month.
        let weekday = |d: u8| (first_weekday - 1 + (d - 1) % 7) % 7 + 1;
        let all_days = (u32::MAX >> (31 - u32::from(len))) & !1;
        match self {
            DayRule::Dates(dates) => dates & all_days,
            DayRule::LastDay => 1 << len,
            DayRule::LastWorkday => {
                let day = match weekday(len) {
                    7 => len - 1,
                    1 => len - 2,
                    _ => len,
                };
                1 << day
            }
            DayRule::NearestWorkday(n) if n > len => 0,
            DayRule::NearestWorkday(n) => {
                // The nearest weekday stays in the month: Saturday the 1st moves forward to
                // Monday, Sunday the last moves back to Friday.
                let day = match weekday(n) {
                    7 if n == 1 => 3,
                    7 => n - 1,
                    1 if n == len => n - 2,
                    1 => n + 1,
                    _ => n,
                };
                1 << day
            }
            DayRule::Weekdays(weekdays) => (1..=len)
                .filter(|&d| weekdays & (1 << weekday(d)) != 0)
                .fold(0, |mask, d| mask | 1 << d),
            DayRule::LastOf(target) => {
                let back = (weekday(len) + 7 - target) % 7;
                1 << (len - back)
            }
            DayRule::NthOf {
                weekday: target,
                nth,
            } => {
                let first = 1 + (target + 7 - first_weekday) % 7;
                let day = first + 7 * (nth - 1);
                if day <= len {
                    1 << day
                } else {
                    0
                }
            }
        }
    }
}

fn parse_day_of_month(text: &str) -> Result<DayRule, ScheduleError> {
    let field = CronField::DayOfMonth;
    match text {
        "L" => Ok(DayRule::LastDay),
        "LW" => Ok(DayRule::LastWorkday),
        _ if text.len() > 1 && text.ends_with('W') => {
            let day = value(field, &text[..text.len() - 1])?;
            Ok(DayRule::NearestWorkday(day as u8))
        }
        _ if text.contains(['L', 'W']) => Err(field.error(format!(
            "{text}: L and W must be the whole field (L, LW or nW)"
        ))),
        _ => Ok(DayRule::Dates(parse_list(field, text)?.low_bits(1) as u32)),
    }
}

fn parse_day_of_week(text: &str) -> Result<DayRule, ScheduleError> {
    let field = CronField::DayOfWeek;
    if text == "L" {
        return Ok(DayRule::Weekdays(1 << 7));
    }
    if let Some((day, nth)) = text.split_once('#') {
        if text.contains(',') {
            return Err(field.error(format!(
                "{text}: with # the field holds a single expression"
            )));
        }
        let weekday = value(field, day)? as u8;
        let nth = match nth {
            "1" | "2" | "3" | "4" | "5" => nth.as_bytes()[0] - b'0',
            _ => return Err(field.error(format!("{text}: # must be followed by 1 to 5"))),
        };
        return Ok(DayRule::NthOf { weekday, nth });
    }
    // No day name contains L, so a trailing L is always the last-of-month form.
    if let Some(day) = text.strip_suffix('L') {
        return Ok(DayRule::LastOf(value(field, day)? as u8));
    }
    if text.contains('L') {
        return Err(field.error(format!("{text}: L must be the whole field (L or nL)")));
    }
    Ok(DayRule::Weekdays(parse_list(field, text)?.low_bits(1) as u8))
}

/// The values of a field, as offsets from the field's minimum.
#[derive(Default)]
struct Offsets([u64; 4]);

impl Offsets {
    fn insert(&mut self, offset: u32) {
        self.0[offset as usize / 64] |= 1 << (offset % 64);
    }

    fn ones(&self) -> impl Iterator<Item = usize> + '_ {
        (0..256).filter(|&i| self.0[i / 64] & (1 << (i % 64)) != 0)
    }

    /// The set indexed by value rather than offset, for fields whose values fit in 64 bits.
    fn low_bits(&self, min: u32) -> u64 {
        self.0[0] << min
    }
}

/// A list of `*`, values, ranges and increments.
fn parse_list(field: CronField, text: &str) -> Result<Offsets, ScheduleError> {
    let (min, max) = (field.min(), field.max());
    let span = max - min + 1;
    let mut set = Offsets::default();
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(parse_step(field, step)?)),
            None => (item, None),
        };
        let (low, high) = if range == "*" {
            (min, max)
        } else if let Some((low, high)) = range.split_once('-') {
            (value(field, low)?, value(field, high)?)
        } else {
            let low = value(field, range)?;
            // `a/n` runs from a to the end of the field's range.
            (low, if step.is_some() { max } else { low })
        };
        if field == CronField::Year && low > high {
            return Err(field.error(format!("range {range} runs backwards")));
        }
        let distance = (high + span - low) % span;
        let step = step.unwrap_or(1);
        let mut k = 0;
        while k <= distance {
            set.insert((low - min + k) % span);
            k += step;
        }
    }
    Ok(set)
}

fn parse_step(field: CronField, text: &str) -> Result<u32, ScheduleError> {
    let max = field.max_step();
    match text.parse::<u32>() {
        Ok(step) if (1..=max).contains(&step) && text.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(step)
        }
        _ => Err(field.error(format!(
            "step {text:?} is not a whole number from 1 to {max}"
        ))),
    }
}

/// One value: digits, or a name in the month and day-of-week fields.
fn value(field: CronField, text: &str) -> Result<u32, ScheduleError> {
    let (min, max) = (field.min(), field.max());
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(field.error(format!("{text} is out of range {min}-{max}"))),
        };
    }
    match field.names() {
        Some((names, what)) => names
            .iter()
            .position(|name| *name == text)
            .map(|i| i as u32 + 1)
            .ok_or_else(|| field.error(format!("{text:?} is neither a number nor {what}"))),
        None => Err(field.error(format!("{text:?} is not a number"))),
    }
}
