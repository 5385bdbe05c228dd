//! The library's state: reference-counted like NVML, with the world of the current scenario.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::scenario::Scenario;
use crate::world::World;

/// The environment variable naming the scenario file.
pub const SCENARIO_ENV: &str = "INFERGATE_FAKE_NVML_SCENARIO";

pub(crate) struct Lib {
    pub(crate) refs: u32,
    pub(crate) world: Option<Arc<World>>,
}

pub(crate) static LIB: Mutex<Lib> = Mutex::new(Lib {
    refs: 0,
    world: None,
});

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn load_scenario() -> Result<Scenario, String> {
    match std::env::var_os(SCENARIO_ENV) {
        None => Ok(Scenario::one_gpu()),
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!("cannot read {SCENARIO_ENV}={}: {e}", path.to_string_lossy())
            })?;
            Scenario::parse(&text).map_err(|e| format!("scenario {}: {e}", path.to_string_lossy()))
        }
    }
}
