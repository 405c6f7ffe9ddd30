//! Timestamps read and write like Go's `time.Time` in JSON.

use library_model::{Entity, GoTime};
use serde_json::json;
use time::{Date, Month, UtcOffset};

fn round_trip(text: &str) -> String {
    let t: GoTime = serde_json::from_value(json!(text)).unwrap_or_else(|e| panic!("{text}: {e}"));
    match serde_json::to_value(t).unwrap() {
        serde_json::Value::String(s) => s,
        other => panic!("{text}: encoded as {other}"),
    }
}

#[test]
fn times_round_trip_byte_for_byte() {
    for text in [
        "0001-01-01T00:00:00Z",
        "2019-02-01T12:34:56.123456789Z",
        "2021-06-01T10:00:00.5+02:00",
        "2024-01-02T03:04:05+01:00",
        "2023-12-29T10:11:12.123456789Z",
        "1999-12-31T23:59:59.000000001-09:30",
        "2000-02-29T00:00:00.1Z",
        "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999999+23:59",
    ] {
        assert_eq!(round_trip(text), text);
        assert_eq!(text.parse::<GoTime>().unwrap().to_string(), text);
    }
}

#[test]
fn utc_written_as_plus_zero_comes_back_as_z() {
    // Go keeps the instant and the (zero) offset, and writes a zero offset
    // as "Z".
    assert_eq!(
        round_trip("2023-01-02T03:04:05.123456+00:00"),
        "2023-01-02T03:04:05.123456Z"
    );
    assert_eq!(
        round_trip("2023-01-02T03:04:05-00:00"),
        "2023-01-02T03:04:05Z"
    );
    let a: GoTime = "2023-01-02T03:04:05.123456+00:00".parse().unwrap();
    let b: GoTime = "2023-01-02T03:04:05.123456Z".parse().unwrap();
    assert_eq!(a, b);
}

#[test]
fn fractions_are_trimmed_and_truncated_like_go() {
    assert_eq!(
        round_trip("2021-06-01T10:00:00.500000000Z"),
        "2021-06-01T10:00:00.5Z"
    );
    assert_eq!(
        round_trip("2021-06-01T10:00:00.000Z"),
        "2021-06-01T10:00:00Z"
    );
    assert_eq!(
        round_trip("2021-06-01T10:00:00.1234567891234Z"),
        "2021-06-01T10:00:00.123456789Z"
    );
}

#[test]
fn zero_time() {
    assert_eq!(GoTime::default(), GoTime::ZERO);
    assert!(GoTime::ZERO.is_zero());
    assert_eq!(GoTime::ZERO.get(), None);
    assert_eq!(GoTime::ZERO.to_string(), GoTime::ZERO_TEXT);
    assert_eq!(
        serde_json::to_value(GoTime::ZERO).unwrap(),
        json!("0001-01-01T00:00:00Z")
    );

    let parsed: GoTime = "0001-01-01T00:00:00Z".parse().unwrap();
    assert_eq!(parsed.0, None, "the zero instant in UTC is stored as None");
    let null: GoTime = serde_json::from_value(json!(null)).unwrap();
    assert_eq!(null, GoTime::ZERO);

    // The zero instant in another offset is still zero, and keeps its
    // offset when written, as in Go.
    let shifted: GoTime = "0001-01-01T01:00:00+01:00".parse().unwrap();
    assert!(shifted.is_zero());
    assert_eq!(shifted.to_string(), "0001-01-01T01:00:00+01:00");

    let zero_utc = Date::from_calendar_date(1, Month::January, 1)
        .unwrap()
        .midnight()
        .assume_utc();
    assert_eq!(GoTime::new(zero_utc), GoTime::ZERO);
    assert_eq!(GoTime(Some(zero_utc)), GoTime::ZERO);
    assert_eq!(GoTime::from(Some(zero_utc)).0, None);
}

#[test]
fn offsets_and_fields_are_kept() {
    let t: GoTime = "2021-06-01T10:00:00.5+02:00".parse().unwrap();
    let dt = t.get().unwrap();
    assert_eq!(dt.offset(), UtcOffset::from_hms(2, 0, 0).unwrap());
    assert_eq!((dt.hour(), dt.nanosecond()), (10, 500_000_000));
    let same_instant: GoTime = "2021-06-01T08:00:00.5Z".parse().unwrap();
    assert_eq!(t, same_instant, "equality compares instants");
    assert!(GoTime::ZERO < t);
    assert!(GoTime::now_utc() > t);
}

#[test]
fn invalid_times_are_rejected() {
    for text in [
        "",
        "2021-06-01",
        "2021-06-01T10:00:00",
        "2021-06-01 10:00:00Z",
        "2021-06-01t10:00:00Z",
        "2021-06-01T10:00:00z",
        "2021-6-01T10:00:00Z",
        "2021-06-01T1:00:00Z",
        "21-06-01T10:00:00Z",
        "2021-13-01T10:00:00Z",
        "2021-02-29T10:00:00Z",
        "2021-06-31T10:00:00Z",
        "2021-06-01T24:00:00Z",
        "2021-06-01T10:60:00Z",
        "2021-06-01T10:00:60Z",
        "2021-06-01T10:00:00.Z",
        "2021-06-01T10:00:00,5Z",
        "2021-06-01T10:00:00+24:00",
        "2021-06-01T10:00:00+02:60",
        "2021-06-01T10:00:00+0200",
        "2021-06-01T10:00:00Z ",
        "+2021-06-01T10:00:00Z",
    ] {
        assert!(text.parse::<GoTime>().is_err(), "{text:?} was accepted");
        assert!(
            serde_json::from_value::<GoTime>(json!(text)).is_err(),
            "{text:?} was accepted as JSON"
        );
    }
    let err = "2021-13-01T10:00:00Z".parse::<GoTime>().unwrap_err();
    assert_eq!(err.reason(), "month out of range");
    assert!(err.to_string().contains("2021-13-01T10:00:00Z"));
    assert!(serde_json::from_value::<GoTime>(json!(5)).is_err());
}

#[test]
fn times_go_cannot_write_are_refused() {
    let far = Date::from_calendar_date(-5, Month::January, 1)
        .unwrap()
        .midnight()
        .assume_utc();
    let t = GoTime::new(far);
    assert!(serde_json::to_value(t).is_err());
    assert!(t.to_json_text().is_err());
    assert_eq!(t.to_string(), "-0005-01-01T00:00:00Z");

    let wide = Date::from_calendar_date(2020, Month::January, 1)
        .unwrap()
        .midnight()
        .assume_offset(UtcOffset::from_hms(25, 0, 0).unwrap());
    assert!(serde_json::to_value(GoTime::new(wide)).is_err());

    // Go writes whole minutes of the offset, truncating the seconds.
    let odd = Date::from_calendar_date(2020, Month::January, 1)
        .unwrap()
        .midnight()
        .assume_offset(UtcOffset::from_hms(-1, -30, -15).unwrap());
    assert_eq!(GoTime::new(odd).to_string(), "2020-01-01T00:00:00-01:30");
}

#[test]
fn model_times_are_always_written() {
    let v = serde_json::to_value(Entity::default()).unwrap();
    for key in ["createdAt", "updatedAt", "deletedAt"] {
        assert_eq!(v[key], "0001-01-01T00:00:00Z");
    }
}
