//! Which endpoint of which provider a request is for, and in which API's dialect.
//!
//! The primary provider is served at the root, every other provider `NAME` under
//! `/NAME`, so one stub plays a primary and a fallback provider at once. Under each:
//!
//! | path | endpoint |
//! |---|---|
//! | `POST /v1/chat/completions` | OpenAI Chat Completions |
//! | `POST /v1/responses` | OpenAI Responses |
//! | `POST /v1/messages` | Anthropic Messages |
//! | `POST /v1beta/models/{model}:generateContent` (or `/v1/…`) | Gemini |
//! | `POST /v1beta/models/{model}:streamGenerateContent` | Gemini, streamed |
//! | `POST /v1/embeddings` | OpenAI embeddings |
//! | `POST /openai/deployments/{deployment}/chat/completions` | Azure OpenAI chat |
//! | `POST /openai/deployments/{deployment}/embeddings` | Azure OpenAI embeddings |
//! | `GET /v1/models`, `GET /v1/models/{id}` | the model list, one model |

use super::dialect::Api;

/// The provider served at the root.
pub(crate) const PRIMARY: &str = "primary";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// An LLM call in this API's dialect.
    Call(Call),
    Embeddings {
        /// The Azure deployment, which stands for the model.
        deployment: Option<String>,
    },
    Models,
    Model(String),
    Other,
}

/// What the path says of an LLM call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    pub(crate) api: Api,
    /// The model named by the path (Gemini's model, Azure's deployment).
    pub(crate) model: Option<String>,
    /// The path asks for a stream (Gemini's `:streamGenerateContent`).
    pub(crate) stream: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    /// `None` when the path is not under any provider.
    pub(crate) provider: Option<String>,
    pub(crate) endpoint: Endpoint,
}

impl Route {
    pub(crate) fn of(method: &str, path: &str) -> Self {
        // at most 7 segments name an endpoint (`/NAME/openai/deployments/D/chat/completions`)
        let mut buffer = [""; 7];
        let mut count = 0;
        for segment in path.trim_matches('/').split('/') {
            if count == buffer.len() {
                return Self {
                    provider: None,
                    endpoint: Endpoint::Other,
                };
            }
            buffer[count] = segment;
            count += 1;
        }
        let segments = &buffer[..count];
        let is_root = |segment: &str| matches!(segment, "v1" | "v1beta" | "openai");
        let (provider, rest) = match segments {
            [first, ..] if is_root(first) => (PRIMARY, segments),
            [name, second, ..] if !name.is_empty() && is_root(second) => (*name, &segments[1..]),
            _ => {
                return Self {
                    provider: None,
                    endpoint: Endpoint::Other,
                };
            }
        };
        let call = |api, model: Option<&str>, stream| {
            Endpoint::Call(Call {
                api,
                model: model.map(str::to_string),
                stream,
            })
        };
        let endpoint = match (method, rest) {
            ("POST", ["v1", "chat", "completions"]) => call(Api::Chat, None, false),
            ("POST", ["v1", "responses"]) => call(Api::Responses, None, false),
            ("POST", ["v1", "messages"]) => call(Api::Anthropic, None, false),
            ("POST", ["v1", "embeddings"]) => Endpoint::Embeddings { deployment: None },
            ("POST", ["v1" | "v1beta", "models", target]) => match target.rsplit_once(':') {
                Some((model, "generateContent")) => call(Api::Gemini, Some(model), false),
                Some((model, "streamGenerateContent")) => call(Api::Gemini, Some(model), true),
                _ => Endpoint::Other,
            },
            ("POST", ["openai", "deployments", deployment, "chat", "completions"]) => {
                call(Api::Chat, Some(deployment), false)
            }
            ("POST", ["openai", "deployments", deployment, "embeddings"]) => Endpoint::Embeddings {
                deployment: Some(deployment.to_string()),
            },
            ("GET", ["v1", "models"]) => Endpoint::Models,
            ("GET", ["v1", "models", id]) if !id.is_empty() => Endpoint::Model(id.to_string()),
            _ => Endpoint::Other,
        };
        Self {
            provider: Some(provider.to_string()),
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

    fn call(api: Api, model: Option<&str>, stream: bool) -> Endpoint {
        Endpoint::Call(Call {
            api,
            model: model.map(str::to_string),
            stream,
        })
    }

    #[test]
    fn providers_by_prefix() {
        assert_eq!(
            route("POST", "/v1/chat/completions"),
            (some("primary"), call(Api::Chat, None, false))
        );
        assert_eq!(
            route("POST", "/fallback/v1/chat/completions"),
            (some("fallback"), call(Api::Chat, None, false))
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
    fn every_api_by_its_path() {
        assert_eq!(
            route("POST", "/v1/responses").1,
            call(Api::Responses, None, false)
        );
        assert_eq!(
            route("POST", "/claude/v1/messages"),
            (some("claude"), call(Api::Anthropic, None, false))
        );
        assert_eq!(
            route("POST", "/v1beta/models/gemini-2.0-flash:generateContent").1,
            call(Api::Gemini, Some("gemini-2.0-flash"), false)
        );
        assert_eq!(
            route(
                "POST",
                "/g/v1beta/models/gemini-2.0-flash:streamGenerateContent"
            ),
            (some("g"), call(Api::Gemini, Some("gemini-2.0-flash"), true))
        );
        assert_eq!(
            route("POST", "/openai/deployments/gpt4o-prod/chat/completions"),
            (some("primary"), call(Api::Chat, Some("gpt4o-prod"), false))
        );
        assert_eq!(
            route("POST", "/azure/openai/deployments/emb/embeddings"),
            (
                some("azure"),
                Endpoint::Embeddings {
                    deployment: Some("emb".into())
                }
            )
        );
        assert_eq!(
            route("POST", "/v1/embeddings").1,
            Endpoint::Embeddings { deployment: None }
        );
        assert_eq!(
            route("GET", "/v1/models/gpt-4o").1,
            Endpoint::Model("gpt-4o".into())
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
        assert_eq!(
            route("POST", "/v1beta/models/m:countTokens").1,
            Endpoint::Other
        );
        assert_eq!(route("POST", "/chat/completions"), (None, Endpoint::Other));
        assert_eq!(route("GET", "/"), (None, Endpoint::Other));
        assert_eq!(
            route("POST", "/p/openai/deployments/d/chat/completions/x/y"),
            (None, Endpoint::Other)
        );
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
