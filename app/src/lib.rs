//! The Fieldbook device: the local dossier store and the services over it (the engine), used
//! by the `fieldbook` CLI and, later, the Tauri shell. Nothing here needs a network or a window.

pub mod cli;
pub mod clock;
pub mod engine;
pub mod exchange;
pub mod store;
pub mod sync;
pub mod synth;

pub use engine::{Engine, EngineError, Meeting};
