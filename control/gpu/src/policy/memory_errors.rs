//! Findings about GPU memory: uncorrected ECC errors, retired pages, row remapping.

use crate::health::{Finding, GpuReading};

use super::config::PolicyConfig;
use super::finding::finding;

/// The memory-error findings of one reading.
pub(super) fn memory_findings(c: &PolicyConfig, g: &GpuReading) -> Vec<Finding> {
    let i = g.index;
    let mut out = Vec::new();
    if let Some(n) = g.ecc_volatile_uncorrected.filter(|n| *n > 0) {
        out.push(finding(
            i,
            "ecc_volatile_uncorrected",
            c.ecc_volatile_uncorrected,
            format!("{n} uncorrected ECC errors since the driver loaded"),
        ));
    }
    if let Some(rp) = &g.retired_pages {
        let total = rp.single_bit + rp.double_bit;
        if total >= c.retired_pages.total_limit {
            out.push(finding(
                i,
                "retired_pages_limit",
                c.retired_pages.limit,
                format!(
                    "{total} retired pages (limit {}): replace the GPU",
                    c.retired_pages.total_limit
                ),
            ));
        } else if rp.double_bit >= c.retired_pages.double_bit_limit {
            out.push(finding(
                i,
                "retired_pages_limit",
                c.retired_pages.limit,
                format!(
                    "{} pages retired for double-bit errors (limit {}): replace the GPU",
                    rp.double_bit, c.retired_pages.double_bit_limit
                ),
            ));
        }
        if rp.pending {
            out.push(finding(
                i,
                "retired_pages_pending",
                c.retired_pages.pending,
                "page retirement pending: takes effect at the next GPU reset".into(),
            ));
        }
    }
    if let Some(rr) = &g.remapped_rows {
        if rr.failure {
            out.push(finding(
                i,
                "row_remap_failure",
                c.row_remap.failure,
                "row remapping failed: no spare rows left (RMA candidate)".into(),
            ));
        }
        if rr.pending {
            out.push(finding(
                i,
                "row_remap_pending",
                c.row_remap.pending,
                "row remapping pending: takes effect at the next GPU reset".into(),
            ));
        }
        if rr.uncorrectable >= c.row_remap.uncorrectable_limit {
            out.push(finding(
                i,
                "row_remap_uncorrectable",
                c.row_remap.uncorrectable,
                format!(
                    "{} rows remapped for uncorrectable errors (limit {})",
                    rr.uncorrectable, c.row_remap.uncorrectable_limit
                ),
            ));
        }
    }
    out
}
