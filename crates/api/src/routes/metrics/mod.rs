pub mod names;
pub mod prometheus;
pub mod series;
