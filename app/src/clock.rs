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

/// The system clock moved by a fixed offset: time still passes (so edits keep their order), but
/// "today" is another day. Lets a tester open the app tomorrow.
pub struct ShiftedClock {
    pub offset_ms: i64,
}

impl ShiftedClock {
    /// A clock whose today is `day`, at the current time of day.
    pub fn to_day(day: Day) -> ShiftedClock {
        let today_noon = FixedClock::at(SystemClock.today()).now_ms;
        ShiftedClock {
            offset_ms: FixedClock::at(day).now_ms - today_noon,
        }
    }
}

impl Clock for ShiftedClock {
    fn now_ms(&self) -> i64 {
        SystemClock.now_ms() + self.offset_ms
    }
}

/// The clock the app runs on: the system's, unless `FIELDBOOK_TODAY=YYYY-MM-DD` moves it to
/// another day (tests, demos).
pub fn from_env() -> Result<std::sync::Arc<dyn Clock>, fieldbook_shared::BadDay> {
    Ok(match std::env::var("FIELDBOOK_TODAY") {
        Ok(day) if !day.trim().is_empty() => {
            std::sync::Arc::new(ShiftedClock::to_day(day.trim().parse()?))
        }
        _ => std::sync::Arc::new(SystemClock),
    })
}
