//! Which endpoint of which provider a request is for.
//!
//! The primary provider is served under `/v1`, every other provider `NAME` under
//! `/NAME/v1`, so one stub plays a primary and a fallback provider at once.

/// The provider served under `/v1`.
pub(crate) const PRIMARY: &str = "primary";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    ChatCompletions,
    Models,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    /// `None` when the path is not under any provider's `/v1`.
    pub(crate) provider: Option<String>,
    pub(crate) endpoint: Endpoint,
}

impl Route {
    pub(crate) fn of(method: &str, path: &str) -> Self {
        let mut segments = path.trim_matches('/').split('/');
        let first = segments.next().unwrap_or_default();
        let provider = if first == "v1" {
            Some(PRIMARY)
        } else if !first.is_empty() && segments.next() == Some("v1") {
            Some(first)
        } else {
            None
        };
        // what follows `v1`: at most two segments name an endpoint
        let rest = [segments.next(), segments.next(), segments.next()];
        let endpoint = match (method, rest) {
            _ if provider.is_none() => Endpoint::Other,
            ("POST", [Some("chat"), Some("completions"), None]) => Endpoint::ChatCompletions,
            ("GET", [Some("models"), None, None]) => Endpoint::Models,
            _ => Endpoint::Other,
        };
        Self {
            provider: provider.map(str::to_string),
            endpoint,
        }
    }
}

/// The journal's `source` for a provider: `llm` for the primary, `llm.NAME` otherwise.
pub(crate) fn source(provider: Option<&str>) -> String {
    match provider {
        None | Some(PRIMARY) => "llm".to_string(),
        Some(name) => format!("llm.{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str) -> (Option<String>, Endpoint) {
        let route = Route::of(method, path);
        (route.provider, route.endpoint)
    }

    fn some(provider: &str) -> Option<String> {
        Some(provider.to_string())
    }

    #[test]
    fn providers_by_prefix() {
        assert_eq!(
            route("POST", "/v1/chat/completions"),
            (some("primary"), Endpoint::ChatCompletions)
        );
        assert_eq!(
            route("POST", "/fallback/v1/chat/completions"),
            (some("fallback"), Endpoint::ChatCompletions)
        );
        assert_eq!(
            route("GET", "/v1/models"),
            (some("primary"), Endpoint::Models)
        );
        assert_eq!(
            route("GET", "/fallback/v1/models/"),
            (some("fallback"), Endpoint::Models)
        );
    }

    #[test]
    fn everything_else_is_other() {
        assert_eq!(
            route("GET", "/v1/chat/completions"),
            (some("primary"), Endpoint::Other)
        );
        assert_eq!(
            route("POST", "/v1/completions"),
            (some("primary"), Endpoint::Other)
        );
        assert_eq!(route("POST", "/chat/completions"), (None, Endpoint::Other));
        assert_eq!(route("GET", "/"), (None, Endpoint::Other));
        assert_eq!(
            route("POST", "/a/b/v1/chat/completions"),
            (None, Endpoint::Other)
        );
    }

    #[test]
    fn sources() {
        assert_eq!(source(Some("primary")), "llm");
        assert_eq!(source(Some("fallback")), "llm.fallback");
        assert_eq!(source(None), "llm");
    }
}
