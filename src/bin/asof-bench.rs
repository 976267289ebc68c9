//! `asof-bench`: tools for benchmarking asof (history generator).

fn main() {
    eprintln!("asof-bench: not built yet");
    std::process::exit(2);
}
