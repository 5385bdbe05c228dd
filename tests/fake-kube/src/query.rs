//! Request paths and query strings: which resource a request names, and its parameters.

use crate::kind::Kind;

/// What a request path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/version`
    Version,
    /// `/api`
    CoreVersions,
    /// `/api/v1`
    CoreResources,
    /// `/apis`
    Groups,
    /// `/apis/{group}/v1` of a group the fake serves (InferencePools, Leases).
    GroupResources(String),
    /// A collection: every namespace when `namespace` is `None`.
    Collection {
        kind: Kind,
        namespace: Option<String>,
    },
    /// One object.
    Object {
        kind: Kind,
        namespace: String,
        name: String,
    },
    /// Not served.
    Unknown,
}

/// Maps a request path to what it names.
pub(crate) fn route(path: &str) -> Route {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let (group, rest) = match parts.as_slice() {
        ["version"] => return Route::Version,
        ["api"] => return Route::CoreVersions,
        ["api", "v1"] => return Route::CoreResources,
        ["apis"] => return Route::Groups,
        ["apis", group, "v1"] if Kind::serves_group(group) && !group.is_empty() => {
            return Route::GroupResources((*group).to_owned());
        }
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, "v1", rest @ ..] => (*group, rest),
        _ => return Route::Unknown,
    };
    let kind = |plural: &str| Kind::find(group, plural);
    match rest {
        [p] => kind(p).map_or(Route::Unknown, |kind| Route::Collection {
            kind,
            namespace: None,
        }),
        ["namespaces", ns, p] => kind(p).map_or(Route::Unknown, |kind| Route::Collection {
            kind,
            namespace: Some((*ns).to_owned()),
        }),
        ["namespaces", ns, p, name] => kind(p).map_or(Route::Unknown, |kind| Route::Object {
            kind,
            namespace: (*ns).to_owned(),
            name: (*name).to_owned(),
        }),
        _ => Route::Unknown,
    }
}

/// Decoded query parameters, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    /// Parses `application/x-www-form-urlencoded` text; empty pairs (`?&watch=true`) are skipped.
    pub(crate) fn parse(text: &str) -> Query {
        let pairs = text
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(k), decode(v))
            })
            .collect();
        Query(pairs)
    }

    /// The first value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `key` is `true` or `1`.
    pub(crate) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

/// Percent-decoding with `+` as space; malformed escapes are kept as written.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route("/api/v1/pods"),
            Route::Collection {
                kind: Kind::Pod,
                namespace: None
            }
        );
        assert_eq!(
            route("/api/v1/namespaces/models/pods"),
            Route::Collection {
                kind: Kind::Pod,
                namespace: Some("models".into())
            }
        );
        assert_eq!(
            route("/apis/inference.networking.k8s.io/v1/namespaces/m/inferencepools/qwen"),
            Route::Object {
                kind: Kind::InferencePool,
                namespace: "m".into(),
                name: "qwen".into()
            }
        );
        assert_eq!(
            route("/apis/inference.networking.k8s.io/v1"),
            Route::GroupResources("inference.networking.k8s.io".into())
        );
        assert_eq!(
            route("/apis/coordination.k8s.io/v1/namespaces/s/leases/l-0"),
            Route::Object {
                kind: Kind::Lease,
                namespace: "s".into(),
                name: "l-0".into()
            }
        );
        assert_eq!(
            route("/api/v1/namespaces/s/configmaps"),
            Route::Collection {
                kind: Kind::ConfigMap,
                namespace: Some("s".into())
            }
        );
        assert_eq!(
            route("/api/v1/namespaces/default/events"),
            Route::Collection {
                kind: Kind::Event,
                namespace: Some("default".into())
            }
        );
        assert_eq!(route("/apis/coordination.k8s.io/v1/events"), Route::Unknown);
        assert_eq!(route("/apis/coordination.k8s.io/v1/pods"), Route::Unknown);
        assert_eq!(route("/api/v1/namespaces/m/services"), Route::Unknown);
        assert_eq!(route("/apis/apps/v1/deployments"), Route::Unknown);
        assert_eq!(route("/api/v1/namespaces/m/pods/p/log"), Route::Unknown);
    }

    #[test]
    fn query_decoding() {
        let q = Query::parse("&watch=true&labelSelector=app%3Dvllm%2Cmodel+in+%28a%2Cb%29&bad=%zz");
        assert!(q.flag("watch"));
        assert_eq!(q.get("labelSelector"), Some("app=vllm,model in (a,b)"));
        assert_eq!(q.get("bad"), Some("%zz"));
        assert_eq!(q.get("limit"), None);
    }
}
