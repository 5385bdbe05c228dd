//! `infergate-bench`: a load tester for OpenAI-compatible LLM servers.
//!
//! `infergate-bench run --url URL --model NAME [--rate R | --concurrency C | --rates ... |
//! --concurrencies ...] [--requests N | --duration D] [--out FILE.json] [--report FILE.html]`,
//! `infergate-bench compare A.json B.json ...`, `infergate-bench report RUN.json --out FILE.html`.
//! See `infergate_loadtest::bench` and `docs/bench.md`.

use std::process::ExitCode;

fn main() -> ExitCode {
    infergate_loadtest::bench::cli::main()
}
