//! Tests of the job context.

use std::path::PathBuf;
use std::sync::Arc;

use super::JobCtx;
use crate::hooks::Hooks;
use crate::job::Tuning;
use crate::progress::Progress;

fn ctx(tuning: Tuning) -> JobCtx {
    JobCtx::new(
        PathBuf::new(),
        tuning,
        Arc::new(Progress::new()),
        Hooks::default(),
    )
}

#[test]
fn connections_are_shared_by_the_files_in_flight() {
    let tuned = |parallel_files, parallel_ranges, max_connections| Tuning {
        parallel_files,
        parallel_ranges,
        max_connections,
        ..Tuning::default()
    };
    let c = ctx(tuned(4, 8, 16));
    for (left, ranges) in [(10, 4), (4, 4), (3, 5), (2, 8), (1, 8)] {
        c.progress.set_totals(left, 0);
        assert_eq!(c.ranges_per_file(), ranges, "{left} files left");
    }
    // Fewer connections than files: fewer files at once, one range each.
    let t = tuned(4, 8, 2);
    assert_eq!(t.files_in_flight(), 2);
    let c = ctx(t);
    c.progress.set_totals(10, 0);
    assert_eq!(c.ranges_per_file(), 1);
    c.progress.set_totals(1, 0);
    assert_eq!(c.ranges_per_file(), 2);
    // parallel_ranges is the per-file cap.
    let c = ctx(tuned(2, 3, 100));
    c.progress.set_totals(5, 0);
    assert_eq!(c.ranges_per_file(), 3);
    c.progress.file_done();
    c.progress.file_done();
    c.progress.file_done();
    c.progress.file_done();
    c.progress.file_done();
    c.progress.file_done();
    assert_eq!(c.progress.files_left(), 0);
}
