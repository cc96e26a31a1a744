//! Dates, times, timestamps and intervals.
//!
//! They cross in PostgreSQL's own units (days and microseconds since 2000-01-01), so no DateStyle
//! or IntervalStyle is involved. A value Python cannot represent exactly — `infinity`, a year outside
//! 1..9999, `24:00:00`, an interval `timedelta` cannot give back unchanged — crosses as its text
//! instead: never a nearby value.

use pgrx::pg_sys::{self, Datum, Oid};

use super::io::IoFunction;
use crate::runtime::{Node, Zoned};

const DAY_US: i64 = 86_400_000_000;
/// Days from 0000-03-01 to 2000-01-01: the calendar arithmetic below counts from a March 1st, so
/// that a leap day ends its year (H. Hinnant's `civil_from_days` and `days_from_civil`).
const MARCH_0000: i64 = 730_425;
/// Python's `date` spans years 1 to 9999: these are their first and last days after 2000-01-01.
const FIRST_DAY: i64 = -730_119;
const LAST_DAY: i64 = 2_921_939;
/// `timedelta` spans ±999,999,999 days.
const TIMEDELTA_DAYS: i128 = 999_999_999;

#[derive(Clone, Copy)]
enum Kind {
    Date,
    Time,
    TimeTz,
    Timestamp,
    TimestampTz,
    Interval,
}

/// How a date/time Datum becomes a node.
pub struct DateTimeIn {
    kind: Kind,
    output: IoFunction,
}

impl DateTimeIn {
    pub fn for_type(base: Oid) -> Option<DateTimeIn> {
        let kind = match base {
            pg_sys::DATEOID => Kind::Date,
            pg_sys::TIMEOID => Kind::Time,
            pg_sys::TIMETZOID => Kind::TimeTz,
            pg_sys::TIMESTAMPOID => Kind::Timestamp,
            pg_sys::TIMESTAMPTZOID => Kind::TimestampTz,
            pg_sys::INTERVALOID => Kind::Interval,
            _ => return None,
        };
        Some(DateTimeIn { kind, output: IoFunction::output(base) })
    }

    /// # Safety
    /// `datum` must be a valid, non-null Datum of this converter's type.
    pub unsafe fn encode(&self, datum: Datum) -> Node {
        let exact = match self.kind {
            Kind::Date => {
                let days = datum.value() as i32;
                (FIRST_DAY..=LAST_DAY).contains(&(days as i64)).then_some(Node::Date(days))
            }
            Kind::Time => {
                let time = datum.value() as i64;
                (time < DAY_US).then_some(Node::Time(time))
            }
            Kind::TimeTz => {
                let value = unsafe { &*datum.cast_mut_ptr::<pg_sys::TimeTzADT>() };
                // PostgreSQL counts zones west of UTC, Python east.
                (value.time < DAY_US)
                    .then_some(Node::Timetz(Zoned { microseconds: value.time, offset_seconds: -value.zone }))
            }
            Kind::Timestamp => {
                let timestamp = datum.value() as i64;
                in_python_range(timestamp).then_some(Node::Timestamp(timestamp))
            }
            Kind::TimestampTz => {
                let timestamp = datum.value() as i64;
                session_offset(timestamp)
                    .filter(|&offset| in_python_range(timestamp + offset as i64 * 1_000_000))
                    .map(|offset| Node::Timestamptz(Zoned { microseconds: timestamp, offset_seconds: offset }))
            }
            Kind::Interval => {
                let value = unsafe { &*datum.cast_mut_ptr::<pg_sys::Interval>() };
                timedelta_exact(value).then_some(Node::Interval(crate::runtime::Interval {
                    days: value.day,
                    microseconds: value.time,
                }))
            }
        };
        exact.unwrap_or_else(|| Node::Text(unsafe { self.text(datum) }))
    }

    /// The text of a value Python cannot hold. Dates and timestamps are written in ISO style, the
    /// instant of a timestamptz in UTC: every DateStyle reads that back (PostgreSQL's own output of a
    /// far-BC timestamptz in the Postgres style, with a zone abbreviation like LMT, it does not).
    unsafe fn text(&self, datum: Datum) -> String {
        let mut tm = unsafe { std::mem::zeroed::<pg_sys::pg_tm>() };
        let mut fsec = 0;
        let mut buffer = [0 as std::ffi::c_char; pg_sys::MAXDATELEN as usize + 1];
        let style = pg_sys::USE_ISO_DATES as i32;
        let written = match self.kind {
            Kind::Date => {
                let days = datum.value() as i32;
                let finite = days != i32::MIN && days != i32::MAX;
                finite && {
                    let julian = days + pg_sys::POSTGRES_EPOCH_JDATE as i32;
                    unsafe { pg_sys::j2date(julian, &mut tm.tm_year, &mut tm.tm_mon, &mut tm.tm_mday) };
                    unsafe { pg_sys::EncodeDateOnly(&mut tm, style, buffer.as_mut_ptr()) };
                    true
                }
            }
            Kind::Timestamp | Kind::TimestampTz => {
                let timestamp = datum.value() as i64;
                let finite = timestamp != i64::MIN && timestamp != i64::MAX;
                let with_zone = matches!(self.kind, Kind::TimestampTz);
                finite
                    && unsafe {
                        // No zone asked for: the fields are UTC's.
                        pg_sys::timestamp2tm(timestamp, std::ptr::null_mut(), &mut tm, &mut fsec, std::ptr::null_mut(), std::ptr::null_mut())
                    } == 0
                    && {
                        // Known zone (UTC), so that the offset is written.
                        tm.tm_isdst = 0;
                        unsafe { pg_sys::EncodeDateTime(&mut tm, fsec, with_zone, 0, std::ptr::null(), style, buffer.as_mut_ptr()) };
                        true
                    }
            }
            _ => false,
        };
        if written {
            unsafe { std::ffi::CStr::from_ptr(buffer.as_ptr()) }.to_string_lossy().into_owned()
        } else {
            unsafe { self.output.to_text(datum) }
        }
    }
}

/// Whether a `timedelta` holds this interval so that it comes back unchanged. PostgreSQL keeps
/// months, days and time apart (a day is not always 24 hours across a DST change); a `timedelta`
/// normalises days and time, which is undone exactly only when they share a sign and the time is
/// under a day.
fn timedelta_exact(value: &pg_sys::Interval) -> bool {
    let same_sign = value.day == 0 || value.time == 0 || (value.day > 0) == (value.time > 0);
    let total = value.day as i128 * DAY_US as i128 + value.time as i128;
    let in_range = -TIMEDELTA_DAYS * DAY_US as i128 <= total && total < (TIMEDELTA_DAYS + 1) * DAY_US as i128;
    value.month == 0 && same_sign && -DAY_US < value.time && value.time < DAY_US && in_range
}

/// Whether a date (days since 2000-01-01) is within PostgreSQL's range: a guest whose runtime was
/// changed may send any day count, and PostgreSQL could not read its value back.
pub fn valid_date(days: i32) -> bool {
    // IS_VALID_DATE: Julian days 0 to DATE_END_JULIAN, less POSTGRES_EPOCH_JDATE.
    (-2_451_545..2_145_031_949).contains(&i64::from(days))
}

/// [`valid_date`] for a timestamp (IS_VALID_TIMESTAMP: MIN_TIMESTAMP to END_TIMESTAMP).
pub fn valid_timestamp(microseconds: i64) -> bool {
    (-211_813_488_000_000_000..9_223_371_331_200_000_000).contains(&microseconds)
}

/// Whether a timestamp (microseconds since 2000-01-01) falls in years 1 to 9999.
fn in_python_range(microseconds: i64) -> bool {
    (FIRST_DAY * DAY_US..(LAST_DAY + 1) * DAY_US).contains(&microseconds)
}

/// The calendar fields of a timestamp (microseconds since 2000-01-01): year, month, day, hour,
/// minute, second and microsecond, in the proleptic Gregorian calendar, as `datetime` takes them.
pub fn fields(microseconds: i64) -> [i64; 7] {
    let (days, time) = (microseconds.div_euclid(DAY_US), microseconds.rem_euclid(DAY_US));
    // In 400-year eras from 0000-03-01.
    let since_march = days + MARCH_0000;
    let era = since_march.div_euclid(146_097);
    let day_of_era = since_march.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    let seconds = time / 1_000_000;
    [year, month, day, seconds / 3600, seconds / 60 % 60, seconds % 60, time % 1_000_000]
}

/// The timestamp (microseconds since 2000-01-01) of a `datetime`'s pickled state: its year (two
/// bytes, big-endian), month, day, hour, minute, second and microsecond (three bytes). `None` if
/// those are not a `datetime`'s.
pub fn from_state(state: &[u8]) -> Option<i64> {
    let &[y1, y0, month, day, hour, minute, second, u2, u1, u0] = state else { return None };
    let year = i64::from(u16::from_be_bytes([y1, y0]));
    let (month, day) = (i64::from(month), i64::from(day));
    let microsecond = i64::from(u32::from_be_bytes([0, u2, u1, u0]));
    let valid = (1..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60
        && microsecond < 1_000_000;
    let seconds = i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    valid.then(|| days_from_civil(year, month, day) * DAY_US + seconds * 1_000_000 + microsecond)
}

/// Days from 2000-01-01 to a date of the proleptic Gregorian calendar (the inverse of `fields`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - MARCH_0000
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The session time zone's offset east of UTC, in seconds, at `timestamp`; none if it is infinite.
fn session_offset(timestamp: i64) -> Option<i32> {
    if !in_python_range(timestamp) {
        return None;
    }
    let mut zone_west = 0;
    let mut tm = unsafe { std::mem::zeroed::<pg_sys::pg_tm>() };
    let mut fsec = 0;
    let status = unsafe {
        pg_sys::timestamp2tm(timestamp, &mut zone_west, &mut tm, &mut fsec, std::ptr::null_mut(), std::ptr::null_mut())
    };
    (status == 0).then_some(-zone_west)
}

/// An interval Datum of days and microseconds, as a `timedelta` gives them.
pub fn interval_datum(days: i32, microseconds: i64) -> Datum {
    unsafe {
        let interval = pg_sys::palloc(std::mem::size_of::<pg_sys::Interval>()) as *mut pg_sys::Interval;
        *interval = pg_sys::Interval { time: microseconds, day: days, month: 0 };
        Datum::from(interval)
    }
}
