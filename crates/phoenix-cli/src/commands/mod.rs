//! One module per command: each defines its arguments and calls one library operation, then
//! prints the result. Shared argument shapes live in `crate::context`.

pub mod assess;
pub mod certs;
pub mod completions;
pub mod explain;
pub mod graph;
pub mod guest;
pub mod lab;
pub mod man;
pub mod render;
pub mod schema;
pub mod status;
pub mod sync;
pub mod validate;

/// Output of commands that print a listing or its JSON document.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum TextOrJson {
    Text,
    Json,
}
