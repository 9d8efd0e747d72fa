//! `sleep DURATION`: wait, e.g. `sleep 2`, `sleep 0.5`, `sleep 1m`. Ctrl-C
//! ends the wait with status 130.

use std::time::Duration;

use super::{Failure, Outcome, Streams};
use crate::shell::Shell;
use crate::status::STATUS_INTERRUPTED;

const USAGE: &str = "usage: sleep SECONDS (e.g. 2, 0.5, 30s, 5m, 1h)";

pub fn run(shell: &mut Shell, args: &[String], _streams: &mut Streams<'_>) -> Outcome {
    let [duration] = args else {
        return Err(Failure::Usage(USAGE.to_string()));
    };
    let duration = parse_duration(duration)
        .ok_or_else(|| Failure::Usage(format!("{duration:?} is not a duration; {USAGE}")))?;
    if shell.interrupt.sleep(duration) {
        Ok(0)
    } else {
        Ok(STATUS_INTERRUPTED)
    }
}

fn parse_duration(text: &str) -> Option<Duration> {
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let seconds_per_unit = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    let value: f64 = number.parse().ok()?;
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(value * seconds_per_unit).ok()
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("-1"), None);
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("1e400"), None);
        assert_eq!(parse_duration("NaN"), None);
        assert_eq!(parse_duration("2d"), None);
    }
}
