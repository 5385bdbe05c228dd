//! KServe v2 / Triton paths: `/v2/models/{name}[/versions/{version}][/{action}]`, where the
//! action is `infer`, `ready`, none (metadata) or anything Triton adds (`config`, `stats`,
//! `generate`, `generate_stream`).
//!
//! The model is `{name}`, compared as it stands in the path with `models[].name`. The version
//! does not choose a variant: the model's rules do, as for every request, and the path (with its
//! version) reaches the chosen endpoint unchanged, so every variant's servers must serve the
//! model under the same name.

/// A KServe v2 model path, taken apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V2Path<'a> {
    pub model: &'a str,
    pub version: Option<&'a str>,
    /// What follows the model (and version): `infer`, `ready`, empty for metadata.
    pub action: &'a str,
}

/// Reads a KServe v2 model path; `None` for any other path (including `/v2/models` alone and an
/// empty model name).
pub fn parse(path: &str) -> Option<V2Path<'_>> {
    let rest = path.strip_prefix("/v2/models/")?;
    let (model, rest) = rest.split_once('/').unwrap_or((rest, ""));
    if model.is_empty() {
        return None;
    }
    let (version, action) = match rest.strip_prefix("versions/") {
        Some(v) => {
            let (version, action) = v.split_once('/').unwrap_or((v, ""));
            if version.is_empty() {
                return None;
            }
            (Some(version), action)
        }
        None => (None, rest),
    };
    Some(V2Path {
        model,
        version,
        action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_version_and_action_are_read_from_the_path() {
        let p = |s| parse(s).map(|v| (v.model, v.version, v.action));
        assert_eq!(
            p("/v2/models/resnet/infer"),
            Some(("resnet", None, "infer"))
        );
        assert_eq!(
            p("/v2/models/resnet/versions/3/infer"),
            Some(("resnet", Some("3"), "infer"))
        );
        assert_eq!(
            p("/v2/models/resnet/ready"),
            Some(("resnet", None, "ready"))
        );
        assert_eq!(p("/v2/models/resnet"), Some(("resnet", None, "")));
        assert_eq!(
            p("/v2/models/resnet/versions/2"),
            Some(("resnet", Some("2"), ""))
        );
        assert_eq!(p("/v2/models/"), None);
        assert_eq!(p("/v2/models"), None);
        assert_eq!(p("/v2/models/resnet/versions/"), None);
        assert_eq!(p("/v2/health/ready"), None);
        assert_eq!(p("/v1/models/resnet"), None);
    }
}
