//! The built-in planners' declarations. Each planner says, next to its type
//! (its `declaration()` in its own file), its name, a one-line summary, its
//! parameter schema and its constructor, in one [`PlannerDecl`] value.
//! Agent files (`implementation = "cem"`), `ami run --planner`, `ami bench
//! --planner`, `ami check` messages and the docs' implementation table all
//! read these values, so adding a planner is one new file with its
//! `declaration()` plus one line in [`builtin`].

pub use crate::declaration::{build_from_settings, BuildPlanner, FromSettings, PlannerDecl};
use crate::{Beam, Cem, DiscreteCem, Gd, Mppi};

/// The planners built into ami, in the order listings show them.
pub fn builtin() -> Vec<PlannerDecl> {
    vec![Cem::declaration(), Mppi::declaration(), Gd::declaration(), DiscreteCem::declaration(), Beam::declaration()]
}

/// The built-in planner called `name`.
pub fn find(name: &str) -> Option<PlannerDecl> {
    builtin().into_iter().find(|d| d.name == name)
}

/// The names of the built-in planners, comma-separated (for messages).
pub fn names() -> String {
    builtin().iter().map(|d| d.name).collect::<Vec<_>>().join(", ")
}
