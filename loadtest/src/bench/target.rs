//! Where requests go: the pooled HTTP client, the endpoint and its headers.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::spec::Header;

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The pooled client: keep-alive connections, no idle limit, `TCP_NODELAY`.
pub fn http_client() -> HttpClient {
    let mut conn = HttpConnector::new();
    conn.set_nodelay(true);
    conn.enforce_http(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(usize::MAX)
        .build(conn)
}

/// Where requests go and with which headers.
#[derive(Clone, Debug)]
pub struct Target {
    pub uri: Uri,
    pub headers: HeaderMap,
}

impl Target {
    /// `extra` headers are added last and replace the defaults of the same name.
    pub fn new(uri: Uri, api_key: Option<&str>, extra: &[Header]) -> Result<Self, String> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("infergate-bench/", env!("CARGO_PKG_VERSION"))),
        );
        if let Some(key) = api_key {
            let v = HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|_| "the API key is not a valid header value".to_owned())?;
            headers.insert(AUTHORIZATION, v);
        }
        for h in extra {
            headers.remove(&h.name);
        }
        for h in extra {
            headers.append(h.name.clone(), h.value.clone());
        }
        Ok(Self { uri, headers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_override_defaults() {
        let t = Target::new(
            "http://127.0.0.1:1/v1/chat/completions".parse().unwrap(),
            Some("k"),
            &[
                "accept: */*".parse().unwrap(),
                "x-a: 1".parse().unwrap(),
                "x-a: 2".parse().unwrap(),
            ],
        )
        .unwrap();
        assert_eq!(t.headers[ACCEPT], "*/*");
        assert_eq!(t.headers[AUTHORIZATION], "Bearer k");
        assert_eq!(t.headers.get_all("x-a").iter().count(), 2);
    }
}
