//! `JWT_PUBLIC_KEY_FILE`: one PEM public key, read and checked once at start (a clap
//! `value_parser`), so a key that is missing, unreadable, private, weak or of an unsupported
//! type stops the gateway with one line (exit 2) instead of refusing every token later.
//!
//! Accepted: `PUBLIC KEY` (SubjectPublicKeyInfo) of RSA (≥ 2048 bits → RS256), EC P-256
//! (→ ES256) or Ed25519 (→ EdDSA), and `RSA PUBLIC KEY` (PKCS#1). The curve is read from the
//! key's own encoding (the fixed SPKI prefixes of RFC 5480 and RFC 8410), never guessed from a
//! length. A private key is refused: the gateway only verifies, and must not hold the signing
//! key of the identity provider.

use std::path::PathBuf;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::DecodingKey;

use super::key::{rsa_modulus_bits, SigningAlg, VerificationKey, MIN_RSA_BITS};

/// Largest key file read (an RSA-8192 public key in PEM is under 2 KiB).
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// SubjectPublicKeyInfo of a P-256 key, up to the 65-byte uncompressed point (RFC 5480).
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// SubjectPublicKeyInfo of an Ed25519 key, up to its 32 bytes (RFC 8410).
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// The algorithm identifier of an EC public key (id-ecPublicKey), found in any EC SPKI.
const EC_PUBLIC_KEY_OID: [u8; 9] = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// Why `JWT_PUBLIC_KEY_FILE` was refused.
#[derive(Debug, thiserror::Error)]
pub enum PemKeyError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} is larger than 64 KiB: not a public key")]
    TooLarge(String),
    #[error("{0} holds no PEM block")]
    NotPem(String),
    #[error("{0} holds {1} PEM blocks; give exactly one public key")]
    Several(String, usize),
    #[error("{0} holds a private key; give the provider's public key (the gateway only verifies)")]
    PrivateKey(String),
    #[error("{0} holds a certificate; extract its key with `openssl x509 -pubkey -noout`")]
    Certificate(String),
    #[error("{path}: an EC key on a curve other than P-256 (ES256 is supported)")]
    UnsupportedCurve { path: String },
    #[error("{path}: not an RSA, P-256 or Ed25519 public key ({tag})")]
    Unsupported { path: String, tag: String },
    #[error("{path}: RSA modulus of {bits} bits; at least {MIN_RSA_BITS} required")]
    WeakRsa { path: String, bits: usize },
}

/// Whether the algorithm identifier at the start of a SubjectPublicKeyInfo is `oid` (it sits
/// within the first bytes, after two SEQUENCE headers).
fn spki_algorithm_is(der: &[u8], oid: &[u8]) -> bool {
    der[..der.len().min(16)]
        .windows(oid.len())
        .any(|w| w == oid)
}

/// The key of `JWT_PUBLIC_KEY_FILE`.
#[derive(Clone)]
pub struct PublicKeyFile {
    pub path: PathBuf,
    pub key: VerificationKey,
}

impl std::fmt::Debug for PublicKeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.path.display(), self.key.alg().as_str())
    }
}

/// clap `value_parser` of `JWT_PUBLIC_KEY_FILE`: reads and checks the key.
pub fn parse_public_key_file(path: &str) -> Result<PublicKeyFile, PemKeyError> {
    use std::io::Read as _;
    let read_err = |source| PemKeyError::Read {
        path: path.to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut text = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(read_err)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(PemKeyError::TooLarge(path.to_string()));
    }
    let key = key_from_pem(path, &text)?;
    Ok(PublicKeyFile {
        path: PathBuf::from(path),
        key,
    })
}

/// The one public key in `text` (PEM), pinned to the algorithm its type verifies.
pub fn key_from_pem(path: &str, text: &[u8]) -> Result<VerificationKey, PemKeyError> {
    let blocks = pem::parse_many(text).map_err(|_| PemKeyError::NotPem(path.to_string()))?;
    let block = match blocks.as_slice() {
        [] => return Err(PemKeyError::NotPem(path.to_string())),
        [one] => one,
        many => return Err(PemKeyError::Several(path.to_string(), many.len())),
    };
    let tag = block.tag();
    let der = block.contents();
    let unsupported = || PemKeyError::Unsupported {
        path: path.to_string(),
        tag: tag.to_string(),
    };
    if tag.contains("PRIVATE KEY") {
        return Err(PemKeyError::PrivateKey(path.to_string()));
    }
    if tag == "CERTIFICATE" {
        return Err(PemKeyError::Certificate(path.to_string()));
    }
    let (alg, key) = match tag {
        "PUBLIC KEY" if der.starts_with(&P256_SPKI_PREFIX) && der.len() == 26 + 65 => (
            SigningAlg::Es256,
            DecodingKey::from_ec_pem(text).map_err(|_| unsupported())?,
        ),
        "PUBLIC KEY" if spki_algorithm_is(der, &EC_PUBLIC_KEY_OID) => {
            return Err(PemKeyError::UnsupportedCurve {
                path: path.to_string(),
            })
        }
        "PUBLIC KEY" if der.starts_with(&ED25519_SPKI_PREFIX) && der.len() == 12 + 32 => (
            SigningAlg::EdDsa,
            DecodingKey::from_ed_pem(text).map_err(|_| unsupported())?,
        ),
        "PUBLIC KEY" | "RSA PUBLIC KEY" => {
            let key = DecodingKey::from_rsa_pem(text).map_err(|_| unsupported())?;
            // Parsing the key's components checks its DER (the RSA crate's own parser).
            let bits = match Jwk::from_decoding_key(&key, None).map(|j| j.algorithm) {
                Ok(AlgorithmParameters::RSA(rsa)) => rsa_modulus_bits(&rsa.n),
                _ => None,
            }
            .ok_or_else(unsupported)?;
            if bits < MIN_RSA_BITS {
                return Err(PemKeyError::WeakRsa {
                    path: path.to_string(),
                    bits,
                });
            }
            (SigningAlg::Rs256, key)
        }
        _ => return Err(unsupported()),
    };
    Ok(VerificationKey::pinned(None, alg, key))
}
