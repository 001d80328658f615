//! Slowing down password guessing on the web login.
//!
//! argon2 makes each guess cost ~tens of milliseconds, which still allows tens of thousands
//! an hour. So each account name (team + user, whether or not it exists, so the answer does
//! not tell which do) may fail a few times freely; from then on every failure closes the
//! account's login for a while, doubling each time up to a cap. While closed, no password is
//! checked at all, not even the right one: otherwise a guesser would learn from the answer.
//! A success forgets the account's failures.
//!
//! The same counting serves enrolments, keyed by the client's address (an invite code has no
//! account to key by until it is right).
//!
//! Logins are keyed by account rather than by address: behind a proxy every browser has the proxy's
//! address, and a guesser can change address more easily than the account it wants. The
//! price is that someone guessing can keep a manager out for a while; the cap bounds it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed before the login starts closing.
const FREE_FAILURES: u32 = 4;
const FIRST_CLOSE: Duration = Duration::from_secs(5);
const LONGEST_CLOSE: Duration = Duration::from_secs(15 * 60);
/// Failures older than this are forgotten.
const MEMORY: Duration = Duration::from_secs(60 * 60);
/// Accounts remembered; a guesser inventing names cannot grow the map past it (only
/// accounts closed right now are kept beyond it, and each of those cost five argon2 checks).
const MAX_ACCOUNTS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    closed_until: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct LoginThrottle {
    accounts: Mutex<HashMap<String, Failures>>,
}

fn key(team: &str, user: &str) -> String {
    // Names are matched trimmed and case-sensitively at login; the throttle is stricter and
    // folds case, so "Chen" and "chen" share one allowance.
    format!(
        "{}\u{0}{}",
        team.trim().to_lowercase(),
        user.trim().to_lowercase()
    )
}

impl LoginThrottle {
    /// How long the account's login is still closed, or None to go on and check the password.
    pub fn closed_for(&self, team: &str, user: &str, now: Instant) -> Option<Duration> {
        self.closed_for_key(&key(team, user), now)
    }

    /// As [`LoginThrottle::closed_for`], for failures counted under any key (a client's
    /// address for enrolments).
    pub fn closed_for_key(&self, key: &str, now: Instant) -> Option<Duration> {
        let accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        let until = accounts.get(key)?.closed_until?;
        until.checked_duration_since(now).filter(|d| !d.is_zero())
    }

    /// A wrong password (or an unknown account): count it, and close the login if the free
    /// failures are used up. Returns how long it is now closed.
    pub fn failed(&self, team: &str, user: &str, now: Instant) -> Option<Duration> {
        self.failed_key(&key(team, user), now)
    }

    pub fn failed_key(&self, key: &str, now: Instant) -> Option<Duration> {
        let mut accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        if accounts.len() >= MAX_ACCOUNTS {
            forget_old(&mut accounts, now);
        }
        let entry = accounts.entry(key.to_string()).or_insert(Failures {
            count: 0,
            last: now,
            closed_until: None,
        });
        if now.saturating_duration_since(entry.last) > MEMORY {
            entry.count = 0;
        }
        entry.count += 1;
        entry.last = now;
        let over = entry.count.checked_sub(FREE_FAILURES + 1)?;
        let close = FIRST_CLOSE
            .checked_mul(1u32.checked_shl(over).unwrap_or(u32::MAX))
            .map_or(LONGEST_CLOSE, |d| d.min(LONGEST_CLOSE));
        entry.closed_until = Some(now + close);
        Some(close)
    }

    /// The right password: the account starts afresh.
    pub fn succeeded(&self, team: &str, user: &str) {
        self.succeeded_key(&key(team, user));
    }

    pub fn succeeded_key(&self, key: &str) {
        let mut accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        accounts.remove(key);
    }
}

/// Drop what is too old to matter; if a flood of invented names keeps the map full, drop the
/// longest-quiet accounts too (an account being guessed right now stays).
fn forget_old(accounts: &mut HashMap<String, Failures>, now: Instant) {
    accounts.retain(|_, f| {
        now.saturating_duration_since(f.last) <= MEMORY || f.closed_until.is_some_and(|u| u > now)
    });
    if accounts.len() >= MAX_ACCOUNTS {
        let mut by_age: Vec<(Instant, String)> = accounts
            .iter()
            .filter(|(_, f)| f.closed_until.is_none_or(|u| u <= now))
            .map(|(k, f)| (f.last, k.clone()))
            .collect();
        by_age.sort_unstable();
        for (_, k) in by_age.into_iter().take(MAX_ACCOUNTS / 10) {
            accounts.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_failures_are_free_then_the_login_closes_for_longer_each_time() {
        let t = LoginThrottle::default();
        let start = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert_eq!(t.failed("north", "chen", start), None);
            assert_eq!(t.closed_for("north", "chen", start), None);
        }
        assert_eq!(t.failed("north", "chen", start), Some(FIRST_CLOSE));
        assert_eq!(t.closed_for("North ", "CHEN", start), Some(FIRST_CLOSE));
        assert_eq!(
            t.closed_for("north", "li", start),
            None,
            "others are not affected"
        );
        assert_eq!(t.closed_for("south", "chen", start), None);
        let later = start + FIRST_CLOSE;
        assert_eq!(t.closed_for("north", "chen", later), None, "it opens again");
        assert_eq!(t.failed("north", "chen", later), Some(FIRST_CLOSE * 2));
        assert_eq!(t.failed("north", "chen", later), Some(FIRST_CLOSE * 4));
        for _ in 0..40 {
            t.failed("north", "chen", later);
        }
        assert_eq!(
            t.closed_for("north", "chen", later),
            Some(LONGEST_CLOSE),
            "capped, never overflowing"
        );
        t.succeeded("north", "chen");
        assert_eq!(t.closed_for("north", "chen", later), None);
        assert_eq!(
            t.failed("north", "chen", later),
            None,
            "a success starts afresh"
        );
    }

    #[test]
    fn old_failures_are_forgotten() {
        let t = LoginThrottle::default();
        let start = Instant::now();
        for _ in 0..FREE_FAILURES {
            t.failed("north", "chen", start);
        }
        let hours_later = start + MEMORY + Duration::from_secs(1);
        assert_eq!(t.failed("north", "chen", hours_later), None);
    }

    #[test]
    fn invented_names_cannot_grow_it_without_bound() {
        let t = LoginThrottle::default();
        let start = Instant::now();
        for _ in 0..=FREE_FAILURES {
            t.failed("north", "chen", start);
        }
        for i in 0..(MAX_ACCOUNTS + 500) {
            t.failed("north", &format!("guess-{i}"), start);
        }
        let size = t.accounts.lock().unwrap().len();
        assert!(size <= MAX_ACCOUNTS, "{size}");
        assert!(
            t.closed_for("north", "chen", start).is_some(),
            "the account under guessing stays closed"
        );
    }
}
