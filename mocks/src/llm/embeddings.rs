//! Embeddings (`POST /v1/embeddings`, and Azure's deployments path): deterministic vectors
//! from each input and the stub's seed, unit length, `dimensions` long (1536 by default),
//! as floats or, with `encoding_format: "base64"` (the openai SDKs' default), as
//! little-endian `f32`s in base64. A rule with `when.api = "embeddings"` may pin the
//! vector ([`LlmReplyBody::Embedding`](super::LlmReplyBody::Embedding)) or answer an error.

use base64::Engine as _;
use serde_json::{Value, json};

use super::dialect::object;
use super::request::{ChatRequest, Message};
use super::tokens;

/// The length of a vector when the request does not ask for one.
pub(crate) const DEFAULT_DIMENSIONS: usize = 1536;

/// An embeddings request: what the rules see, and what the reply needs.
pub(crate) struct EmbeddingsRequest {
    /// The inputs as messages (role `input`), model and all: the rules' view.
    pub(crate) view: ChatRequest,
    pub(crate) dimensions: usize,
    pub(crate) base64: bool,
}

impl EmbeddingsRequest {
    pub(crate) fn parse(body: &[u8], deployment: Option<&str>) -> Result<Self, String> {
        let object = object(body)?;
        let model = object
            .get("model")
            .and_then(Value::as_str)
            .or(deployment)
            .ok_or("you must provide a model parameter")?;
        let inputs: Vec<String> = match object.get("input") {
            Some(Value::String(text)) => vec![text.clone()],
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|item| match item {
                    Value::String(text) => text.clone(),
                    // token arrays: their numbers, as text
                    other => other.to_string(),
                })
                .collect(),
            _ => return Err("'input' is a required property and must not be empty".to_string()),
        };
        let dimensions = match object.get("dimensions") {
            None | Some(Value::Null) => DEFAULT_DIMENSIONS,
            Some(value) => match value.as_u64() {
                Some(n @ 1..=65_536) => n as usize,
                _ => {
                    return Err(format!(
                        "'dimensions' must be an integer from 1 to 65536, got {value}"
                    ));
                }
            },
        };
        let base64 = object.get("encoding_format").and_then(Value::as_str) == Some("base64");
        Ok(Self {
            view: ChatRequest {
                model: model.to_string(),
                stream: false,
                include_usage: false,
                tools: 0,
                messages: inputs
                    .into_iter()
                    .map(|content| Message {
                        role: "input".to_string(),
                        content,
                    })
                    .collect(),
            },
            dimensions,
            base64,
        })
    }

    /// The response: one vector per input, `pinned` or derived from the input and `seed`.
    pub(crate) fn reply(&self, seed: u64, pinned: Option<&[f32]>) -> Vec<u8> {
        let data: Vec<Value> = self
            .view
            .messages
            .iter()
            .enumerate()
            .map(|(index, input)| {
                let vector = match pinned {
                    Some(pinned) => pinned.to_vec(),
                    None => vector(seed, &input.content, self.dimensions),
                };
                let embedding = if self.base64 {
                    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
                } else {
                    json!(vector)
                };
                json!({"object": "embedding", "index": index, "embedding": embedding})
            })
            .collect();
        let prompt: u64 = self.view.contents().map(tokens::tokens).sum();
        json!({
            "object": "list",
            "data": data,
            "model": self.view.model,
            "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
        })
        .to_string()
        .into_bytes()
    }
}

/// A unit vector drawn from `seed` and `text` (FNV-1a of the text seeds a splitmix64).
pub(crate) fn vector(seed: u64, text: &str, dimensions: usize) -> Vec<f32> {
    let mut state = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    }) ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let raw: Vec<f64> = (0..dimensions)
        .map(|_| (next() >> 11) as f64 / (1_u64 << 53) as f64 * 2.0 - 1.0)
        .collect();
    let norm = raw
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    raw.iter().map(|x| (x / norm) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_deterministic_unit_and_differ_by_input_and_seed() {
        let a = vector(0, "sword", 64);
        assert_eq!(a, vector(0, "sword", 64));
        assert_ne!(a, vector(0, "shield", 64));
        assert_ne!(a, vector(1, "sword", 64));
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    }

    #[test]
    fn batches_dimensions_and_base64() {
        let request = EmbeddingsRequest::parse(
            br#"{"model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 8, "encoding_format": "base64"}"#,
            None,
        )
        .unwrap();
        let reply: Value = serde_json::from_slice(&request.reply(7, None)).unwrap();
        assert_eq!(reply["data"].as_array().unwrap().len(), 2);
        let encoded = reply["data"][1]["embedding"].as_str().unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        let floats: Vec<f32> = bytes
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(floats, vector(7, "b", 8));
        let pinned = EmbeddingsRequest::parse(br#"{"input": "x"}"#, Some("emb")).unwrap();
        let reply: Value = serde_json::from_slice(&pinned.reply(0, Some(&[0.5, 0.25]))).unwrap();
        assert_eq!(reply["data"][0]["embedding"], json!([0.5, 0.25]));
        assert_eq!(reply["model"], "emb");
        assert!(EmbeddingsRequest::parse(br#"{"model": "m", "input": []}"#, None).is_err());
        assert!(
            EmbeddingsRequest::parse(br#"{"model": "m", "input": "x", "dimensions": 0}"#, None)
                .is_err()
        );
    }
}
