//! Load-balancing decisions. Sans-IO: state is owned by the caller (one per worker and service).

pub mod wrr;
