//! Positioned, vectored writes into a `.partial`.

use std::fs::File;
use std::io;
use std::path::Path;

use crate::hooks::Hooks;
use crate::io_errors::write_error;
use crate::outcome::Fail;

/// Writes `bufs` at `offset` of the `.partial` with `pwritev`, continuing after short writes,
/// after the test hook.
pub(crate) fn write_vectored<B: AsRef<[u8]>>(
    hooks: &Hooks,
    file: &File,
    path: &str,
    partial: &Path,
    bufs: &[B],
    mut offset: u64,
) -> Result<(), Fail> {
    let fail = |e: io::Error| Fail::Fatal(write_error(path, partial, e));
    if let Some(hook) = &hooks.before_write {
        let len = bufs.iter().map(|b| b.as_ref().len()).sum();
        hook(path, offset, len).map_err(fail)?;
    }
    let mut slices: Vec<io::IoSlice<'_>> =
        bufs.iter().map(|b| io::IoSlice::new(b.as_ref())).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let written = match rustix::io::pwritev(file, rest, offset) {
            Ok(0) => return Err(fail(io::Error::from(io::ErrorKind::WriteZero))),
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(fail(e.into())),
        };
        offset += written as u64;
        io::IoSlice::advance_slices(&mut rest, written);
    }
    Ok(())
}
