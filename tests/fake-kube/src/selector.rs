//! Label and field selectors in the query-string syntax of the Kubernetes API.

use serde_json::Value;

use crate::kind::Kind;

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed `labelSelector`: every requirement must hold (comma = AND).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    /// Parses `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a` and `!a`, comma-separated.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for term in split_top_level(text) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            reqs.push(parse_requirement(term)?);
        }
        Ok(LabelSelector(reqs))
    }

    /// Whether the object's `metadata.labels` satisfy every requirement.
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        let label = |k: &str| {
            obj.pointer("/metadata/labels")
                .and_then(|l| l.get(k))
                .and_then(Value::as_str)
        };
        self.0.iter().all(|req| match req {
            Requirement::Equals(k, v) => label(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
            Requirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => label(k).is_none_or(|l| vs.iter().all(|v| v != l)),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::NotExists(k) => label(k).is_none(),
        })
    }
}

fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_requirement(term: &str) -> Result<Requirement, String> {
    let bad = |why: &str| format!("unable to parse requirement {term:?}: {why}");
    if let Some(open) = term.find('(') {
        let Some(inner) = term[open + 1..].strip_suffix(')') else {
            return Err(bad("a set must end with ')'"));
        };
        let mut head = term[..open].split_whitespace();
        let (Some(key), Some(op), None) = (head.next(), head.next(), head.next()) else {
            return Err(bad("expected '<key> in (...)' or '<key> notin (...)'"));
        };
        let key = check_key(key).map_err(|e| bad(&e))?;
        let values: Vec<String> = inner.split(',').map(|v| v.trim().to_owned()).collect();
        return match op {
            "in" => Ok(Requirement::In(key, values)),
            "notin" => Ok(Requirement::NotIn(key, values)),
            other => Err(bad(&format!("unknown set operator {other:?}"))),
        };
    }
    if let Some((k, v)) = term.split_once("!=") {
        return Ok(Requirement::NotEquals(
            check_key(k).map_err(|e| bad(&e))?,
            v.trim().to_owned(),
        ));
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Ok(Requirement::Equals(
            check_key(k).map_err(|e| bad(&e))?,
            v.trim().to_owned(),
        ));
    }
    if let Some(k) = term.strip_prefix('!') {
        return Ok(Requirement::NotExists(check_key(k).map_err(|e| bad(&e))?));
    }
    Ok(Requirement::Exists(check_key(term).map_err(|e| bad(&e))?))
}

fn check_key(key: &str) -> Result<String, String> {
    let key = key.trim();
    if key.is_empty() {
        return Err("empty label key".into());
    }
    if key.contains(char::is_whitespace) || key.contains(['=', '!', '(', ')']) {
        return Err(format!("invalid label key {key:?}"));
    }
    Ok(key.to_owned())
}

/// A parsed `fieldSelector`: `field=value`, `field==value`, `field!=value`, comma = AND.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses the selector, refusing fields the real server does not index for `kind`.
    pub(crate) fn parse(text: &str, kind: Kind) -> Result<Self, String> {
        let mut terms = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (f, true, v)
            } else {
                return Err(format!("invalid selector: {term:?}; expected field=value"));
            };
            let field = field.trim();
            let known = ["metadata.name", "metadata.namespace"].contains(&field)
                || kind.extra_fields().contains(&field);
            if !known {
                return Err(format!("field label not supported: {field}"));
            }
            terms.push((field.to_owned(), equal, value.trim().to_owned()));
        }
        Ok(FieldSelector(terms))
    }

    pub(crate) fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            // Events' `source` selects on the reporting component.
            let pointer = match field.as_str() {
                "source" => "/source/component".to_owned(),
                f => format!("/{}", f.replace('.', "/")),
            };
            let actual = obj.pointer(&pointer).and_then(Value::as_str).unwrap_or("");
            (actual == value) == *equal
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(labels: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns", "labels": labels}, "spec": {"nodeName": "n1"}})
    }

    fn sel(text: &str, obj: &Value) -> bool {
        LabelSelector::parse(text).unwrap().matches(obj)
    }

    #[test]
    fn label_selector_operators() {
        let p = pod(json!({"app": "vllm", "model": "llama", "tier": "gpu"}));
        assert!(sel("", &p));
        assert!(sel("app=vllm,model==llama", &p));
        assert!(!sel("app=vllm,model=qwen", &p));
        assert!(sel("app!=sglang", &p));
        assert!(!sel("app!=vllm", &p));
        assert!(sel("missing!=x", &p));
        assert!(sel("model in (qwen, llama)", &p));
        assert!(!sel("model in (qwen)", &p));
        assert!(sel("model notin (qwen),app", &p));
        assert!(sel("missing notin (qwen)", &p));
        assert!(!sel("model notin (llama)", &p));
        assert!(sel("tier,!missing", &p));
        assert!(!sel("!tier", &p));
        assert!(!sel("missing", &p));
        assert!(sel("app.kubernetes.io/name notin (a,b)", &p));
    }

    #[test]
    fn label_selector_errors_name_the_term() {
        let err = LabelSelector::parse("app in (a").unwrap_err();
        assert!(err.contains("app in (a"), "{err}");
        assert!(LabelSelector::parse("app between (a)").is_err());
        assert!(LabelSelector::parse("=x").is_err());
    }

    #[test]
    fn field_selectors() {
        let p = pod(json!({}));
        let f = |t: &str| FieldSelector::parse(t, Kind::Pod).unwrap().matches(&p);
        assert!(f("metadata.name=p"));
        assert!(f("metadata.name==p,metadata.namespace=ns"));
        assert!(!f("metadata.name=q"));
        assert!(f("metadata.name!=q,spec.nodeName=n1"));
        let event = json!({
            "metadata": {"name": "e", "namespace": "default"},
            "involvedObject": {"kind": "Node", "name": "n1"},
            "reason": "ReleaseStep", "type": "Normal", "source": {"component": "c"},
        });
        let e = |t: &str| {
            FieldSelector::parse(t, Kind::Event)
                .unwrap()
                .matches(&event)
        };
        assert!(e("involvedObject.kind=Node,involvedObject.name=n1"));
        assert!(e("reason=ReleaseStep,type=Normal,source=c"));
        assert!(!e("reason=ReleasePromoted"));
        assert!(!e("source=other"));
        let err = FieldSelector::parse("spec.nodeName=n1", Kind::InferencePool).unwrap_err();
        assert_eq!(err, "field label not supported: spec.nodeName");
    }
}
