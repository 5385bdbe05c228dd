//! Tests of the job's format, its source and its tuning.

use std::path::PathBuf;

use super::tuning::connections_for_cpus;
use super::*;

#[test]
fn job_json_with_defaults() {
    let job: WarmupJob = serde_json::from_str(
        r#"{"model":"llama","version":"v3","source":{"http":"http://cache:8080/llama/v3"},"dest":"/var/cache/models/llama/v3"}"#,
    )
    .unwrap();
    assert_eq!(job.tuning, Tuning::default());
    assert_eq!(
        job.source,
        Source::Http("http://cache:8080/llama/v3".into())
    );
    assert_eq!(job.ca_file, None);
    let job: WarmupJob = serde_json::from_str(
        r#"{"model":"m","version":"1","source":{"http":"https://store/m/1"},"dest":"/d","ca_file":"/etc/ca.pem"}"#,
    )
    .unwrap();
    assert_eq!(job.ca_file, Some(PathBuf::from("/etc/ca.pem")));
    let job: WarmupJob = serde_json::from_str(
        r#"{"model":"m","version":"1","source":{"local":"/mnt/nfs/m/1"},"dest":"/d","tuning":{"preread":true,"bandwidth_cap":1000}}"#,
    )
    .unwrap();
    assert!(job.tuning.preread);
    assert_eq!(job.tuning.parallel_ranges, 8);
    assert_eq!(job.tuning.bandwidth_cap, Some(1000));
    assert!(serde_json::from_str::<WarmupJob>(
        r#"{"model":"m","version":"1","source":{"local":"/x"},"dest":"/d","tuning":{"paralel_files":2}}"#
    )
    .unwrap_err()
    .to_string()
    .contains("unknown field"));
}

#[test]
fn source_from_str() {
    assert_eq!(
        "http://h/x".parse::<Source>().unwrap(),
        Source::Http("http://h/x".into())
    );
    assert_eq!(
        "/mnt/m".parse::<Source>().unwrap(),
        Source::Local("/mnt/m".into())
    );
    assert!("".parse::<Source>().is_err());
}

#[test]
fn default_connections_follow_the_cpus() {
    for (cpus, connections) in [(1, 4), (2, 4), (3, 6), (4, 8), (8, 16), (96, 16)] {
        assert_eq!(connections_for_cpus(cpus), connections, "{cpus} CPUs");
    }
    assert_eq!(connections_for_cpus(usize::MAX), 16);
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(
        Tuning::default().max_connections,
        connections_for_cpus(cpus)
    );
}

#[test]
fn tuning_ranges() {
    assert!(Tuning::default().validate().is_ok());
    let job = |source: &str, ca_file: Option<&str>| WarmupJob {
        model: "m".into(),
        version: "1".into(),
        source: source.parse().unwrap(),
        dest: "/d".into(),
        ca_file: ca_file.map(PathBuf::from),
        tuning: Tuning::default(),
    };
    assert!(job("http://store:8080/m", None).validate().is_ok());
    assert!(job("https://store/m", None).validate().is_ok());
    assert!(job("/mnt/m", None).validate().is_ok());
    let err = |j: WarmupJob| j.validate().unwrap_err().to_string();
    assert!(err(job("http://store/m?x", None)).contains("query"));
    assert!(err(job("https://store/m", Some("/nonexistent/ca.pem"))).contains("ca_file"));
    let t = Tuning {
        parallel_files: 0,
        ..Tuning::default()
    };
    assert!(t
        .validate()
        .unwrap_err()
        .to_string()
        .contains("parallel_files"));
    let t = Tuning {
        chunk_size: 10,
        ..Tuning::default()
    };
    assert!(t.validate().is_err());
}
