//! The subcommands of `ami`.

pub mod run;
