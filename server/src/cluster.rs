//! Several relay instances on one PostgreSQL database: each hears of the others' commits
//! through the database's notifications (team and sequence only) and announces them to its
//! own live connections. The durable per-team sequence is the truth: a notification only
//! wakes, so one lost, or a listener that reconnects, only delays (each reconnection catches
//! up every team with a live connection here).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::http::AppState;
use crate::store::StoreError;
use crate::store::postgres::CommitFeed;

/// How long one wait for notifications lasts: also how soon a shutdown is noticed.
const WAIT: Duration = Duration::from_millis(500);

/// Follow the commits of the other instances on the database `url` until the relay shuts
/// down. Blocks: run it on a blocking thread.
pub fn follow_commits(relay: AppState, url: String) {
    let mut lost = false;
    while !*relay.shutdown.borrow() {
        let mut feed = match CommitFeed::open(&url) {
            Ok(feed) => feed,
            Err(e) => {
                if !lost {
                    tracing::warn!("cannot hear other instances' commits: {e}; retrying");
                    lost = true;
                }
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if lost {
            tracing::info!("hearing other instances' commits again");
            lost = false;
        }
        // Whatever was committed while nobody here listened.
        catch_up(&relay, relay.hub.live_teams());
        while !*relay.shutdown.borrow() {
            match feed.next(WAIT) {
                Ok(commits) => {
                    let behind: BTreeSet<_> = commits
                        .into_iter()
                        .filter(|(team, seq)| relay.hub.told(*team).is_some_and(|t| t < *seq))
                        .map(|(team, _)| team)
                        .collect();
                    catch_up(&relay, behind);
                }
                Err(e) => {
                    tracing::warn!("the commit feed was lost: {e}; reconnecting");
                    lost = true;
                    break;
                }
            }
        }
    }
}

/// Each team's turn, which starts by announcing what it missed (see
/// [`crate::http::Relay::with_team`]).
fn catch_up(relay: &AppState, teams: impl IntoIterator<Item = i64>) {
    for team in teams {
        if let Err(e) = relay.with_team(team, |_, _| Ok::<_, StoreError>(())) {
            tracing::warn!(team, "catching up other instances' commits: {e}");
        }
    }
}
