//! EventBridge schedule expressions: the rate and cron rules and examples of the user guide,
//! next fire times checked against dates worked out by hand from a 2026 calendar, and the
//! expressions EventBridge rejects.

use nimbus_core::schedule::{CronField, Schedule, ScheduleError};
use time::macros::datetime;
use time::OffsetDateTime;

fn ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

fn parse(text: &str) -> Schedule {
    Schedule::parse(text).unwrap_or_else(|e| panic!("{text} should parse: {e}"))
}

fn error(text: &str) -> ScheduleError {
    match Schedule::parse(text) {
        Ok(s) => panic!("{text} should be rejected, parsed as {s:?}"),
        Err(e) => e,
    }
}

/// The cron fire times after `after`, `count` of them.
fn fires(text: &str, after: OffsetDateTime, count: usize) -> Vec<OffsetDateTime> {
    let schedule = parse(text);
    let mut at = ms(after);
    let mut out = Vec::new();
    for _ in 0..count {
        at = schedule
            .next_after(at, 0)
            .unwrap_or_else(|| panic!("{text} should fire after {at}"));
        out.push(OffsetDateTime::from_unix_timestamp(at / 1000).unwrap());
    }
    out
}

fn next(text: &str, after: OffsetDateTime) -> Option<OffsetDateTime> {
    parse(text)
        .next_after(ms(after), 0)
        .map(|at| OffsetDateTime::from_unix_timestamp(at / 1000).unwrap())
}

// --- rate ---

#[test]
fn rate_takes_the_singular_unit_for_one_and_the_plural_above_one() {
    let cases = [
        ("rate(1 minute)", 60_000),
        ("rate(5 minutes)", 300_000),
        ("rate(1 hour)", 3_600_000),
        ("rate(2 hours)", 7_200_000),
        ("rate(1 day)", 86_400_000),
        ("rate(7 days)", 604_800_000),
        ("  rate(10 minutes) ", 600_000),
    ];
    for (text, every_ms) in cases {
        assert_eq!(parse(text), Schedule::Rate { every_ms }, "{text}");
    }
}

#[test]
fn rate_rejects_a_unit_that_disagrees_in_number_with_the_value() {
    for text in [
        "rate(1 minutes)",
        "rate(5 minute)",
        "rate(1 hours)",
        "rate(5 hour)",
        "rate(1 days)",
        "rate(2 day)",
    ] {
        assert!(matches!(error(text), ScheduleError::Rate(_)), "{text}");
    }
    assert_eq!(
        error("rate(1 minutes)").to_string(),
        "rate expression: a value of 1 takes the unit minute, not minutes"
    );
}

#[test]
fn rate_rejects_values_that_are_not_positive_integers_and_unknown_units() {
    for text in [
        "rate(0 minutes)",
        "rate(-5 minutes)",
        "rate(1.5 hours)",
        "rate(five minutes)",
        "rate(5 seconds)",
        "rate(2 weeks)",
        "rate(5 Minutes)",
        "rate(5)",
        "rate(minutes 5)",
        "rate(5 minutes now)",
        "rate()",
        "rate(99999999999999999999 days)",
        "rate(999999999999999 days)",
    ] {
        assert!(matches!(error(text), ScheduleError::Rate(_)), "{text}");
    }
}

#[test]
fn rate_fires_one_period_after_the_anchor_and_every_period_after_that() {
    let rate = parse("rate(5 minutes)");
    let anchor = ms(datetime!(2026-03-04 09:58:17.250 UTC));
    let period = 300_000;
    assert_eq!(rate.next_after(anchor, anchor), Some(anchor + period));
    assert_eq!(
        rate.next_after(anchor - 86_400_000, anchor),
        Some(anchor + period)
    );
    assert_eq!(
        rate.next_after(anchor + period - 1, anchor),
        Some(anchor + period)
    );
    assert_eq!(
        rate.next_after(anchor + period, anchor),
        Some(anchor + 2 * period)
    );
    assert_eq!(
        rate.next_after(anchor + 1000 * period + 7, anchor),
        Some(anchor + 1001 * period)
    );
}

#[test]
fn rate_beyond_the_millisecond_range_has_no_next_time() {
    let rate = parse("rate(1 day)");
    assert_eq!(rate.next_after(i64::MAX - 5, 0), None);
    assert_eq!(Schedule::Rate { every_ms: 0 }.next_after(0, 0), None);
}

// --- expression shape ---

#[test]
fn expressions_that_are_neither_rate_nor_cron_are_rejected() {
    for text in [
        "",
        "every 5 minutes",
        "rate 5 minutes",
        "rate(5 minutes",
        "cron(0 10 * * ? *",
        "Cron(0 10 * * ? *)",
        "cron (0 10 * * ? *)",
        "at(2026-03-04T10:00:00)",
    ] {
        assert!(
            matches!(error(text), ScheduleError::Unrecognized(_)),
            "{text}"
        );
    }
}

#[test]
fn schedules_parse_through_from_str_too() {
    let parsed: Schedule = "rate(1 hour)".parse().unwrap();
    assert_eq!(
        parsed,
        Schedule::Rate {
            every_ms: 3_600_000
        }
    );
    assert!("cron(0 10 * *)".parse::<Schedule>().is_err());
}

// --- cron: the user guide's examples ---

#[test]
fn the_user_guides_cron_examples_parse() {
    for text in [
        "cron(0 10 * * ? *)",
        "cron(15 12 * * ? *)",
        "cron(0 18 ? * MON-FRI *)",
        "cron(0 8 1 * ? *)",
        "cron(0/15 * * * ? *)",
        "cron(0/10 * ? * MON-FRI *)",
        "cron(0/5 8-17 ? * MON-FRI *)",
        "cron(0 9 ? * 2#1 *)",
        "cron(0 20 * * ? *)",
        "cron(1/10 * * * ? *)",
        "cron(0 0 3W * ? *)",
    ] {
        assert!(matches!(parse(text), Schedule::Cron(_)), "{text}");
    }
}

#[test]
fn every_day_at_ten_fires_today_until_ten_and_tomorrow_from_ten() {
    let text = "cron(0 10 * * ? *)";
    assert_eq!(
        next(text, datetime!(2026-03-04 09:59:30 UTC)),
        Some(datetime!(2026-03-04 10:00 UTC))
    );
    assert_eq!(
        next(text, datetime!(2026-03-04 10:00 UTC)),
        Some(datetime!(2026-03-05 10:00 UTC))
    );
    // February 2026 has 28 days.
    assert_eq!(
        next(text, datetime!(2026-02-28 10:00 UTC)),
        Some(datetime!(2026-03-01 10:00 UTC))
    );
}

#[test]
fn every_day_at_twelve_fifteen_crosses_the_year_end() {
    assert_eq!(
        fires(
            "cron(15 12 * * ? *)",
            datetime!(2026-12-31 12:14:59.999 UTC),
            2
        ),
        [
            datetime!(2026-12-31 12:15 UTC),
            datetime!(2027-01-01 12:15 UTC)
        ]
    );
}

#[test]
fn weekdays_at_six_pm_skip_the_weekend() {
    // 2026-03-06 is a Friday.
    assert_eq!(
        fires(
            "cron(0 18 ? * MON-FRI *)",
            datetime!(2026-03-06 17:00 UTC),
            3
        ),
        [
            datetime!(2026-03-06 18:00 UTC),
            datetime!(2026-03-09 18:00 UTC),
            datetime!(2026-03-10 18:00 UTC)
        ]
    );
}

#[test]
fn the_first_of_every_month_at_eight() {
    assert_eq!(
        fires("cron(0 8 1 * ? *)", datetime!(2026-01-01 08:00 UTC), 3),
        [
            datetime!(2026-02-01 08:00 UTC),
            datetime!(2026-03-01 08:00 UTC),
            datetime!(2026-04-01 08:00 UTC)
        ]
    );
}

#[test]
fn every_fifteen_minutes_rolls_into_the_next_hour_day_and_year() {
    let text = "cron(0/15 * * * ? *)";
    assert_eq!(
        next(text, datetime!(2026-03-04 10:07 UTC)),
        Some(datetime!(2026-03-04 10:15 UTC))
    );
    assert_eq!(
        fires(text, datetime!(2026-12-31 23:30 UTC), 3),
        [
            datetime!(2026-12-31 23:45 UTC),
            datetime!(2027-01-01 00:00 UTC),
            datetime!(2027-01-01 00:15 UTC)
        ]
    );
}

#[test]
fn every_ten_minutes_on_weekdays_resumes_on_monday() {
    assert_eq!(
        fires(
            "cron(0/10 * ? * MON-FRI *)",
            datetime!(2026-03-06 23:45 UTC),
            2
        ),
        [
            datetime!(2026-03-06 23:50 UTC),
            datetime!(2026-03-09 00:00 UTC)
        ]
    );
}

#[test]
fn every_five_minutes_in_office_hours_stops_at_five_fifty_five() {
    let text = "cron(0/5 8-17 ? * MON-FRI *)";
    assert_eq!(
        next(text, datetime!(2026-03-04 12:01 UTC)),
        Some(datetime!(2026-03-04 12:05 UTC))
    );
    assert_eq!(
        fires(text, datetime!(2026-03-06 17:50 UTC), 2),
        [
            datetime!(2026-03-06 17:55 UTC),
            datetime!(2026-03-09 08:00 UTC)
        ]
    );
}

#[test]
fn the_first_monday_of_each_month_at_nine() {
    assert_eq!(
        fires("cron(0 9 ? * 2#1 *)", datetime!(2026-01-01 00:00 UTC), 4),
        [
            datetime!(2026-01-05 09:00 UTC),
            datetime!(2026-02-02 09:00 UTC),
            datetime!(2026-03-02 09:00 UTC),
            datetime!(2026-04-06 09:00 UTC)
        ]
    );
}

// --- cron: fire times ---

#[test]
fn cron_fires_at_second_zero_strictly_after_the_given_time() {
    let text = "cron(* * * * ? *)";
    assert_eq!(
        next(text, datetime!(2026-03-04 10:00 UTC)),
        Some(datetime!(2026-03-04 10:01 UTC))
    );
    assert_eq!(
        next(text, datetime!(2026-03-04 10:00:00.001 UTC)),
        Some(datetime!(2026-03-04 10:01 UTC))
    );
    assert_eq!(
        next(text, datetime!(2026-03-04 09:59:59.999 UTC)),
        Some(datetime!(2026-03-04 10:00 UTC))
    );
}

#[test]
fn cron_ignores_the_anchor() {
    let cron = parse("cron(0 10 * * ? *)");
    let after = ms(datetime!(2026-03-04 09:00 UTC));
    assert_eq!(
        cron.next_after(after, 0),
        cron.next_after(after, after - 17)
    );
}

#[test]
fn times_before_1970_fire_first_at_the_start_of_1970() {
    let cron = parse("cron(* * * * ? *)");
    assert_eq!(cron.next_after(-1, 0), Some(0));
    assert_eq!(cron.next_after(-86_400_000 * 400, 0), Some(0));
    assert_eq!(cron.next_after(i64::MIN, 0), Some(0));
}

#[test]
fn last_day_of_month_follows_february_and_leap_years() {
    assert_eq!(
        fires("cron(0 0 L * ? *)", datetime!(2026-01-31 00:00 UTC), 3),
        [
            datetime!(2026-02-28 00:00 UTC),
            datetime!(2026-03-31 00:00 UTC),
            datetime!(2026-04-30 00:00 UTC)
        ]
    );
    assert_eq!(
        next("cron(30 23 L FEB ? *)", datetime!(2027-03-01 00:00 UTC)),
        Some(datetime!(2028-02-29 23:30 UTC))
    );
}

#[test]
fn last_weekday_of_month_steps_back_from_a_weekend() {
    // 2026: Jan 31 is a Saturday, Feb 28 a Saturday, Mar 31 a Tuesday, May 31 a Sunday.
    assert_eq!(
        fires("cron(0 12 LW * ? *)", datetime!(2026-01-01 00:00 UTC), 5),
        [
            datetime!(2026-01-30 12:00 UTC),
            datetime!(2026-02-27 12:00 UTC),
            datetime!(2026-03-31 12:00 UTC),
            datetime!(2026-04-30 12:00 UTC),
            datetime!(2026-05-29 12:00 UTC)
        ]
    );
}

#[test]
fn nearest_weekday_moves_off_weekends_without_leaving_the_month() {
    // 2026: Jan 15 is a Thursday, Feb 15 a Sunday, Aug 15 a Saturday.
    let text = "cron(0 6 15W * ? *)";
    assert_eq!(
        fires(text, datetime!(2026-01-01 00:00 UTC), 2),
        [
            datetime!(2026-01-15 06:00 UTC),
            datetime!(2026-02-16 06:00 UTC)
        ]
    );
    assert_eq!(
        next(text, datetime!(2026-08-01 00:00 UTC)),
        Some(datetime!(2026-08-14 06:00 UTC))
    );
    // Saturday 2026-08-01 moves forward to Monday the 3rd, not back into July.
    assert_eq!(
        next("cron(0 6 1W * ? *)", datetime!(2026-07-31 00:00 UTC)),
        Some(datetime!(2026-08-03 06:00 UTC))
    );
    // Sunday 2026-05-31 moves back to Friday the 29th, not into June; April has no 31st.
    assert_eq!(
        fires("cron(0 6 31W * ? *)", datetime!(2026-03-31 07:00 UTC), 2),
        [
            datetime!(2026-05-29 06:00 UTC),
            datetime!(2026-07-31 06:00 UTC)
        ]
    );
}

#[test]
fn the_nearest_weekday_may_come_before_the_named_day() {
    // 15W in August 2026 is Friday the 14th: asking after the 14th finds September's.
    assert_eq!(
        next("cron(0 6 15W * ? *)", datetime!(2026-08-14 06:00 UTC)),
        Some(datetime!(2026-09-15 06:00 UTC))
    );
}

#[test]
fn last_friday_of_the_month() {
    assert_eq!(
        fires("cron(0 17 ? * 6L *)", datetime!(2026-01-01 00:00 UTC), 3),
        [
            datetime!(2026-01-30 17:00 UTC),
            datetime!(2026-02-27 17:00 UTC),
            datetime!(2026-03-27 17:00 UTC)
        ]
    );
    assert_eq!(
        next("cron(0 17 ? * FRIL *)", datetime!(2026-07-01 00:00 UTC)),
        Some(datetime!(2026-07-31 17:00 UTC))
    );
}

#[test]
fn l_alone_in_day_of_week_is_saturday() {
    // 2026-03-04 is a Wednesday.
    assert_eq!(
        fires("cron(0 0 ? * L *)", datetime!(2026-03-04 00:00 UTC), 2),
        [
            datetime!(2026-03-07 00:00 UTC),
            datetime!(2026-03-14 00:00 UTC)
        ]
    );
}

#[test]
fn a_fifth_weekday_skips_months_that_have_only_four() {
    // Fifth Fridays of 2026: Jan 30, May 29, Jul 31, Oct 30.
    assert_eq!(
        fires("cron(0 0 ? * 6#5 *)", datetime!(2026-01-01 00:00 UTC), 4),
        [
            datetime!(2026-01-30 00:00 UTC),
            datetime!(2026-05-29 00:00 UTC),
            datetime!(2026-07-31 00:00 UTC),
            datetime!(2026-10-30 00:00 UTC)
        ]
    );
}

#[test]
fn ranges_wrap_around_the_end_of_a_field() {
    assert_eq!(
        fires("cron(0 22-1 * * ? *)", datetime!(2026-03-04 01:00 UTC), 4),
        [
            datetime!(2026-03-04 22:00 UTC),
            datetime!(2026-03-04 23:00 UTC),
            datetime!(2026-03-05 00:00 UTC),
            datetime!(2026-03-05 01:00 UTC)
        ]
    );
    // FRI-MON: Friday, Saturday, Sunday, Monday; 2026-03-03 is a Tuesday.
    assert_eq!(
        fires(
            "cron(0 0 ? * FRI-MON *)",
            datetime!(2026-03-03 00:00 UTC),
            4
        ),
        [
            datetime!(2026-03-06 00:00 UTC),
            datetime!(2026-03-07 00:00 UTC),
            datetime!(2026-03-08 00:00 UTC),
            datetime!(2026-03-09 00:00 UTC)
        ]
    );
}

#[test]
fn increments_start_at_the_given_value_and_stop_at_the_range_end() {
    assert_eq!(
        fires("cron(1/10 9 * * ? *)", datetime!(2026-03-04 09:00 UTC), 7),
        [
            datetime!(2026-03-04 09:01 UTC),
            datetime!(2026-03-04 09:11 UTC),
            datetime!(2026-03-04 09:21 UTC),
            datetime!(2026-03-04 09:31 UTC),
            datetime!(2026-03-04 09:41 UTC),
            datetime!(2026-03-04 09:51 UTC),
            datetime!(2026-03-05 09:01 UTC)
        ]
    );
    assert_eq!(
        fires(
            "cron(10-30/10 */12 * * ? *)",
            datetime!(2026-03-04 00:00 UTC),
            4
        ),
        [
            datetime!(2026-03-04 00:10 UTC),
            datetime!(2026-03-04 00:20 UTC),
            datetime!(2026-03-04 00:30 UTC),
            datetime!(2026-03-04 12:10 UTC)
        ]
    );
}

#[test]
fn lists_mix_values_ranges_and_names_in_any_case() {
    assert_eq!(
        fires(
            "cron(0 12 1,15-16 jan,Jul-aug ? *)",
            datetime!(2026-01-15 12:00 UTC),
            4
        ),
        [
            datetime!(2026-01-16 12:00 UTC),
            datetime!(2026-07-01 12:00 UTC),
            datetime!(2026-07-15 12:00 UTC),
            datetime!(2026-07-16 12:00 UTC)
        ]
    );
}

#[test]
fn the_year_field_limits_and_ends_the_schedule() {
    assert_eq!(
        next("cron(0 0 1 1 ? 2030-2032)", datetime!(2026-03-04 00:00 UTC)),
        Some(datetime!(2030-01-01 00:00 UTC))
    );
    assert_eq!(
        next("cron(0 0 1 1 ? 2030-2032)", datetime!(2032-01-01 00:00 UTC)),
        None
    );
    assert_eq!(
        next("cron(0 0 1 1 ? 2020)", datetime!(2026-03-04 00:00 UTC)),
        None
    );
    assert_eq!(
        next("cron(59 23 31 12 ? *)", datetime!(2199-12-31 23:58 UTC)),
        Some(datetime!(2199-12-31 23:59 UTC))
    );
    assert_eq!(
        next("cron(59 23 31 12 ? *)", datetime!(2199-12-31 23:59 UTC)),
        None
    );
}

#[test]
fn february_29th_skips_the_century_that_is_not_a_leap_year() {
    // 2100 is not a leap year, so after 2096 the next 29 February is in 2104.
    assert_eq!(
        next("cron(0 0 29 2 ? *)", datetime!(2096-03-01 00:00 UTC)),
        Some(datetime!(2104-02-29 00:00 UTC))
    );
}

#[test]
fn a_date_that_never_exists_has_no_next_time() {
    assert_eq!(
        next("cron(0 0 30 2 ? *)", datetime!(1970-01-01 00:00 UTC)),
        None
    );
    assert_eq!(
        next("cron(0 0 31 4,6,9,11 ? *)", datetime!(2026-01-01 00:00 UTC)),
        None
    );
}

#[test]
fn times_past_year_9999_have_no_next_time() {
    assert_eq!(parse("cron(* * * * ? *)").next_after(i64::MAX, 0), None);
}

// --- cron: rejected expressions ---

#[test]
fn cron_needs_exactly_six_fields() {
    assert_eq!(error("cron(0 10 * * ?)"), ScheduleError::FieldCount(5));
    assert_eq!(error("cron(0 0 10 * * ? *)"), ScheduleError::FieldCount(7));
    assert_eq!(error("cron()"), ScheduleError::FieldCount(0));
    assert_eq!(
        error("cron(0 10 * * ?)").to_string(),
        "cron expression has 5 fields; it needs 6 \
         (minutes hours day-of-month month day-of-week year)"
    );
}

#[test]
fn exactly_one_of_day_of_month_and_day_of_week_is_a_question_mark() {
    for text in [
        "cron(0 10 * * * *)",
        "cron(0 10 1 * MON *)",
        "cron(0 10 * * MON *)",
        "cron(0 10 L * 6L *)",
        "cron(0 10 ? * ? *)",
    ] {
        assert!(
            matches!(error(text), ScheduleError::DayFields(_)),
            "{text}: {:?}",
            error(text)
        );
    }
}

#[test]
fn out_of_range_values_name_the_field_and_its_range() {
    assert_eq!(
        error("cron(0 24 * * ? *)").to_string(),
        "cron field 2 (hours): 24 is out of range 0-23"
    );
    let cases = [
        ("cron(60 * * * ? *)", CronField::Minutes),
        ("cron(0 0 0 * ? *)", CronField::DayOfMonth),
        ("cron(0 0 32 * ? *)", CronField::DayOfMonth),
        ("cron(0 0 1 13 ? *)", CronField::Month),
        ("cron(0 0 1 0 ? *)", CronField::Month),
        ("cron(0 0 ? * 0 *)", CronField::DayOfWeek),
        ("cron(0 0 ? * 8 *)", CronField::DayOfWeek),
        ("cron(0 0 1 * ? 1969)", CronField::Year),
        ("cron(0 0 1 * ? 2200)", CronField::Year),
        ("cron(0 0 1 * ? 2030-2020)", CronField::Year),
        ("cron(0 0 32W * ? *)", CronField::DayOfMonth),
        ("cron(0 0 ? * 8L *)", CronField::DayOfWeek),
        ("cron(0 0 1-40 * ? *)", CronField::DayOfMonth),
        ("cron(99999999999 0 1 * ? *)", CronField::Minutes),
    ];
    for (text, field) in cases {
        assert_eq!(error(text).field(), Some(field), "{text}");
    }
}

#[test]
fn bad_steps_are_rejected() {
    for (text, field) in [
        ("cron(0/0 * * * ? *)", CronField::Minutes),
        ("cron(0/60 * * * ? *)", CronField::Minutes),
        ("cron(*/x * * * ? *)", CronField::Minutes),
        ("cron(5/ * * * ? *)", CronField::Minutes),
        ("cron(0 0/24 * * ? *)", CronField::Hours),
        ("cron(0 0 1 */13 ? *)", CronField::Month),
        ("cron(0 0 1 * ? 2020/0)", CronField::Year),
        ("cron(0 0 1 * ? 2020/+5)", CronField::Year),
    ] {
        assert_eq!(error(text).field(), Some(field), "{text}");
    }
}

#[test]
fn unknown_names_and_names_in_the_wrong_field_are_rejected() {
    for (text, field) in [
        ("cron(0 0 1 FOO ? *)", CronField::Month),
        ("cron(0 0 1 JANUARY ? *)", CronField::Month),
        ("cron(0 0 1 MON ? *)", CronField::Month),
        ("cron(0 0 ? * MONDAY *)", CronField::DayOfWeek),
        ("cron(0 0 ? * JAN *)", CronField::DayOfWeek),
        ("cron(MON 0 1 * ? *)", CronField::Minutes),
        ("cron(0 0 1 * ? NOW)", CronField::Year),
    ] {
        assert_eq!(error(text).field(), Some(field), "{text}");
    }
}

#[test]
fn special_characters_outside_their_fields_or_forms_are_rejected() {
    for (text, field) in [
        ("cron(? 0 1 * ? *)", CronField::Minutes),
        ("cron(0 0 1 ? ? *)", CronField::Month),
        ("cron(0 0 ?,1 * ? *)", CronField::DayOfMonth),
        ("cron(0 0 1#2 * ? *)", CronField::DayOfMonth),
        ("cron(0 0 W * ? *)", CronField::DayOfMonth),
        ("cron(0 0 L-3 * ? *)", CronField::DayOfMonth),
        ("cron(0 0 1,L * ? *)", CronField::DayOfMonth),
        ("cron(0 0 1-5W * ? *)", CronField::DayOfMonth),
        ("cron(0 0 ? * 1,L *)", CronField::DayOfWeek),
        ("cron(0 0 ? * 3#1,6#3 *)", CronField::DayOfWeek),
        ("cron(0 0 ? * 3#6 *)", CronField::DayOfWeek),
        ("cron(0 0 ? * 3#0 *)", CronField::DayOfWeek),
        ("cron(0 0 ? * #2 *)", CronField::DayOfWeek),
        ("cron(0 0 1 * ? L)", CronField::Year),
        ("cron(0,,5 0 1 * ? *)", CronField::Minutes),
        ("cron(0 -1 1 * ? *)", CronField::Hours),
    ] {
        assert_eq!(error(text).field(), Some(field), "{text}");
    }
}
