//! Releases saved on disk, one JSON file per release (`NAME.json`: spec, record and engine
//! state), written atomically (a temporary file, flushed, then renamed over the old one) at
//! every transition, so that a control process killed at any moment resumes every release
//! from the step it was at.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::engine::Release;

/// The directory releases are saved in.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Creates `dir` if needed.
    pub fn open(dir: &Path) -> Result<Store, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("release state directory {}: {e}", dir.display()))?;
        Ok(Store {
            dir: dir.to_owned(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Saves `r` atomically.
    pub fn save(&self, r: &Release) -> Result<(), String> {
        let path = self.path(&r.spec.name);
        let tmp = self.dir.join(format!(".{}.json.tmp", r.spec.name));
        let body = serde_json::to_vec_pretty(r).map_err(|e| format!("{}: {e}", path.display()))?;
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            // The rename itself is durable once the directory is.
            if let Ok(d) = std::fs::File::open(&self.dir) {
                let _ = d.sync_all();
            }
            Ok(())
        };
        write().map_err(|e| format!("cannot save {}: {e}", path.display()))
    }

    /// Removes a saved release (absent is fine).
    pub fn remove(&self, name: &str) -> Result<(), String> {
        match std::fs::remove_file(self.path(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot remove {}: {e}", self.path(name).display())),
        }
    }

    /// Every saved release; files that cannot be read are reported, not fatal.
    pub fn load_all(&self) -> (Vec<Release>, Vec<String>) {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) => return (out, vec![format!("{}: {e}", self.dir.display())]),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        paths.sort();
        for p in paths {
            let read = std::fs::read(&p)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Release>(&b).map_err(|e| e.to_string()));
            match read {
                Ok(r) => out.push(r),
                Err(e) => errors.push(format!("{}: {e}", p.display())),
            }
        }
        (out, errors)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::spec::ReleaseSpec;

    #[test]
    fn saved_releases_load_back_and_bad_files_are_named() {
        let dir =
            std::env::temp_dir().join(format!("infergate-release-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).unwrap();
        let spec = ReleaseSpec::parse(crate::spec::tests::SPEC).unwrap();
        let (mut r, _) = Release::new(spec, 5);
        store.save(&r).unwrap();
        r.abort(9).unwrap();
        store.save(&r).unwrap();
        std::fs::write(dir.join("broken.json"), "{").unwrap();
        std::fs::write(dir.join(".x.json.tmp"), "{").unwrap();
        let (all, errors) = store.load_all();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].record.state, "aborted");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("broken.json"), "{errors:?}");
        store.remove("demo-v2").unwrap();
        store.remove("demo-v2").unwrap();
        assert!(store.load_all().0.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
