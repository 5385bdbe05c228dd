//! The request URL of a run.

use http::Uri;

use crate::bench::workload::Api;

/// The request URL for `url` and `api`: a bare host gets the API path, a `.../v1` base gets
/// the rest of it, any other path is used as is. Only `http` is supported.
pub fn endpoint(url: &str, api: Api) -> Result<Uri, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("--url `{url}` is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(format!(
                "--url `{url}`: https is not supported; benchmark a plain-HTTP listener"
            ))
        }
        _ => return Err(format!("--url `{url}` must start with http://")),
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("--url `{url}` has no host"))?
        .clone();
    let path = uri.path().trim_end_matches('/');
    let api_path = api.path();
    let new_path = if path.is_empty() {
        api_path.to_owned()
    } else if path.ends_with("/v1") {
        format!("{path}{}", api_path.trim_start_matches("/v1"))
    } else {
        uri.path().to_owned()
    };
    let pq = match uri.query() {
        Some(q) => format!("{new_path}?{q}"),
        None => new_path,
    };
    Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(pq)
        .build()
        .map_err(|e| format!("--url `{url}`: {e}"))
}
