//! Each team's turn on this relay, with the dossiers it keeps open between connections. Only
//! the most recently busy teams keep theirs: a relay serving hundreds of teams does not hold
//! hundreds of teams' documents in memory (a team whose dossiers were let go loads them from the
//! store again when it is next busy).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, TryLockError};

use crate::replica::{TeamDocs, team_docs};
use crate::store::TeamId;

/// Teams whose open dossiers are kept (each up to [`crate::replica::OPEN_DOSSIERS`]).
pub const TEAMS_OPEN: usize = 32;

#[derive(Default)]
pub struct TeamTurns {
    inner: Mutex<Turns>,
}

#[derive(Default)]
struct Turns {
    /// Every team's turn, made on first use and kept (a turn without dossiers is a few bytes;
    /// a team's turn must stay one and the same for as long as the relay runs).
    turns: HashMap<TeamId, Arc<Mutex<TeamDocs>>>,
    /// Teams that may hold open dossiers, least recently busy first.
    recent: VecDeque<TeamId>,
}

impl TeamTurns {
    /// `team`'s turn. Teams no longer among the [`TEAMS_OPEN`] most recently busy let their
    /// open dossiers go, unless one is in its turn right now (it is let go later).
    pub fn turn(&self, team: TeamId) -> Arc<Mutex<TeamDocs>> {
        let mut t = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let turn = t
            .turns
            .entry(team)
            .or_insert_with(|| Arc::new(Mutex::new(team_docs())))
            .clone();
        t.recent.retain(|other| *other != team);
        t.recent.push_back(team);
        let mut busy = Vec::new();
        while t.recent.len() > TEAMS_OPEN {
            let Some(oldest) = t.recent.pop_front() else {
                break;
            };
            let Some(other) = t.turns.get(&oldest) else {
                continue;
            };
            match other.try_lock() {
                Ok(mut docs) => *docs = team_docs(),
                Err(TryLockError::Poisoned(p)) => *p.into_inner() = team_docs(),
                // In its turn: its dossiers are in use; it stays among the recent.
                Err(TryLockError::WouldBlock) => busy.push(oldest),
            }
        }
        for team in busy.into_iter().rev() {
            t.recent.push_front(team);
        }
        turn
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fieldbook_shared::pipeline::OpenDoc;

    fn open_one(turns: &TeamTurns, team: TeamId) {
        let turn = turns.turn(team);
        let mut docs = turn.lock().unwrap();
        docs.insert((team, "d".into()), OpenDoc::empty());
    }

    fn holds(turns: &TeamTurns, team: TeamId) -> bool {
        let t = turns.inner.lock().unwrap();
        !t.turns[&team].lock().unwrap().is_empty()
    }

    #[test]
    fn only_the_most_recently_busy_teams_keep_their_dossiers_open() {
        let turns = TeamTurns::default();
        let extra = 8;
        for team in 0..(TEAMS_OPEN + extra) as TeamId {
            open_one(&turns, team);
        }
        for team in 0..(TEAMS_OPEN + extra) as TeamId {
            assert_eq!(holds(&turns, team), team >= extra as TeamId, "team {team}");
        }
        // The same turn as before for a team whose dossiers were let go.
        let first = turns.turn(0);
        assert!(Arc::ptr_eq(&first, &turns.turn(0)));
    }

    #[test]
    fn a_team_in_its_turn_keeps_its_dossiers_until_it_is_done() {
        let turns = TeamTurns::default();
        open_one(&turns, 0);
        let zero = turns.turn(0);
        let in_turn = zero.lock().unwrap();
        for team in 1..=(TEAMS_OPEN as TeamId + 4) {
            open_one(&turns, team);
        }
        assert!(!in_turn.is_empty(), "let go while in its turn");
        drop(in_turn);
        // Once done, the next busy team lets it go.
        open_one(&turns, 1_000);
        assert!(!holds(&turns, 0));
        assert!(holds(&turns, 1_000));
    }
}
