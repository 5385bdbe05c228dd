//! Hot reload triggers: the config file changing (polled) and SIGHUP. Each asks the writer
//! ([`crate::writer`]) to read the file and apply it; `POST /admin/reload` asks it directly. A
//! config that fails keeps the old one serving and is reported in the log, in
//! `infergate_config_reloads_total{result="failure"}` and in `GET /admin/config`.
//!
//! The watcher compares the file's content, read through symlinks, with the last content it
//! read: a change is seen whatever happened to the file's modification time. It reads the
//! content only when the file's identity or status changed since the last read (device, inode,
//! size, modification or status-change time; a write always moves the status-change time, which
//! no tool can set back), or while that time is recent enough for the clock's granularity to
//! hide a second write. A
//! Kubernetes ConfigMap volume is a directory where `gateway.yaml` links to
//! `..data/gateway.yaml` and `..data` links to a timestamped directory; the kubelet updates it
//! by writing a new timestamped directory, renaming a new link over `..data` (atomic) and
//! removing the old directory. The path resolves to the old file or to the new one at every
//! instant, so a poll sees the old content or the new, never a missing file, and the removal
//! of the old directory changes nothing that the watcher reads.

use std::path::PathBuf;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::status::Trigger;
use crate::writer::WriterHandle;

/// Watches the config at `path` (every `poll`) and SIGHUP.
pub fn spawn(writer: WriterHandle, path: PathBuf, poll: Duration) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    let watcher = writer.clone();
    tasks.push(tokio::spawn(async move {
        // No stamp yet: the first check reads the file and compares its content with the config
        // being served (the writer skips an unchanged text), so a change written between the
        // start-up read and this task's first run is not missed.
        let mut last = None;
        let mut last_meta = None;
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let meta = meta_stamp(&path).await;
            if meta.is_some() && meta == last_meta && !recent(meta) {
                continue;
            }
            last_meta = meta;
            let now = file_stamp(&path).await;
            if now != last {
                last = now;
                watcher.trigger(Trigger::FileChanged);
            }
        }
    }));

    #[cfg(unix)]
    {
        let hup = writer;
        tasks.push(tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::hangup()) {
                Ok(mut s) => {
                    while s.recv().await.is_some() {
                        hup.trigger(Trigger::Signal);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch SIGHUP; reload by file or admin API")
                }
            }
        }));
    }
    tasks
}

/// What changes when the file is replaced or written: (device, inode, size, modification time,
/// status-change time), through symlinks; `None` while it cannot be read.
type MetaStamp = (u64, u64, u64, std::time::SystemTime, (i64, i64));

#[cfg(not(unix))]
async fn meta_stamp(_: &std::path::Path) -> Option<MetaStamp> {
    None
}

#[cfg(unix)]
async fn meta_stamp(path: &std::path::Path) -> Option<MetaStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = tokio::fs::metadata(path).await.ok()?;
    Some((
        m.dev(),
        m.ino(),
        m.len(),
        m.modified().ok()?,
        (m.ctime(), m.ctime_nsec()),
    ))
}

/// Whether the stamp's status change is within the last 2 s: a second write in the same tick
/// of the file system's clock would leave the stamp as it was, so such a file is read anyway.
fn recent(stamp: Option<MetaStamp>) -> bool {
    let Some((.., (secs, _))) = stamp else {
        return true;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    u64::try_from(secs).map_or(true, |s| now.saturating_sub(s) < 2)
}

/// The hash of the file's content (FNV-1a 64), read through symlinks; `None` while the file
/// cannot be read.
async fn file_stamp(path: &std::path::Path) -> Option<u64> {
    let bytes = tokio::fs::read(path).await.ok()?;
    Some(crate::route::fnv1a64(&bytes))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use super::*;
    use crate::gateway::Gateway;
    use crate::metrics::Metrics;

    fn config(model: &str) -> String {
        format!(
            "listeners: {{ data: {{ address: '127.0.0.1:0' }}, admin: {{ address: '127.0.0.1:0' }} }}\n\
             backends: [{{ name: b, endpoints: [{{ url: 'http://127.0.0.1:1' }}] }}]\n\
             models: [{{ name: {model}, backend: b }}]\n"
        )
    }

    #[tokio::test]
    async fn a_change_made_before_the_watcher_first_runs_is_applied() {
        let served = config("old");
        let dir = std::env::temp_dir().join(format!("infergate-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gateway.yaml");
        // The file already differs from the served config when the watcher starts.
        std::fs::write(&path, config("new")).unwrap();
        let metrics = Arc::new(Metrics::new().unwrap());
        let gw = Gateway::start(served, Some(path.clone()), metrics)
            .await
            .unwrap();
        let tasks = spawn(gw.writer().clone(), path, Duration::from_millis(20));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while gw.status().version != 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the change was never applied"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(gw.snapshot().route("new").is_some());
        // An unchanged file is not applied again: after several more polls of the watcher
        // (every 20 ms), the version is still 2.
        const SEVERAL_POLLS: Duration = Duration::from_millis(100);
        tokio::time::sleep(SEVERAL_POLLS).await;
        assert_eq!(gw.status().version, 2);
        for t in tasks {
            t.abort();
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_change_that_keeps_size_and_modification_time_is_applied() {
        let dir = std::env::temp_dir().join(format!(
            "infergate-reload-same-stamp-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gateway.yaml");
        let (old, new) = (config("aaa"), config("bbb"));
        let size = old.len() as u64;
        assert_eq!(size, new.len() as u64);
        std::fs::write(&path, &old).unwrap();
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        let metrics = Arc::new(Metrics::new().unwrap());
        let gw = Gateway::start(old, Some(path.clone()), metrics)
            .await
            .unwrap();
        let tasks = spawn(gw.writer().clone(), path.clone(), Duration::from_millis(20));
        // Several polls see the first content.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(gw.status().version, 1);
        std::fs::write(&path, &new).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(mtime).unwrap();
        drop(f);
        let m = std::fs::metadata(&path).unwrap();
        assert_eq!((m.modified().unwrap(), m.len()), (mtime, size));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while gw.status().version != 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the change was never applied"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(gw.snapshot().route("bbb").is_some());
        assert_eq!(gw.status().reloads_failed, 0);
        for t in tasks {
            t.abort();
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
