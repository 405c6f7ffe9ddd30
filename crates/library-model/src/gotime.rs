//! Timestamps written and read the way Go's `time.Time` does in JSON.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use time::{Date, Month, OffsetDateTime, Time, UtcOffset};

/// A timestamp of the library's JSON: RFC 3339 with up to nine fractional
/// digits and any UTC offset, where `"0001-01-01T00:00:00Z"` is the zero
/// ("unset") time.
///
/// `GoTime(None)` is the zero time. Encoding follows Go's `RFC3339Nano`
/// layout: the value's own offset is kept (`Z` when it is zero), the
/// fraction is written with its trailing zeros trimmed and left out when
/// zero. So `2021-06-01T10:00:00.5+02:00` reads and writes back unchanged,
/// while `+00:00` is written back as `Z`, as Go does.
///
/// Decoding accepts `null` as the zero time (some servers send it for
/// `updatedAt` and `deletedAt`) and rejects an empty string, as Go does.
///
/// Equality, ordering and hashing compare instants: two values with the
/// same instant in different offsets are equal even though they encode
/// differently. A `Some` holding the zero instant in UTC equals `None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GoTime(pub Option<OffsetDateTime>);

/// Why a timestamp could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeParseError {
    input: String,
    reason: &'static str,
}

impl TimeParseError {
    fn new(input: &str, reason: &'static str) -> Self {
        const MAX: usize = 64;
        let input = if input.len() > MAX {
            let mut end = MAX;
            while !input.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}…", &input[..end])
        } else {
            input.to_owned()
        };
        TimeParseError { input, reason }
    }

    /// What was wrong with the text, e.g. `"month out of range"`.
    pub fn reason(&self) -> &str {
        self.reason
    }
}

impl fmt::Display for TimeParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid RFC 3339 time {:?}: {}", self.input, self.reason)
    }
}

impl std::error::Error for TimeParseError {}

fn zero_instant() -> OffsetDateTime {
    Date::from_calendar_date(1, Month::January, 1)
        .expect("0001-01-01 is a valid date")
        .midnight()
        .assume_utc()
}

fn is_zero_utc(t: &OffsetDateTime) -> bool {
    t.offset().is_utc() && *t == zero_instant()
}

impl GoTime {
    /// The zero time, written as `"0001-01-01T00:00:00Z"`.
    pub const ZERO: GoTime = GoTime(None);

    /// The text of the zero time.
    pub const ZERO_TEXT: &'static str = "0001-01-01T00:00:00Z";

    /// Wraps a timestamp; the zero instant in UTC becomes [`GoTime::ZERO`].
    pub fn new(t: OffsetDateTime) -> Self {
        if is_zero_utc(&t) {
            GoTime(None)
        } else {
            GoTime(Some(t))
        }
    }

    /// The current time in UTC.
    pub fn now_utc() -> Self {
        GoTime::new(OffsetDateTime::now_utc())
    }

    /// The timestamp, or `None` for the zero time.
    pub fn get(&self) -> Option<OffsetDateTime> {
        self.0.filter(|t| !is_zero_utc(t))
    }

    /// True when this is Go's zero instant (`0001-01-01T00:00:00Z`, in any
    /// offset), like Go's `Time.IsZero`.
    pub fn is_zero(&self) -> bool {
        match &self.0 {
            None => true,
            Some(t) => *t == zero_instant(),
        }
    }

    /// Reads an RFC 3339 timestamp with the rules of Go's JSON decoding:
    /// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, upper-case `T` and `Z`,
    /// two-digit fields in range, fraction digits beyond nine ignored.
    pub fn parse(text: &str) -> Result<Self, TimeParseError> {
        parse_rfc3339(text).map(GoTime::new)
    }

    /// The text Go's JSON encoding writes, or why Go would refuse to write
    /// it (a year outside 0..=9999 or an offset of 24 hours or more).
    pub fn to_json_text(&self) -> Result<String, &'static str> {
        let mut out = String::with_capacity(36);
        match self.get() {
            None => out.push_str(Self::ZERO_TEXT),
            Some(t) => {
                if !(0..=9999).contains(&t.year()) {
                    return Err("year outside of range [0,9999]");
                }
                if t.offset().whole_seconds().unsigned_abs() / 3600 >= 24 {
                    return Err("timezone hour outside of range [0,23]");
                }
                write_rfc3339_nano(&t, &mut out);
            }
        }
        Ok(out)
    }

    fn key(&self) -> Option<OffsetDateTime> {
        self.get()
    }
}

impl PartialEq for GoTime {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for GoTime {}

impl Hash for GoTime {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialOrd for GoTime {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for GoTime {
    fn cmp(&self, other: &Self) -> Ordering {
        // The zero time is the earliest time the library uses.
        self.key().cmp(&other.key())
    }
}

impl From<OffsetDateTime> for GoTime {
    fn from(t: OffsetDateTime) -> Self {
        GoTime::new(t)
    }
}

impl From<Option<OffsetDateTime>> for GoTime {
    fn from(t: Option<OffsetDateTime>) -> Self {
        t.map_or(GoTime::ZERO, GoTime::new)
    }
}

impl From<GoTime> for Option<OffsetDateTime> {
    fn from(t: GoTime) -> Self {
        t.get()
    }
}

impl FromStr for GoTime {
    type Err = TimeParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GoTime::parse(s)
    }
}

/// Writes the `RFC3339Nano` text without range checks (like Go's
/// `Time.Format`).
impl fmt::Display for GoTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.get() {
            None => f.write_str(Self::ZERO_TEXT),
            Some(t) => {
                let mut out = String::with_capacity(36);
                write_rfc3339_nano(&t, &mut out);
                f.write_str(&out)
            }
        }
    }
}

impl Serialize for GoTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.to_json_text() {
            Ok(text) => serializer.serialize_str(&text),
            Err(reason) => Err(serde::ser::Error::custom(format_args!(
                "cannot encode time {self}: {reason}"
            ))),
        }
    }
}

struct GoTimeVisitor;

impl<'de> Visitor<'de> for GoTimeVisitor {
    type Value = GoTime;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 time string or null")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<GoTime, E> {
        GoTime::parse(v).map_err(E::custom)
    }

    fn visit_none<E: de::Error>(self) -> Result<GoTime, E> {
        Ok(GoTime::ZERO)
    }

    fn visit_unit<E: de::Error>(self) -> Result<GoTime, E> {
        Ok(GoTime::ZERO)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<GoTime, D::Error> {
        d.deserialize_str(GoTimeVisitor)
    }
}

impl<'de> Deserialize<'de> for GoTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_option(GoTimeVisitor)
    }
}

/// Appends `n` as exactly `width` decimal digits (`n` must fit).
fn push_digits(out: &mut String, n: u32, width: u32) {
    let mut div = 10u32.pow(width - 1);
    while div > 0 {
        out.push(char::from(b'0' + ((n / div) % 10) as u8));
        div /= 10;
    }
}

fn write_rfc3339_nano(t: &OffsetDateTime, out: &mut String) {
    let year = t.year();
    if year < 0 {
        out.push('-');
    }
    let abs = year.unsigned_abs();
    if abs >= 10000 {
        out.push_str(&abs.to_string());
    } else {
        push_digits(out, abs, 4);
    }
    out.push('-');
    push_digits(out, u32::from(u8::from(t.month())), 2);
    out.push('-');
    push_digits(out, u32::from(t.day()), 2);
    out.push('T');
    push_digits(out, u32::from(t.hour()), 2);
    out.push(':');
    push_digits(out, u32::from(t.minute()), 2);
    out.push(':');
    push_digits(out, u32::from(t.second()), 2);

    let mut nanos = t.nanosecond();
    if nanos != 0 {
        out.push('.');
        let mut width = 9;
        while nanos.is_multiple_of(10) {
            nanos /= 10;
            width -= 1;
        }
        push_digits(out, nanos, width);
    }

    let offset = t.offset().whole_seconds();
    if offset == 0 {
        out.push('Z');
        return;
    }
    // Go writes whole minutes, truncated toward zero, and takes the sign
    // from the minutes.
    let mut zone = offset / 60;
    if zone < 0 {
        out.push('-');
        zone = -zone;
    } else {
        out.push('+');
    }
    let zone = zone.unsigned_abs();
    let hours = zone / 60;
    if hours >= 100 {
        out.push_str(&hours.to_string());
    } else {
        push_digits(out, hours, 2);
    }
    out.push(':');
    push_digits(out, zone % 60, 2);
}

fn two_digits(b: &[u8], at: usize) -> Option<u8> {
    match (b.get(at), b.get(at + 1)) {
        (Some(h @ b'0'..=b'9'), Some(l @ b'0'..=b'9')) => Some((h - b'0') * 10 + (l - b'0')),
        _ => None,
    }
}

fn parse_rfc3339(text: &str) -> Result<OffsetDateTime, TimeParseError> {
    let err = |reason| TimeParseError::new(text, reason);
    let b = text.as_bytes();
    if b.is_empty() {
        return Err(err("empty string"));
    }
    if b.len() < "2006-01-02T15:04:05Z".len() {
        return Err(err("too short"));
    }
    let mut year = 0i32;
    for &c in &b[..4] {
        if !c.is_ascii_digit() {
            return Err(err("year must be four digits"));
        }
        year = year * 10 + i32::from(c - b'0');
    }
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, c)| b[at] != c) {
        return Err(err("not of the form YYYY-MM-DDTHH:MM:SS"));
    }
    let field = |at, what| two_digits(b, at).ok_or_else(|| err(what));
    let month = field(5, "month must be two digits")?;
    let day = field(8, "day must be two digits")?;
    let hour = field(11, "hour must be two digits")?;
    let minute = field(14, "minute must be two digits")?;
    let second = field(17, "second must be two digits")?;

    let month = Month::try_from(month).map_err(|_| err("month out of range"))?;
    let date = Date::from_calendar_date(year, month, day).map_err(|_| err("day out of range"))?;
    if hour > 23 {
        return Err(err("hour out of range"));
    }
    if minute > 59 {
        return Err(err("minute out of range"));
    }
    if second > 59 {
        return Err(err("second out of range"));
    }

    let mut rest = &b[19..];
    let mut nanos = 0u32;
    if let [b'.', tail @ ..] = rest {
        let digits = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(err("fraction without digits"));
        }
        let mut scale = 100_000_000u32;
        for &c in &tail[..digits.min(9)] {
            nanos += u32::from(c - b'0') * scale;
            scale /= 10;
        }
        rest = &tail[digits..];
    }

    let offset = match rest {
        [b'Z'] => UtcOffset::UTC,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let hours = two_digits(rest, 1).ok_or_else(|| err("offset hour must be two digits"))?;
            let minutes =
                two_digits(rest, 4).ok_or_else(|| err("offset minute must be two digits"))?;
            if hours > 23 {
                return Err(err("offset hour out of range"));
            }
            if minutes > 59 {
                return Err(err("offset minute out of range"));
            }
            let (h, m) = (hours as i8, minutes as i8);
            let (h, m) = if *sign == b'-' { (-h, -m) } else { (h, m) };
            UtcOffset::from_hms(h, m, 0).map_err(|_| err("offset out of range"))?
        }
        [] => return Err(err("missing time zone (Z or ±HH:MM)")),
        _ => return Err(err("bad time zone or trailing text")),
    };

    let time = Time::from_hms_nano(hour, minute, second, nanos)
        .map_err(|_| err("time of day out of range"))?;
    Ok(date.with_time(time).assume_offset(offset))
}
