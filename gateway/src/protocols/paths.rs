//! `path_routes` as the data path uses them: prefixes naming a model, the ComfyUI route, and
//! the ComfyUI prompt map, which outlives reloads.

use std::sync::Arc;

use infergate_config::{under_prefix, PathKind, PathRoute};

use super::comfyui::PromptMap;

/// The compiled `path_routes`.
#[derive(Debug, Default)]
pub struct PathRoutes {
    /// `(prefix without a trailing slash, model)`; validation made them disjoint.
    prefixes: Vec<(Box<str>, Box<str>)>,
    /// The model of the `kind: comfyui` route.
    comfyui: Option<Box<str>>,
    /// Which endpoint took each recent ComfyUI prompt; kept across reloads.
    pub prompts: Arc<PromptMap>,
}

impl PathRoutes {
    /// Compiles `routes`, keeping the prompt map of `previous` (the live table's) when given.
    pub fn compile(routes: &[PathRoute], previous: Option<&PathRoutes>) -> Self {
        let mut out = PathRoutes {
            prompts: previous.map_or_else(Default::default, |p| p.prompts.clone()),
            ..Default::default()
        };
        for r in routes {
            match (r.kind, &r.prefix) {
                (PathKind::Prefix, Some(p)) => {
                    let p = p.strip_suffix('/').unwrap_or(p);
                    out.prefixes.push((p.into(), r.model.as_str().into()));
                }
                (PathKind::Comfyui, _) => out.comfyui = Some(r.model.as_str().into()),
                (PathKind::Prefix, None) => {}
            }
        }
        out
    }

    /// The model of the prefix route that `path` lies under.
    pub fn prefix_model(&self, path: &str) -> Option<&str> {
        self.prefixes
            .iter()
            .find(|(p, _)| under_prefix(path, p))
            .map(|(_, m)| m.as_ref())
    }

    /// The model of the ComfyUI route, if there is one.
    pub fn comfyui_model(&self) -> Option<&str> {
        self.comfyui.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(prefix: Option<&str>, model: &str, kind: PathKind) -> PathRoute {
        PathRoute {
            prefix: prefix.map(Into::into),
            model: model.into(),
            kind,
        }
    }

    #[test]
    fn prefixes_name_models_and_the_prompt_map_is_kept() {
        let routes = [
            route(Some("/sdapi/v1/"), "sd", PathKind::Prefix),
            route(Some("/custom"), "other", PathKind::Prefix),
            route(None, "comfy", PathKind::Comfyui),
        ];
        let first = PathRoutes::compile(&routes, None);
        assert_eq!(first.prefix_model("/sdapi/v1/txt2img"), Some("sd"));
        assert_eq!(first.prefix_model("/sdapi/v1"), Some("sd"));
        assert_eq!(first.prefix_model("/sdapi/v2/txt2img"), None);
        assert_eq!(first.prefix_model("/customer"), None);
        assert_eq!(first.prefix_model("/custom/a/b"), Some("other"));
        assert_eq!(first.comfyui_model(), Some("comfy"));
        let second = PathRoutes::compile(&routes[..1], Some(&first));
        assert!(Arc::ptr_eq(&first.prompts, &second.prompts));
        assert_eq!(second.comfyui_model(), None);
    }
}
