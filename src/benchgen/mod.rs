//! Deterministic generator of realistic archive histories, for benchmarks and tests.
//! (Being written: see benches/README.md.)
