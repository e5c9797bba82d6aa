//! Rule evaluation tests through the public API: one test binary, one module per theme.

mod check_status;
mod exhaustive;
mod persistence;
mod properties;
mod semantics;
mod support;
mod validation;
