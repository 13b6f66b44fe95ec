//! Times in query strings of the monitoring routes: RFC 3339 or Unix seconds.

use switchyard_core::{Error, Timestamp};

/// Parses `value` of the parameter `name`: RFC 3339 (`2025-01-02T03:04:05Z`) or Unix
/// seconds (`1735787045`, fractions allowed).
pub fn parse_time(name: &str, value: &str) -> Result<Timestamp, Error> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        if secs.is_finite() && (0.0..1e11).contains(&secs) {
            return Ok(Timestamp::from_millis((secs * 1_000.0).round() as i64));
        }
    } else if let Some(t) = Timestamp::parse_rfc3339(value) {
        return Ok(t);
    }
    Err(Error::invalid_parameter(format!(
        "`{name}` must be an RFC 3339 time or Unix seconds, not {value:?}"
    )))
}

/// `from`/`to` with defaults: `to` is now, `from` is `default_span_ms` before `to`.
pub fn parse_period(
    from: Option<&str>,
    to: Option<&str>,
    default_span_ms: u64,
) -> Result<(Timestamp, Timestamp), Error> {
    let to = match to {
        Some(v) => parse_time("to", v)?,
        None => Timestamp::now(),
    };
    let from = match from {
        Some(v) => parse_time("from", v)?,
        None => to.minus_ms(default_span_ms),
    };
    if to <= from {
        return Err(Error::invalid_parameter("`to` must be after `from`"));
    }
    Ok((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_parse() {
        assert_eq!(
            parse_time("from", "1700000000").unwrap(),
            Timestamp::from_millis(1_700_000_000_000)
        );
        assert_eq!(
            parse_time("from", "2023-11-14T22:13:20Z").unwrap(),
            Timestamp::from_millis(1_700_000_000_000)
        );
        let e = parse_time("from", "yesterday").unwrap_err();
        assert!(e.message.contains("`from`"), "{}", e.message);
        assert!(parse_time("to", "-5").is_err());
        assert!(parse_period(Some("20"), Some("10"), 1).is_err());
    }
}
