//! Tests of manifest parsing and validation.

use super::*;

fn entry(path: &str) -> ManifestEntry {
    ManifestEntry {
        path: path.into(),
        size: 1,
        sha256: "a".repeat(64),
    }
}

#[test]
fn rejects_unsafe_paths_naming_the_entry() {
    for (path, needle) in [
        ("/etc/passwd", "absolute"),
        ("../x", "'..'"),
        ("a/../../x", "'..'"),
        ("a//b", "empty component"),
        ("a/", "empty component"),
        ("./a", "'.'"),
        ("", "empty"),
        ("a\\b", "separators"),
        ("manifest.json", "reserved"),
        ("w.safetensors.partial", "reserved"),
        ("w.partial.state", "reserved"),
    ] {
        let m = Manifest {
            files: vec![entry("ok.bin"), entry(path)],
        };
        let err = m.validate("test").unwrap_err().to_string();
        assert!(err.contains("entry 1"), "{err}");
        assert!(err.contains(&format!("{path:?}")), "{err}");
        assert!(err.contains(needle), "{path}: {err}");
    }
}

#[test]
fn rejects_duplicates_bad_digests_and_file_dir_clashes() {
    let m = Manifest {
        files: vec![entry("a"), entry("a")],
    };
    assert!(m.validate("t").unwrap_err().to_string().contains("twice"));
    let m = Manifest {
        files: vec![entry("a"), entry("a/b")],
    };
    assert!(m
        .validate("t")
        .unwrap_err()
        .to_string()
        .contains("directory"));
    let mut e = entry("a");
    e.sha256 = "xyz".into();
    let m = Manifest { files: vec![e] };
    assert!(m.validate("t").unwrap_err().to_string().contains("64 hex"));
}

#[test]
fn parses_and_lowercases() {
    let json = format!(
        r#"{{"files":[{{"path":"d/model-00001-of-00004.safetensors","size":4976698672,"sha256":"{}"}}]}}"#,
        "AB".repeat(32)
    );
    let m = Manifest::from_slice(json.as_bytes(), "t").unwrap();
    assert_eq!(m.files[0].sha256, "ab".repeat(32));
    assert_eq!(m.total_size(), 4976698672);
    let err = Manifest::from_slice(
        br#"{"files":[{"path":"a","size":1}]}"#,
        "http://x/manifest.json",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("http://x/manifest.json"), "{err}");
    let err = Manifest::from_slice(br#"{"files":[],"extra":1}"#, "t").unwrap_err();
    assert!(err.to_string().contains("unknown field"), "{err}");
}
