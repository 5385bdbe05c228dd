//! The scenario file: devices and a timeline (see the crate documentation).

use std::time::Duration;

use nvml_wrapper_sys::bindings::*;
use serde::{de, Deserialize, Deserializer};

/// A duration: `3s`, `500ms`, `1.5s`, `2m`, or a number of seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(f64),
            Text(String),
        }
        let secs = match Raw::deserialize(d)? {
            Raw::Secs(s) => s,
            Raw::Text(t) => parse_secs(&t).map_err(de::Error::custom)?,
        };
        if !secs.is_finite() || !(0.0..=1.0e9).contains(&secs) {
            return Err(de::Error::custom(format!(
                "duration {secs} s is out of range"
            )));
        }
        Ok(Dur(Duration::from_secs_f64(secs)))
    }
}

fn parse_secs(t: &str) -> Result<f64, String> {
    let t = t.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("duration {t:?} does not start with a number"))?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("duration {t:?} has unknown unit {other:?}")),
    };
    Ok(v * scale)
}

/// An NVML return code: a name (`unknown`, `gpu_is_lost`, ...) or a number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Code(pub nvmlReturn_t);

pub fn code_by_name(name: &str) -> Option<nvmlReturn_t> {
    let n = name
        .trim()
        .to_ascii_lowercase()
        .trim_start_matches("nvml_error_")
        .to_string();
    Some(match n.as_str() {
        "uninitialized" => nvmlReturn_enum_NVML_ERROR_UNINITIALIZED,
        "invalid_argument" => nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT,
        "not_supported" => nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED,
        "no_permission" => nvmlReturn_enum_NVML_ERROR_NO_PERMISSION,
        "not_found" => nvmlReturn_enum_NVML_ERROR_NOT_FOUND,
        "insufficient_power" => nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_POWER,
        "driver_not_loaded" => nvmlReturn_enum_NVML_ERROR_DRIVER_NOT_LOADED,
        "timeout" => nvmlReturn_enum_NVML_ERROR_TIMEOUT,
        "irq_issue" => nvmlReturn_enum_NVML_ERROR_IRQ_ISSUE,
        "library_not_found" => nvmlReturn_enum_NVML_ERROR_LIBRARY_NOT_FOUND,
        "corrupted_inforom" => nvmlReturn_enum_NVML_ERROR_CORRUPTED_INFOROM,
        "gpu_is_lost" | "gpu_lost" => nvmlReturn_enum_NVML_ERROR_GPU_IS_LOST,
        "reset_required" => nvmlReturn_enum_NVML_ERROR_RESET_REQUIRED,
        "lib_rm_version_mismatch" => nvmlReturn_enum_NVML_ERROR_LIB_RM_VERSION_MISMATCH,
        "unknown" => nvmlReturn_enum_NVML_ERROR_UNKNOWN,
        _ => return None,
    })
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(u32),
            Name(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => Ok(Code(n)),
            Raw::Name(s) => code_by_name(&s)
                .map(Code)
                .ok_or_else(|| de::Error::custom(format!("unknown NVML error {s:?}"))),
        }
    }
}

/// The driver's recovery action: a name or the raw field value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recovery(pub u32);

impl<'de> Deserialize<'de> for Recovery {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(u32),
            Name(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => Ok(Recovery(n)),
            Raw::Name(s) => Ok(Recovery(match s.to_ascii_lowercase().as_str() {
                "none" => 0,
                "gpu_reset" => 1,
                "node_reboot" => 2,
                "drain_p2p" => 3,
                "drain_and_reset" => 4,
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown recovery action {other:?}"
                    )))
                }
            })),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetiredPagesSpec {
    pub single_bit: u32,
    pub double_bit: u32,
    pub pending: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemappedRowsSpec {
    pub correctable: u32,
    pub uncorrectable: u32,
    pub pending: bool,
    pub failure: bool,
}

/// Device values, every one optional: the initial device (over the defaults) and `set`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevicePatch {
    pub uuid: Option<String>,
    pub name: Option<String>,
    #[serde(alias = "temperature")]
    pub temperature_c: Option<u32>,
    #[serde(alias = "power")]
    pub power_w: Option<f64>,
    #[serde(alias = "memory_used")]
    pub memory_used_bytes: Option<u64>,
    #[serde(alias = "memory_total")]
    pub memory_total_bytes: Option<u64>,
    pub ecc_volatile_uncorrected: Option<u64>,
    pub ecc_aggregate_uncorrected: Option<u64>,
    pub ecc_volatile_corrected: Option<u64>,
    pub ecc_aggregate_corrected: Option<u64>,
    pub retired_pages: Option<RetiredPagesSpec>,
    pub remapped_rows: Option<RemappedRowsSpec>,
    pub throttle_reasons: Option<u64>,
    #[serde(alias = "pcie_replays")]
    pub pcie_replay_count: Option<u32>,
    pub recovery_action: Option<Recovery>,
    /// NVML functions that answer NVML_ERROR_NOT_SUPPORTED (a name also covers its `_v2`).
    pub unsupported: Option<Vec<String>>,
    /// Field value ids (`nvmlDeviceGetFieldValues`) that answer NVML_ERROR_NOT_SUPPORTED.
    pub unsupported_fields: Option<Vec<u32>>,
}

/// One device's current values.
#[derive(Clone, Debug, PartialEq)]
pub struct Device {
    pub uuid: String,
    pub name: String,
    pub temperature_c: u32,
    pub power_w: f64,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
    pub ecc_volatile_uncorrected: u64,
    pub ecc_aggregate_uncorrected: u64,
    pub ecc_volatile_corrected: u64,
    pub ecc_aggregate_corrected: u64,
    pub retired_pages: RetiredPagesSpec,
    pub remapped_rows: RemappedRowsSpec,
    pub throttle_reasons: u64,
    pub pcie_replay_count: u32,
    pub recovery_action: u32,
    pub unsupported: Vec<String>,
    pub unsupported_fields: Vec<u32>,
    pub lost: bool,
}

impl Device {
    pub fn defaults(index: usize) -> Self {
        Device {
            uuid: format!("GPU-fa4e0000-0000-4000-8000-{index:012}"),
            name: "NVIDIA H100 80GB HBM3".to_string(),
            temperature_c: 40,
            power_w: 100.0,
            memory_used_bytes: 0,
            memory_total_bytes: 80 << 30,
            ecc_volatile_uncorrected: 0,
            ecc_aggregate_uncorrected: 0,
            ecc_volatile_corrected: 0,
            ecc_aggregate_corrected: 0,
            retired_pages: RetiredPagesSpec::default(),
            remapped_rows: RemappedRowsSpec::default(),
            throttle_reasons: 0,
            pcie_replay_count: 0,
            recovery_action: 0,
            unsupported: Vec::new(),
            unsupported_fields: Vec::new(),
            lost: false,
        }
    }

    pub fn apply(&mut self, p: &DevicePatch) {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = &p.$f { self.$f = v.clone(); } )* };
        }
        set!(
            uuid,
            name,
            temperature_c,
            power_w,
            memory_used_bytes,
            memory_total_bytes,
            ecc_volatile_uncorrected,
            ecc_aggregate_uncorrected,
            ecc_volatile_corrected,
            ecc_aggregate_corrected,
            retired_pages,
            remapped_rows,
            throttle_reasons,
            pcie_replay_count,
            unsupported,
            unsupported_fields
        );
        if let Some(r) = p.recovery_action {
            self.recovery_action = r.0;
        }
    }

    /// Whether `call` answers NOT_SUPPORTED on this device.
    pub fn unsupported(&self, call: &str) -> bool {
        self.unsupported.iter().any(|u| call_matches(u, call))
    }
}

/// A scenario name matches a function name exactly or without its `_v2` suffix.
pub fn call_matches(pattern: &str, call: &str) -> bool {
    pattern == call || call.strip_suffix("_v2") == Some(pattern)
}

/// One timeline entry: exactly one of `xid`, `set`, `lost`, `hang`, `fail`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// When, after the first `nvmlInit`.
    pub at: Dur,
    /// The GPU index (required for `xid`, `set`, `lost`; for `hang` and `fail`, absent means
    /// every GPU and the system-level calls).
    #[serde(default)]
    pub gpu: Option<u32>,
    /// Deliver this XID through the event sets registered for the GPU.
    #[serde(default)]
    pub xid: Option<u64>,
    /// Change device values.
    #[serde(default)]
    pub set: Option<DevicePatch>,
    /// `true`: every call on the GPU answers NVML_ERROR_GPU_IS_LOST; `false`: it is back.
    #[serde(default)]
    pub lost: Option<bool>,
    /// Calls of this function (made from `at` until `at + for`) block until `at + for`
    /// (forever without `for`).
    #[serde(default)]
    pub hang: Option<String>,
    /// Calls of this function (from `at` until `at + for`, or forever) answer `with`.
    #[serde(default)]
    pub fail: Option<String>,
    /// The error `fail` answers. Default `unknown`.
    #[serde(default)]
    pub with: Option<Code>,
    #[serde(default, rename = "for")]
    pub duration: Option<Dur>,
}

/// The scenario file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    /// `nvmlSystemGetDriverVersion`. Default `550.54.15`.
    pub driver_version: Option<String>,
    /// Make `nvmlInit` fail with this error.
    pub init_error: Option<Code>,
    pub devices: Vec<DevicePatch>,
    pub timeline: Vec<Entry>,
}

impl Scenario {
    pub fn parse(text: &str) -> Result<Scenario, String> {
        let s: Scenario = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        s.validate()?;
        Ok(s)
    }

    /// The default scenario (no file): one healthy GPU.
    pub fn one_gpu() -> Scenario {
        Scenario {
            devices: vec![DevicePatch::default()],
            ..Scenario::default()
        }
    }

    fn validate(&self) -> Result<(), String> {
        let n = self.devices.len();
        for (i, e) in self.timeline.iter().enumerate() {
            let kinds = [
                e.xid.is_some(),
                e.set.is_some(),
                e.lost.is_some(),
                e.hang.is_some(),
                e.fail.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if kinds != 1 {
                return Err(format!(
                    "timeline entry {i}: needs exactly one of xid, set, lost, hang, fail"
                ));
            }
            let needs_gpu = e.xid.is_some() || e.set.is_some() || e.lost.is_some();
            match e.gpu {
                None if needs_gpu => {
                    return Err(format!("timeline entry {i}: needs `gpu`"));
                }
                Some(g) if g as usize >= n => {
                    return Err(format!(
                        "timeline entry {i}: gpu {g} does not exist ({n} devices)"
                    ));
                }
                _ => {}
            }
            if e.duration.is_some() && e.hang.is_none() && e.fail.is_none() {
                return Err(format!(
                    "timeline entry {i}: `for` only goes with hang or fail"
                ));
            }
            if e.with.is_some() && e.fail.is_none() {
                return Err(format!("timeline entry {i}: `with` only goes with fail"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let s = Scenario::parse(
            r#"
driver_version: "560.35.03"
devices:
  - uuid: GPU-aaaa
    temperature: 45
    remapped_rows: { correctable: 2, pending: true }
    recovery_action: gpu_reset
  - power_w: 350.5
    unsupported: [nvmlDeviceGetRetiredPages]
    unsupported_fields: [230]
timeline:
  - { at: 1s, gpu: 1, xid: 79 }
  - { at: 5s, gpu: 0, set: { temperature: 97 } }
  - { at: 2s, gpu: 0, hang: nvmlDeviceGetTemperature, for: 10s }
  - { at: 4s, gpu: 1, lost: true }
  - { at: 500ms, fail: nvmlDeviceGetPowerUsage, with: unknown, for: 1.5 }
"#,
        )
        .unwrap();
        assert_eq!(s.devices.len(), 2);
        assert_eq!(s.timeline.len(), 5);
        assert_eq!(
            s.timeline[4].duration,
            Some(Dur(Duration::from_millis(1500)))
        );
        assert_eq!(s.timeline[4].with, Some(Code(999)));
        let mut d = Device::defaults(0);
        d.apply(&s.devices[0]);
        assert_eq!(d.temperature_c, 45);
        assert_eq!(d.recovery_action, 1);
        assert!(d.remapped_rows.pending);
    }

    #[test]
    fn rejects_bad_entries() {
        let e = Scenario::parse("devices: [{}]\ntimeline: [{ at: 1s, xid: 79 }]").unwrap_err();
        assert!(e.contains("needs `gpu`"), "{e}");
        let e =
            Scenario::parse("devices: [{}]\ntimeline: [{ at: 1s, gpu: 3, xid: 79 }]").unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        let e = Scenario::parse("devices: [{ temprature: 3 }]").unwrap_err();
        assert!(e.contains("temprature"), "{e}");
    }

    #[test]
    fn v2_names_match() {
        assert!(call_matches(
            "nvmlDeviceGetMemoryInfo",
            "nvmlDeviceGetMemoryInfo_v2"
        ));
        assert!(call_matches(
            "nvmlDeviceGetTemperature",
            "nvmlDeviceGetTemperature"
        ));
        assert!(!call_matches(
            "nvmlDeviceGetTemperature",
            "nvmlDeviceGetTemperatureThreshold"
        ));
    }
}
