//! End-to-end tests: the real `cloudkeep` binary as server, agent, `up` and CLI, talking over loopback.

mod harness;

mod backfill;
mod backup;
mod backup_catalog;
mod bad_input;
mod collect_in;
mod durability;
mod enrolment;
mod keys;
mod notifications;
mod postgres;
mod up;
