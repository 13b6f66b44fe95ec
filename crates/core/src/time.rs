//! Time as stored and exchanged: UTC milliseconds since the Unix epoch.
//!
//! Every backend stores times as a 64-bit integer of milliseconds, which keeps SQL
//! identical across SQLite and PostgreSQL and avoids precision drift between them.
//! The API shows them as RFC 3339 strings.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const EPOCH: Timestamp = Timestamp(0);
    /// The earliest and latest times RFC 3339 can write (four-digit years): arithmetic
    /// saturates there, so every time shown is a valid date-time.
    pub const MIN: Timestamp = Timestamp(-62_167_219_200_000);
    pub const MAX: Timestamp = Timestamp(253_402_300_799_999);

    pub fn now() -> Self {
        Timestamp(Utc::now().timestamp_millis())
    }

    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    pub fn plus_ms(self, ms: u64) -> Self {
        Timestamp(self.0.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX))).clamped()
    }

    pub fn minus_ms(self, ms: u64) -> Self {
        Timestamp(self.0.saturating_sub(i64::try_from(ms).unwrap_or(i64::MAX))).clamped()
    }

    /// Within [`Timestamp::MIN`]..=[`Timestamp::MAX`].
    pub fn clamped(self) -> Self {
        self.clamp(Self::MIN, Self::MAX)
    }

    /// Milliseconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> u64 {
        u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0)
    }

    /// Always a valid RFC 3339 date-time: a time beyond the four-digit years (only
    /// arithmetic can make one) is written as the nearest one they hold.
    pub fn to_rfc3339(self) -> String {
        String::from_utf8_lossy(&self.rfc3339_bytes()).into_owned()
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` written into a stack buffer, for the years 0–9999
    /// (every time a task can carry). Events and task bodies carry several timestamps
    /// each, so this is on every hot path that speaks JSON; `chrono`'s general formatter
    /// allocates and interprets a format for each one.
    fn rfc3339_bytes(self) -> [u8; 24] {
        let t = self.clamped().0;
        let ms = t.rem_euclid(86_400_000);
        let days = t.div_euclid(86_400_000);
        let (year, month, day) = civil_from_days(days);
        let (secs, millis) = (ms / 1000, ms % 1000);
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        let mut b = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut v: i64| {
            for i in (0..width).rev() {
                b[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, h);
        put(14, 2, m);
        put(17, 2, s);
        put(20, 3, millis);
        b
    }

    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|dt| Timestamp(dt.with_timezone(&Utc).timestamp_millis()))
            .filter(|t| (Self::MIN..=Self::MAX).contains(t))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The buffer holds ASCII digits and separators only.
        s.serialize_str(std::str::from_utf8(&self.rfc3339_bytes()).unwrap_or_default())
    }
}

/// The proleptic Gregorian (year, month, day) of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid timestamp {s:?}: expected RFC 3339, e.g. 2026-01-31T12:00:00Z"
            ))
        })
    }
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            )))
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use chrono::SecondsFormat;

    use super::*;

    #[test]
    fn rfc3339_round_trip_keeps_milliseconds() {
        let t = Timestamp::from_millis(1_764_000_000_123);
        let s = t.to_rfc3339();
        assert_eq!(s, "2025-11-24T16:00:00.123Z");
        assert_eq!(Timestamp::parse_rfc3339(&s), Some(t));
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        let t = Timestamp::parse_rfc3339("2025-11-24T18:00:00.123+02:00").unwrap();
        assert_eq!(t.millis(), 1_764_000_000_123);
    }

    fn chrono_rfc3339(ms: i64) -> String {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    proptest::proptest! {
        /// The fast formatter writes what chrono writes, for every millisecond of the
        /// years it handles (before 1970 too), and the text parses back.
        #[test]
        fn fast_rfc3339_matches_chrono(ms in -62_167_219_200_000i64..253_402_300_800_000i64) {
            let t = Timestamp::from_millis(ms);
            proptest::prop_assert_eq!(t.to_rfc3339(), chrono_rfc3339(ms));
            proptest::prop_assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{}\"", chrono_rfc3339(ms)));
            proptest::prop_assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Some(t));
        }
    }

    #[test]
    fn every_time_is_written_as_a_valid_date_time() {
        assert_eq!(Timestamp::MAX.to_rfc3339(), "9999-12-31T23:59:59.999Z");
        assert_eq!(Timestamp::MIN.to_rfc3339(), "0000-01-01T00:00:00.000Z");
        for ms in [i64::MAX, 253_402_300_800_000, i64::MIN, -62_167_219_200_001] {
            let text = serde_json::to_string(&Timestamp::from_millis(ms)).unwrap();
            let back: Timestamp = serde_json::from_str(&text).unwrap();
            assert!(back == Timestamp::MAX || back == Timestamp::MIN, "{text}");
        }
        assert_eq!(Timestamp::now().plus_ms(u64::MAX), Timestamp::MAX);
        assert_eq!(Timestamp::now().minus_ms(u64::MAX), Timestamp::MIN);
        // Day boundaries and leap days.
        for ms in [0, -1, 951_782_400_000, 951_868_799_999, 4_107_542_400_000] {
            assert_eq!(Timestamp::from_millis(ms).to_rfc3339(), chrono_rfc3339(ms));
        }
    }

    #[test]
    fn bad_strings_are_rejected() {
        assert!(Timestamp::parse_rfc3339("yesterday").is_none());
        assert!(serde_json::from_str::<Timestamp>("\"2025-13-01T00:00:00Z\"").is_err());
    }
}
