//! The scrape deadline: the smaller of `PGMAINT_SCRAPE_TIMEOUT` and
//! Prometheus' `X-Prometheus-Scrape-Timeout-Seconds` minus a safety margin.

use std::time::Duration;

use axum::http::HeaderMap;

/// The header Prometheus sends with its own scrape timeout.
pub const TIMEOUT_HEADER: &str = "X-Prometheus-Scrape-Timeout-Seconds";

/// Time kept back from Prometheus' own scrape timeout for encoding and transfer.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// The scrape deadline for this request.
pub fn scrape_timeout(configured: Duration, headers: &HeaderMap) -> Duration {
    match headers.get(TIMEOUT_HEADER).and_then(|v| v.to_str().ok()) {
        Some(v) => timeout_from_header(configured, v),
        None => configured,
    }
}

/// The deadline for an `X-Prometheus-Scrape-Timeout-Seconds` value: never
/// longer than `configured`, whatever the text (`1e308`, `NaN`, `-1`,
/// `18446744073709551616`, junk: `configured`), and never a panic.
pub fn timeout_from_header(configured: Duration, value: &str) -> Duration {
    let Some(secs) = value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
    else {
        return configured;
    };
    // Compared as seconds first: Duration::from_secs_f64 panics above ~1.8e19.
    if secs >= configured.as_secs_f64() {
        return configured;
    }
    let Ok(d) = Duration::try_from_secs_f64(secs) else {
        return configured;
    };
    // Keep a margin, but never less than half of what Prometheus allows.
    d.saturating_sub(DEADLINE_MARGIN).max(d / 2).min(configured)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_header_shortens_the_deadline() {
        let mut h = HeaderMap::new();
        assert_eq!(
            scrape_timeout(Duration::from_secs(10), &h),
            Duration::from_secs(10)
        );
        h.insert("X-Prometheus-Scrape-Timeout-Seconds", "4".parse().unwrap());
        assert_eq!(
            scrape_timeout(Duration::from_secs(10), &h),
            Duration::from_millis(3500)
        );
        h.insert("X-Prometheus-Scrape-Timeout-Seconds", "0.5".parse().unwrap());
        assert_eq!(
            scrape_timeout(Duration::from_secs(10), &h),
            Duration::from_millis(250)
        );
        h.insert("X-Prometheus-Scrape-Timeout-Seconds", "30".parse().unwrap());
        assert_eq!(
            scrape_timeout(Duration::from_secs(10), &h),
            Duration::from_secs(10)
        );
        h.insert("X-Prometheus-Scrape-Timeout-Seconds", "junk".parse().unwrap());
        assert_eq!(
            scrape_timeout(Duration::from_secs(10), &h),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn any_header_value_gives_a_bounded_timeout() {
        let ten = Duration::from_secs(10);
        for v in [
            "1e308",
            "18446744073709551616",
            "1.8446744073709552e19",
            "NaN",
            "inf",
            "-inf",
            "-1",
            "0",
            "-0",
            "",
            "   ",
            "1e-320",
            "0x10",
            "9".repeat(400).as_str(),
        ] {
            let d = timeout_from_header(ten, v);
            assert!(d <= ten, "{v:?} gave {d:?}");
        }
        assert_eq!(timeout_from_header(ten, "1e308"), ten);
        assert_eq!(timeout_from_header(ten, "NaN"), ten);
        assert!(timeout_from_header(ten, "1e-320") <= Duration::from_nanos(1));
    }
}
