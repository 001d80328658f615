//! Time, injectable: tests and demos set "today" to see tomorrow's overdue follow-ups.

use fieldbook_shared::Day;

pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
    fn today(&self) -> Day {
        let secs = self.now_ms().div_euclid(1000);
        chrono::DateTime::from_timestamp(secs, 0)
            .map(|t| Day::from(t.with_timezone(&chrono::Local).date_naive()))
            .unwrap_or_else(|| Day::from_ymd(1970, 1, 1).expect("epoch is a date"))
    }
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// A clock stopped at one instant.
pub struct FixedClock {
    pub now_ms: i64,
    pub today: Day,
}

impl FixedClock {
    /// Noon UTC of `day`.
    pub fn at(day: Day) -> FixedClock {
        let noon = day
            .date()
            .and_hms_opt(12, 0, 0)
            .expect("noon exists")
            .and_utc()
            .timestamp_millis();
        FixedClock {
            now_ms: noon,
            today: day,
        }
    }
}

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.now_ms
    }
    fn today(&self) -> Day {
        self.today
    }
}
