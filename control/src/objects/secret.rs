//! `v1` Secret: type and data, decoded from base64 on read (`stringData` merged over `data`,
//! as the API server does on write).

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::meta::ObjectMeta;

/// A Secret object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// `type` (`Opaque`, `kubernetes.io/basic-auth`, `kubernetes.io/tls`, ...).
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    /// Base64-encoded values.
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    /// Plain values (manifests only; the API server folds them into `data`).
    #[serde(default)]
    pub string_data: BTreeMap<String, String>,
}

/// A Secret value that is not valid base64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("secret key `{key}` is not valid base64")]
pub struct SecretDataError {
    /// The key.
    pub key: String,
}

impl Secret {
    /// The decoded data, `stringData` winning over `data` for the same key.
    pub fn decoded(&self) -> Result<BTreeMap<String, Vec<u8>>, SecretDataError> {
        let mut out = BTreeMap::new();
        for (k, v) in &self.data {
            // The API server accepts standard base64; tolerate line breaks from `base64 -w76`.
            let compact: String = v.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact.as_bytes())
                .map_err(|_| SecretDataError { key: k.clone() })?;
            out.insert(k.clone(), bytes);
        }
        for (k, v) in &self.string_data {
            out.insert(k.clone(), v.as_bytes().to_vec());
        }
        Ok(out)
    }
}
