#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use serde::Deserialize;

use super::*;
use crate::model::Config;
use crate::units::{ByteSize, Dur};

/// An environment of `pairs`.
fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

fn expand_in(text: &str, pairs: &[(&str, &str)]) -> Result<String, ExpandError> {
    expand(text, &env(pairs))
}

#[test]
fn references_defaults_and_literals() {
    let e = [("A", "1"), ("EMPTY", "")];
    assert_eq!(expand_in("x${A}y", &e).unwrap(), "x1y");
    assert_eq!(expand_in("${A}${A}", &e).unwrap(), "11");
    assert_eq!(expand_in("${A:-d}", &e).unwrap(), "1");
    assert_eq!(expand_in("${UNSET:-d}", &e).unwrap(), "d");
    assert_eq!(expand_in("${UNSET:-}", &e).unwrap(), "");
    assert_eq!(expand_in("${UNSET:-a b:c}", &e).unwrap(), "a b:c");
    // Set but empty: the value is empty, and a default replaces it, as in the shell.
    assert_eq!(expand_in("[${EMPTY}]", &e).unwrap(), "[]");
    assert_eq!(expand_in("${EMPTY:-d}", &e).unwrap(), "d");
    // `$${` is a literal `${`; other dollars are kept.
    assert_eq!(expand_in("$${A}", &e).unwrap(), "${A}");
    assert_eq!(expand_in("$$${A}", &e).unwrap(), "$${A}");
    assert_eq!(expand_in("a$b $$ $ $", &e).unwrap(), "a$b $$ $ $");
    // A value is not expanded again.
    assert_eq!(
        expand_in("${V}", &[("V", "${A}")]).unwrap(),
        "${A}".to_string()
    );
}

#[test]
fn an_unset_variable_without_a_default_is_an_error() {
    assert_eq!(
        expand_in("http://${POD_IP}:8000", &[]).unwrap_err(),
        ExpandError::Unset {
            name: "POD_IP".into()
        }
    );
    assert_eq!(
        expand_in("${POD_IP}", &[]).unwrap_err().to_string(),
        "environment variable POD_IP is not set"
    );
}

#[test]
fn malformed_references_are_errors() {
    for (text, reference) in [
        ("x ${", "${"),
        ("${A", "${A"),
        ("${}", "${}"),
        ("${A B}", "${A B}"),
        ("${1A}", "${1A}"),
        ("${A-d}", "${A-d}"),
        ("${A:?x}", "${A:?x}"),
        ("${:-d}", "${:-d}"),
    ] {
        match expand_in(text, &[("A", "1")]) {
            Err(ExpandError::Malformed { reference: r, .. }) => assert_eq!(r, reference, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    let msg = expand_in("${A B}", &[]).unwrap_err().to_string();
    assert!(msg.starts_with("malformed reference \"${A B}\": "), "{msg}");
    assert!(msg.contains("$${ for a literal ${"), "{msg}");
}

/// Fields of each kind the config uses.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Doc {
    #[serde(default)]
    name: String,
    #[serde(default)]
    port: u16,
    #[serde(default)]
    ratio: f64,
    #[serde(default)]
    on: bool,
    #[serde(default)]
    maybe: Option<u32>,
    #[serde(default)]
    either: Option<PortOrName>,
    #[serde(default)]
    size: Option<ByteSize>,
    #[serde(default)]
    wait: Option<Dur>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    list: Vec<String>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(untagged)]
enum PortOrName {
    Number(u16),
    Name(String),
}

fn doc(yaml: &str, pairs: &[(&str, &str)]) -> Result<Doc, Vec<String>> {
    from_yaml::<Doc>(yaml, &env(pairs)).map_err(|e| e.0.iter().map(ToString::to_string).collect())
}

#[test]
fn numbers_and_booleans_come_from_expanded_text() {
    let e = [
        ("PORT", "8000"),
        ("R", "0.5"),
        ("ON", "true"),
        ("SIZE", "1MiB"),
    ];
    let d = doc(
        "port: ${PORT}\nratio: ${R}\non: ${ON}\nmaybe: ${PORT}\neither: ${PORT}\n\
         size: ${SIZE}\nwait: ${W:-2s}\nname: ${PORT}\n",
        &e,
    )
    .unwrap();
    assert_eq!(d.port, 8000);
    assert_eq!(d.ratio, 0.5);
    assert!(d.on);
    assert_eq!(d.maybe, Some(8000));
    assert_eq!(d.either, Some(PortOrName::Number(8000)));
    assert_eq!(d.size, Some(ByteSize::mib(1)));
    assert_eq!(d.wait.map(|w| w.to_string()), Some("2s".into()));
    // A string field keeps the text, digits or not.
    assert_eq!(d.name, "8000");
    // Quoted, the same.
    let d = doc("port: \"${PORT}\"\nname: '${PORT}'\n", &e).unwrap();
    assert_eq!((d.port, d.name.as_str()), (8000, "8000"));
    let d = doc("either: ${P:-http}\n", &e).unwrap();
    assert_eq!(d.either, Some(PortOrName::Name("http".into())));
}

#[test]
fn text_where_a_number_is_wanted_is_a_type_error_with_its_path() {
    let errs = doc("name: x\nport: ${P:-http}\n", &[]).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("port: invalid type: string \"http\", expected u16 (line 2,"),
        "{errs:?}"
    );
}

#[test]
fn keys_are_not_expanded() {
    let d = doc(
        "labels: { \"${K}\": \"${V}\" }\n",
        &[("K", "k"), ("V", "v")],
    )
    .unwrap();
    assert_eq!(d.labels.get("${K}").map(String::as_str), Some("v"));
    assert_eq!(d.labels.len(), 1);
    // A field name written as a reference is not a known field.
    let errs = doc("${F}: x\n", &[("F", "name")]).unwrap_err();
    assert!(errs[0].contains("unknown field `${F}`"), "{errs:?}");
}

#[test]
fn comments_are_not_expanded() {
    let d = doc(
        "# set ${NOT_SET} first\nname: a # ${ALSO_NOT_SET}\nlist: [\"${A}\"] # ${\n",
        &[("A", "x")],
    )
    .unwrap();
    assert_eq!(d.name, "a");
    assert_eq!(d.list, ["x"]);
}

#[test]
fn an_error_names_the_path_and_the_variable() {
    let errs = doc("name: a\nlabels:\n  node: ${NODE_NAME}\n", &[]).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("labels.node: environment variable NODE_NAME is not set (line 3,"),
        "{errs:?}"
    );
    let errs = doc("list: [a, \"${A B}\"]\n", &[]).unwrap_err();
    assert!(
        errs[0].starts_with("list[1]: malformed reference \"${A B}\""),
        "{errs:?}"
    );
}

const GATEWAY: &str = r#"
# The pod's address comes from the downward API: ${POD_IP}
listeners:
  data: { address: "0.0.0.0:${DATA_PORT:-9100}" }
  admin: { address: "127.0.0.1:9190" }
limits:
  max_in_flight: ${MAX_IN_FLIGHT:-256}
backends:
  - name: local
    endpoints:
      - url: http://${POD_IP}:8000
        labels: { node: "${NODE_NAME}" }
models:
  - { name: llama, backend: local }
"#;

#[test]
fn a_gateway_config_expands_urls_numbers_and_labels() {
    let e = env(&[
        ("POD_IP", "10.1.2.3"),
        ("NODE_NAME", "n1"),
        ("MAX_IN_FLIGHT", "8"),
    ]);
    let cfg = Config::from_yaml_env(GATEWAY, &e).unwrap();
    assert_eq!(cfg.backends[0].endpoints[0].url, "http://10.1.2.3:8000");
    assert_eq!(cfg.backends[0].endpoints[0].labels.get("node"), Some("n1"));
    assert_eq!(cfg.listeners.data.address, "0.0.0.0:9100");
    assert_eq!(cfg.limits.max_in_flight, 8);
}

#[test]
fn a_gateway_config_error_names_the_path() {
    let e = env(&[("NODE_NAME", "n1")]);
    let errs = Config::from_yaml_env(GATEWAY, &e).unwrap_err();
    assert_eq!(errs.0.len(), 1, "{errs}");
    assert_eq!(errs.0[0].path, "backends[0].endpoints[0].url");
    assert!(
        errs.0[0]
            .reason
            .starts_with("environment variable POD_IP is not set (line 11,"),
        "{errs}"
    );
}

#[test]
fn values_without_references_read_as_without_expansion() {
    let plain = "name: x\nport: 0x10\nlabels: { version: 1.10, gpus: 0,1, on: true, n: 007 }\nsize: 64KiB\n";
    let with_ref = format!("{plain}list: [\"${{A}}\"]\n");
    let a = doc(plain, &[]).unwrap();
    let b = doc(&with_ref, &[("A", "a")]).unwrap();
    assert_eq!(b.labels.get("version").map(String::as_str), Some("1.10"));
    assert_eq!(b.labels.get("n").map(String::as_str), Some("007"));
    assert_eq!(b.port, 16);
    assert_eq!(Doc { list: vec![], ..b }, a);
}
