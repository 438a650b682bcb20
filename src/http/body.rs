//! Reading a bounded request body as form or JSON parameters.

use std::collections::HashMap;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;

use super::ApiError;

fn bad(status: StatusCode, msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(status, msg.into())
}

/// Reads at most `limit` bytes; larger bodies get 413 before they are buffered.
pub async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    let too_large = || {
        bad(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body exceeds {limit} bytes"),
        )
    };
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > limit {
            return Err(too_large());
        }
    }
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            bad(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            )
        })?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Request parameters: each at most once (RFC 6749 §3.2), from a form or a JSON object.
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn parse(req: &HttpRequest, body: &[u8]) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match content_type.as_str() {
            "application/x-www-form-urlencoded" => Self::from_form(body),
            "application/json" => Self::from_json(body),
            _ => Err(bad(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "use Content-Type application/x-www-form-urlencoded or application/json",
            )),
        }
    }

    fn insert(map: &mut HashMap<String, String>, k: String, v: String) -> Result<(), ApiError> {
        if map.contains_key(&k) {
            return Err(bad(
                StatusCode::BAD_REQUEST,
                format!("parameter {k} is repeated"),
            ));
        }
        map.insert(k, v);
        Ok(())
    }

    fn from_form(body: &[u8]) -> Result<Self, ApiError> {
        let malformed = || {
            bad(
                StatusCode::BAD_REQUEST,
                "the form body is malformed or not UTF-8",
            )
        };
        let mut map = HashMap::new();
        for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let mut it = pair.splitn(2, |b| *b == b'=');
            let key = decode_component(it.next().unwrap_or_default()).ok_or_else(malformed)?;
            let value = decode_component(it.next().unwrap_or_default()).ok_or_else(malformed)?;
            // RFC 6749 §3.1: parameters sent without a value are treated as omitted.
            if !value.is_empty() {
                Self::insert(&mut map, key, value)?;
            }
        }
        Ok(Self(map))
    }

    fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        // Keys are read in order, duplicates kept, so that a repeated member is refused like a
        // repeated form parameter instead of silently taking the last value.
        let obj = JsonPairs::parse(body)?;
        let mut map = HashMap::with_capacity(obj.len());
        for (k, v) in obj {
            match v {
                serde_json::Value::String(s) if s.is_empty() => {}
                serde_json::Value::String(s) => Self::insert(&mut map, k, s)?,
                serde_json::Value::Null => {}
                _ => {
                    return Err(bad(
                        StatusCode::BAD_REQUEST,
                        format!("parameter {k} must be a string"),
                    ))
                }
            }
        }
        Ok(Self(map))
    }

    /// Reads a bounded body (413 past `limit`) and parses it as form or JSON parameters.
    pub async fn read(
        req: &HttpRequest,
        payload: web::Payload,
        limit: usize,
    ) -> Result<Self, ApiError> {
        let body = read_limited(req, payload, limit).await?;
        Self::parse(req, &body)
    }

    /// No parameters (a request without a body).
    pub fn empty() -> Self {
        Self(HashMap::new())
    }

    pub fn take(&mut self, key: &str) -> Option<String> {
        self.0.remove(key)
    }
}

/// Decodes one `application/x-www-form-urlencoded` component strictly: `+` is a space,
/// percent-escapes are decoded, and the result must be UTF-8 (no silent replacement).
pub fn decode_component(raw: &[u8]) -> Option<String> {
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let decoded: Vec<u8> = percent_encoding::percent_decode(&plus_as_space).collect();
    String::from_utf8(decoded).ok()
}

/// The members of a JSON object, in order, duplicates included.
struct JsonPairs(Vec<(String, serde_json::Value)>);

impl JsonPairs {
    fn parse(body: &[u8]) -> Result<Vec<(String, serde_json::Value)>, ApiError> {
        use serde::Deserializer as _;
        let mut de = serde_json::Deserializer::from_slice(body);
        let pairs = de.deserialize_map(JsonPairsVisitor).map_err(|e| {
            let msg = if e.classify() == serde_json::error::Category::Data {
                "the JSON body must be an object"
            } else {
                "the JSON body is malformed"
            };
            bad(StatusCode::BAD_REQUEST, msg)
        })?;
        de.end()
            .map_err(|_| bad(StatusCode::BAD_REQUEST, "the JSON body is malformed"))?;
        Ok(pairs.0)
    }
}

struct JsonPairsVisitor;

impl<'de> serde::de::Visitor<'de> for JsonPairsVisitor {
    type Value = JsonPairs;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<JsonPairs, A::Error> {
        let mut pairs = Vec::new();
        while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
            pairs.push(entry);
        }
        Ok(JsonPairs(pairs))
    }
}

/// The request's media type, lower-cased, without parameters.
pub fn media_type(req: &HttpRequest) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether the body is an HTML form (the hosted pages post those).
pub fn is_form(req: &HttpRequest) -> bool {
    media_type(req) == "application/x-www-form-urlencoded"
}

/// Reads a bounded JSON body into `T` (unknown members refused by `T`'s own rules).
pub async fn read_json<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<T, ApiError> {
    if media_type(req) != "application/json" {
        return Err(bad(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "use Content-Type application/json",
        ));
    }
    let body = read_limited(req, payload, limit).await?;
    // Keys must be unique, as for the other bodies.
    JsonPairs::parse(&body)?.iter().try_fold(
        std::collections::HashSet::new(),
        |mut seen, (k, _)| {
            if seen.insert(k.clone()) {
                Ok(seen)
            } else {
                Err(bad(
                    StatusCode::BAD_REQUEST,
                    format!("member {k} is repeated"),
                ))
            }
        },
    )?;
    serde_json::from_slice(&body).map_err(|e| {
        bad(
            StatusCode::BAD_REQUEST,
            format!("the JSON body does not fit this endpoint: {e}"),
        )
    })
}
