//! The canary's endpoints as the gateways see them (`GET /admin/routes`): which are ejected for
//! an unhealthy GPU and which are not warm yet.

use std::time::Duration;

use super::http::Http;

/// One canary endpoint as one gateway sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointView {
    /// The gateway's admin URL.
    pub gateway: String,
    pub url: String,
    /// The ejection reason (`gpu_unhealthy`, `model_not_warm`, ...) when ejected.
    pub ejected: Option<String>,
    /// The ejection's detail (the GPU finding, the cold model).
    pub detail: Option<String>,
}

/// The canary's endpoints on every gateway.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CanaryView {
    pub endpoints: Vec<EndpointView>,
}

impl CanaryView {
    /// The endpoints ejected for an unhealthy GPU.
    pub fn gpu_unhealthy(&self) -> Vec<&EndpointView> {
        self.with_reason("gpu_unhealthy")
    }

    /// The endpoints not warm yet.
    pub fn cold(&self) -> Vec<&EndpointView> {
        self.with_reason("model_not_warm")
    }

    fn with_reason(&self, reason: &str) -> Vec<&EndpointView> {
        self.endpoints
            .iter()
            .filter(|e| e.ejected.as_deref() == Some(reason))
            .collect()
    }
}

/// Reads the canary's endpoints from every gateway; an error names the gateway.
pub async fn read(
    http: &Http,
    gateways: &[String],
    model: &str,
    canary: &str,
    timeout: Duration,
) -> Result<CanaryView, String> {
    let mut view = CanaryView::default();
    for g in gateways {
        let url = format!("{}/admin/routes", g.trim_end_matches('/'));
        let body = http.get(&url, timeout).await?;
        let doc: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON: {e}"))?;
        view.endpoints
            .extend(parse(&doc, g, model, canary).map_err(|e| format!("GET {url}: {e}"))?);
    }
    Ok(view)
}

/// The canary's endpoints in one gateway's `/admin/routes` document.
pub fn parse(
    doc: &serde_json::Value,
    gateway: &str,
    model: &str,
    canary: &str,
) -> Result<Vec<EndpointView>, String> {
    let models = doc["models"].as_array().ok_or("no models in the answer")?;
    let m = models
        .iter()
        .find(|m| m["model"] == model)
        .ok_or_else(|| format!("the gateway has no model {model:?}"))?;
    let v = m["variants"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"] == canary))
        .ok_or_else(|| format!("model {model:?} has no variant {canary:?}"))?;
    let eps = v["endpoints"].as_array().cloned().unwrap_or_default();
    Ok(eps
        .iter()
        .map(|e| EndpointView {
            gateway: gateway.to_owned(),
            url: e["url"].as_str().unwrap_or("").to_owned(),
            ejected: e["ejection"]["reason"].as_str().map(str::to_owned),
            detail: e["ejection"]["detail"].as_str().map(str::to_owned),
        })
        .collect())
}
