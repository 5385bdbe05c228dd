//! `infergate-control release ...`: submits, follows and steers releases through a running
//! control process's API.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Default address of control's API.
pub const DEFAULT_CONTROL: &str = "http://127.0.0.1:9200";

/// How often `release run` polls.
const POLL: Duration = Duration::from_millis(500);

/// A client of control's release API.
pub struct Api {
    base: String,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl Api {
    pub fn new(base: &str) -> Api {
        Api {
            base: base.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Sends a request; the JSON answer on a 2xx, else the API's error in words.
    pub async fn call(&self, method: Method, path: &str, body: Vec<u8>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let req = Request::builder()
            .method(method.clone())
            .uri(&url)
            .header("content-type", "application/yaml")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let resp = tokio::time::timeout(Duration::from_secs(10), self.client.request(req))
            .await
            .map_err(|_| format!("{method} {url}: no answer within 10 s"))?
            .map_err(|e| format!("{method} {url}: {e} (is infergate-control running there?)"))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{method} {url}: {e}"))?
            .to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status == StatusCode::OK || status == StatusCode::CREATED {
            Ok(v)
        } else {
            Err(format!(
                "{method} {url}: {status}: {}",
                v["error"].as_str().unwrap_or("no error given")
            ))
        }
    }
}

/// What `release` does.
pub enum Verb<'a> {
    Run(&'a Path),
    Start(&'a Path),
    Status(Option<&'a str>),
    Abort(&'a str),
    Promote(&'a str),
}

/// Runs a verb against the control at `control`. Exit codes: 0 done (for `run`: promoted),
/// 3 rolled back or aborted (`run`), 1 on an error.
pub fn main(verb: Verb<'_>, control: &str) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let api = Api::new(control);
    match rt.block_on(verb_main(&api, verb)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn verb_main(api: &Api, verb: Verb<'_>) -> Result<ExitCode, String> {
    match verb {
        Verb::Run(spec) | Verb::Start(spec) => {
            let follow = matches!(verb, Verb::Run(_));
            let text = std::fs::read(spec).map_err(|e| format!("{}: {e}", spec.display()))?;
            let r = api
                .call(Method::POST, "/v1/releases", text)
                .await
                .map_err(|e| format!("{}: {e}", spec.display()))?;
            let name = r["name"].as_str().unwrap_or("").to_owned();
            println!(
                "release {name}: started on model {} ({} -> {}), steps {}",
                r["model"].as_str().unwrap_or(""),
                r["stable"].as_str().unwrap_or(""),
                r["canary"].as_str().unwrap_or(""),
                r["spec"]["steps"]
            );
            if follow {
                follow_release(api, &name).await
            } else {
                Ok(ExitCode::SUCCESS)
            }
        }
        Verb::Status(Some(name)) => {
            let r = api
                .call(Method::GET, &format!("/v1/releases/{name}"), Vec::new())
                .await?;
            print_status(&r);
            Ok(ExitCode::SUCCESS)
        }
        Verb::Status(None) => {
            let all = api.call(Method::GET, "/v1/releases", Vec::new()).await?;
            let list = all["releases"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                println!("no releases");
            }
            for r in &list {
                print_status(r);
            }
            Ok(ExitCode::SUCCESS)
        }
        Verb::Abort(name) | Verb::Promote(name) => {
            let action = if matches!(verb, Verb::Abort(_)) {
                "abort"
            } else {
                "promote"
            };
            let r = api
                .call(
                    Method::POST,
                    &format!("/v1/releases/{name}/{action}"),
                    Vec::new(),
                )
                .await?;
            print_status(&r);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Follows a release until it ends, one line per judged step and state change.
async fn follow_release(api: &Api, name: &str) -> Result<ExitCode, String> {
    let mut printed_steps = 0;
    let mut last_state = String::new();
    let mut failures = 0;
    loop {
        let r = match api
            .call(Method::GET, &format!("/v1/releases/{name}"), Vec::new())
            .await
        {
            Ok(r) => {
                failures = 0;
                r
            }
            // A restarting control process: keep asking for a while.
            Err(e) if failures < 60 => {
                failures += 1;
                if failures == 1 {
                    eprintln!("warning: {e}; retrying");
                }
                tokio::time::sleep(POLL).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let steps = r["steps"].as_array().cloned().unwrap_or_default();
        let total = r["spec"]["steps"].as_array().map_or(0, Vec::len);
        // Steps are appended; a step's verdict is printed once it is not pending.
        while let Some(s) = steps.get(printed_steps) {
            if s["verdict"] == "pending" {
                break;
            }
            println!("{}", step_line(name, s, total));
            printed_steps += 1;
        }
        let state = r["state"].as_str().unwrap_or("").to_owned();
        if state != last_state {
            if !matches!(state.as_str(), "running" | "pending") || !last_state.is_empty() {
                if let Some(line) = state_line(name, &r) {
                    println!("{line}");
                }
            }
            last_state = state.clone();
        }
        match state.as_str() {
            "promoted" | "rolled_back" | "aborted" => {
                if let Some(s) = r["final_split"].as_str() {
                    println!("release {name}: to make the gateway config agree, {s}");
                }
                println!(
                    "release {name}: report: {}/v1/releases/{name}/report.html",
                    api.base
                );
                return Ok(if state == "promoted" {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(3)
                });
            }
            _ => tokio::time::sleep(POLL).await,
        }
    }
}

fn secs(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_owned(), |s| format!("{:.3}s", s))
}

/// One judged step: weights, figures of both variants, each gate.
pub fn step_line(name: &str, s: &Value, total: usize) -> String {
    let c = &s["canary"];
    let st = &s["stable"];
    let gates: Vec<String> = s["gates"]
        .as_array()
        .map(|g| {
            g.iter()
                .map(|g| {
                    let verdict = if g["pass"] == true { "pass" } else { "FAIL" };
                    format!("{} {verdict}", g["name"].as_str().unwrap_or("?"))
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "release {name}: step {}/{total} canary {}%: {} | window {:.1}s | requests canary {} stable {} | TTFT p95 canary {} stable {} | TPOT p95 canary {} stable {} | errors canary {:.2}% stable {:.2}% | {}",
        s["index"].as_u64().unwrap_or(0) + 1,
        s["canary_weight"],
        s["verdict"].as_str().unwrap_or("?").to_uppercase(),
        s["window_s"].as_f64().unwrap_or(0.0),
        c["requests"],
        st["requests"],
        secs(&c["ttft_s"]["p95"]),
        secs(&st["ttft_s"]["p95"]),
        secs(&c["tpot_s"]["p95"]),
        secs(&st["tpot_s"]["p95"]),
        100.0 * c["error_rate"].as_f64().unwrap_or(0.0),
        100.0 * st["error_rate"].as_f64().unwrap_or(0.0),
        gates.join(", ")
    )
}

fn state_line(name: &str, r: &Value) -> Option<String> {
    let state = r["state"].as_str()?;
    let reason = r["reason"]
        .as_str()
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    Some(format!(
        "release {name}: {state} (canary {}%){reason}",
        r["canary_weight"]
    ))
}

fn print_status(r: &Value) {
    let name = r["name"].as_str().unwrap_or("?");
    let step = r["current_step"]
        .as_u64()
        .map(|i| {
            format!(
                ", step {}/{}",
                i + 1,
                r["spec"]["steps"].as_array().map_or(0, Vec::len)
            )
        })
        .unwrap_or_default();
    println!(
        "{name}: model {} {} ({}% canary{step}){}",
        r["model"].as_str().unwrap_or(""),
        r["state"].as_str().unwrap_or(""),
        r["canary_weight"],
        r["reason"]
            .as_str()
            .map(|s| format!(": {s}"))
            .unwrap_or_default()
    );
    if let Some(e) = r["read_error"].as_str() {
        println!("  last read failed: {e}");
    }
}
