//! The query language: values and paths the server's way, filters, projections, updates,
//! aggregation expressions and pipelines. Pure functions over documents, no I/O; each parser
//! refuses what it does not implement through [`crate::mongo::refuse`].

pub(crate) mod expr;
pub(crate) mod matcher;
pub(crate) mod path;
pub(crate) mod pipeline;
pub(crate) mod projection;
pub(crate) mod regex;
pub(crate) mod update;
pub(crate) mod value;

pub(crate) use matcher::{Filter, Sort};
pub(crate) use pipeline::Pipeline;
pub(crate) use projection::Projection;
pub(crate) use update::Update;
