//! A manager's word on a dossier: a comment, and optionally a follow-up assigned to a rep,
//! written as one edit so the rep's device receives both together on its next sync.

use serde::{Deserialize, Serialize};

use crate::{Assignee, Comment, Day, DomainError, Dossier, FollowUp, FollowUpKind};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ManagerNote {
    pub text: String,
    /// Assign a follow-up to this rep (user name); None: a comment only.
    pub rep: Option<String>,
    pub action: String,
    pub due: Option<Day>,
    pub kind: Option<FollowUpKind>,
}

/// Ids for what [`add_note`] creates (made by the caller: ids come from the device or relay).
pub struct NoteIds {
    pub comment: String,
    pub follow_up: String,
}

/// `dossier` with the note added by `author` on `today`.
pub fn add_note(
    dossier: &Dossier,
    note: &ManagerNote,
    ids: &NoteIds,
    author: &str,
    today: Day,
) -> Result<Dossier, DomainError> {
    let bad = |path: &str, reason: &str| DomainError::BadValue {
        path: path.into(),
        reason: reason.into(),
    };
    let rep = note.rep.as_deref().map(str::trim).filter(|r| !r.is_empty());
    if rep.is_none() && note.text.trim().is_empty() {
        return Err(bad("comments", "write a comment or assign a follow-up"));
    }
    if rep.is_some() && note.action.trim().is_empty() {
        return Err(bad("follow_ups", "say what the rep should do"));
    }
    if dossier.comments.contains_key(&ids.comment)
        || dossier.follow_ups.contains_key(&ids.follow_up)
    {
        return Err(bad("comments", "an item with this id already exists"));
    }
    let mut next = dossier.clone();
    let follow_up = rep.map(|rep| {
        next.follow_ups.insert(
            ids.follow_up.clone(),
            FollowUp {
                due: note.due,
                kind: note.kind,
                assignee: Some(Assignee::Rep),
                assignee_name: rep.to_string(),
                action: note.action.trim().to_string(),
                ..FollowUp::default()
            },
        );
        ids.follow_up.clone()
    });
    next.comments.insert(
        ids.comment.clone(),
        Comment {
            on: Some(today),
            author: author.to_string(),
            text: note.text.trim().to_string(),
            follow_up,
            deleted_at: None,
        },
    );
    Ok(next)
}
