//! A file's `.partial`: opened fresh or resumed from its sidecar, and put into place once
//! verified.

mod finalize;
mod open;
mod state;

pub(crate) use finalize::finalize;
pub(crate) use open::open_partial;
pub(crate) use state::PartialState;
