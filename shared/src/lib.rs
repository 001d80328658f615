//! Fieldbook's shared core: the client dossier as an Automerge document, its projections and
//! validation. No IO here, so the same code runs on the device, in the relay and in the
//! browser (wasm).

pub mod api;
pub mod board;
pub mod conflict;
mod day;
pub mod document;
pub mod history;
pub mod import;
mod keep_conflicts;
pub mod model;
mod note;
pub mod patch;
pub mod pipeline;
pub mod sheet;
pub mod summary;
pub mod sync;
mod tags;
pub mod validate;
pub mod vocab;

pub use day::{BadDay, Day};
pub use model::*;
pub use note::Note;
pub use tags::Tags;
pub use vocab::*;

/// Errors in domain input: what a user typed or a caller passed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    #[error("unknown {vocabulary} `{word}`; expected one of: {expected}")]
    UnknownWord {
        vocabulary: &'static str,
        word: String,
        expected: String,
    },
    #[error("no field `{path}` in a dossier")]
    NoSuchField { path: String },
    #[error("nothing at `{path}`: no item with that id")]
    NoSuchItem { path: String },
    #[error("`{path}` is not a collection of items")]
    NotACollection { path: String },
    #[error("invalid value for `{path}`: {reason}")]
    BadValue { path: String, reason: String },
    #[error(transparent)]
    Invalid(#[from] validate::Invalid),
    // The document-level errors are large and rare: boxed, so that every `Result` carrying a
    // `DomainError` stays small.
    #[error("the document is not a readable dossier: {0}")]
    Hydrate(Box<autosurgeon::HydrateError>),
    #[error("could not write the dossier into its document: {0}")]
    Reconcile(Box<autosurgeon::ReconcileError>),
    #[error("automerge: {0}")]
    Automerge(Box<automerge::AutomergeError>),
}

impl From<autosurgeon::HydrateError> for DomainError {
    fn from(e: autosurgeon::HydrateError) -> Self {
        DomainError::Hydrate(Box::new(e))
    }
}

impl From<autosurgeon::ReconcileError> for DomainError {
    fn from(e: autosurgeon::ReconcileError) -> Self {
        DomainError::Reconcile(Box::new(e))
    }
}

impl From<automerge::AutomergeError> for DomainError {
    fn from(e: automerge::AutomergeError) -> Self {
        DomainError::Automerge(Box::new(e))
    }
}
