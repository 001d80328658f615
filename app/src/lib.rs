//! The Fieldbook device: the local dossier store and the services over it (the engine), used
//! by the `fieldbook` CLI and the app window. Only the `desktop` feature brings in Tauri; the
//! rest needs neither a network nor a window.

pub mod cli;
pub mod clock;
#[cfg(feature = "desktop")]
pub mod desktop;
pub mod engine;
pub mod exchange;
mod files;
pub mod import;
pub mod secrets;
pub mod service;
pub mod sheet_file;
pub mod store;
pub mod sync;
pub mod synth;
mod words;

pub use engine::{Engine, EngineError, Meeting};
