//! The Fieldbook relay: a full Automerge peer for each team's devices. It merges what they
//! send, stores it durably (acknowledging only after the commit), and pushes changes live to
//! the team's other connected devices.

pub mod accounts;
pub mod auth;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod cores;
pub mod http;
pub mod private_ca;
pub mod quiet;
pub mod replica;
pub mod serve;
pub mod store;
pub mod team;
pub mod throttle;
pub mod tls;
pub mod turns;
pub mod web;
