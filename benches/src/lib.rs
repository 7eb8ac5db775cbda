//! ami's criterion benchmarks live in `benches/`; run them with
//! `cargo bench -p ami-benches`. This library is empty.
