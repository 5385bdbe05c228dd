//! `infergate-fake-podresources --socket PATH --state FILE`: a fake kubelet PodResources
//! server for tests and local runs. Each `List` call reads FILE (JSON, see
//! [`infergate_podresources::fake::FakeState`]), so a test changes the answer by rewriting it;
//! an unreadable FILE answers with gRPC status INTERNAL.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use infergate_podresources::fake::{self, FakeState, FakeStatus, Source};
use infergate_podresources::grpc::code;

const USAGE: &str = "usage: infergate-fake-podresources --socket PATH --state FILE";

fn main() -> ExitCode {
    let mut socket = None;
    let mut state = None;
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("--socket") => socket = args.next().map(PathBuf::from),
            Some("--state") => state = args.next().map(PathBuf::from),
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(socket), Some(state)) = (socket, state) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let listener = match fake::bind(&socket) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {}: {e}", socket.display());
                return ExitCode::FAILURE;
            }
        };
        let source: Source = Arc::new(move || read_state(&state));
        println!("listening on unix:{}", socket.display());
        fake::serve(listener, source, Arc::new(AtomicU64::new(0))).await;
        ExitCode::SUCCESS
    })
}

fn read_state(path: &std::path::Path) -> FakeState {
    let parsed = std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice::<FakeState>(&b).map_err(|e| e.to_string()));
    parsed.unwrap_or_else(|e| FakeState {
        status: Some(FakeStatus {
            code: code::INTERNAL,
            message: format!("cannot read the state file {}: {e}", path.display()),
        }),
        ..FakeState::default()
    })
}
