//! Tests of the command line: endpoints, redaction, parsing.

use clap::Parser;

use super::args::{Cli, Cmd};
use super::endpoint::endpoint;
use super::redact::redact;
use crate::bench::workload::Api;

#[test]
fn endpoints() {
    let e = |u: &str, api| endpoint(u, api).map(|x| x.to_string());
    assert_eq!(
        e("http://127.0.0.1:9100", Api::Chat).unwrap(),
        "http://127.0.0.1:9100/v1/chat/completions"
    );
    assert_eq!(
        e("http://h:1/", Api::Completions).unwrap(),
        "http://h:1/v1/completions"
    );
    assert_eq!(
        e("http://h:1/openai/v1/", Api::Chat).unwrap(),
        "http://h:1/openai/v1/chat/completions"
    );
    assert_eq!(
        e("http://h:1/custom/path?x=1", Api::Chat).unwrap(),
        "http://h:1/custom/path?x=1"
    );
    assert!(e("https://h", Api::Chat).is_err());
    assert!(e("h:1", Api::Chat).is_err());
    assert!(e("not a url", Api::Chat).is_err());
}

#[test]
fn secrets_are_redacted() {
    let argv: Vec<String> = [
        "infergate-bench",
        "run",
        "--api-key",
        "sk-1",
        "--api-key=sk-2",
        "-H",
        "Authorization: Bearer x",
        "-H",
        "x-sim-fault: none",
        "--header=x-api-key: y",
        "-Hcookie: z",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let r = redact(&argv).join(" ");
    assert!(!r.contains("sk-1") && !r.contains("sk-2"), "{r}");
    assert!(
        !r.contains("Bearer x") && !r.contains(": y") && !r.contains(": z"),
        "{r}"
    );
    assert!(r.contains("x-sim-fault: none"));
}

#[test]
fn cli_parses() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
    let c = Cli::try_parse_from([
        "infergate-bench",
        "run",
        "--url",
        "http://h:1",
        "--model",
        "m",
        "--rates",
        "1,2.5",
        "--slo",
        "ttft=500ms",
    ])
    .unwrap();
    let Cmd::Run(a) = c.cmd else { panic!() };
    assert_eq!(a.rates, vec![1.0, 2.5]);
    assert!(Cli::try_parse_from([
        "infergate-bench",
        "run",
        "--url",
        "http://h:1",
        "--model",
        "m",
        "--rate",
        "1",
        "--concurrency",
        "2"
    ])
    .is_err());
}
