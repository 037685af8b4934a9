//! Reports built from the event stream: firedrill's JSON drill report and the console.

pub mod console;
pub mod html;
pub mod json;
