//! Edits of kit files shared by all targets; each target calls them with its own values.

pub mod comm;
pub mod resources;
pub mod scripts;
pub mod storage;
pub mod study;
