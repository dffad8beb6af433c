//! Why a JWT was refused. The client only ever sees `unauthorized` (401 at the handshake,
//! `error{unauthorized}` for an `auth` frame); the reason is logged and counted
//! (`streamline_gateway_auth_failures_total{reason}`), so that an operator can tell a clock problem from
//! a key problem from an attack.

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("no token")]
    Missing,
    #[error("token longer than 8 KiB")]
    TooLong,
    #[error("not a well-formed JWT")]
    Malformed,
    /// The header's `alg` is one no configured key is pinned to (`none`, `HS512`, an `HS256`
    /// token on a gateway without `AUTH_SECRET`, …).
    #[error("no key takes this token's algorithm")]
    UnsupportedAlg,
    /// No key of the token's `kid` (or, without `kid`, none of its algorithm), even after the
    /// JWKS was refetched (or while a refetch is not allowed yet).
    #[error("no key of this token's kid")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
    #[error("expired")]
    Expired,
    #[error("not valid yet (nbf)")]
    NotYetValid,
    #[error("sub missing, not a string, empty or longer than 256 bytes")]
    BadSubject,
    #[error("iss missing or not JWT_ISSUER")]
    BadIssuer,
    #[error("aud missing or not in JWT_AUDIENCE")]
    BadAudience,
}

impl JwtError {
    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            JwtError::Missing => "missing",
            JwtError::TooLong => "too_long",
            JwtError::Malformed => "malformed",
            JwtError::UnsupportedAlg => "unsupported_alg",
            JwtError::UnknownKey => "unknown_key",
            JwtError::BadSignature => "bad_signature",
            JwtError::Expired => "expired",
            JwtError::NotYetValid => "not_yet_valid",
            JwtError::BadSubject => "bad_subject",
            JwtError::BadIssuer => "bad_issuer",
            JwtError::BadAudience => "bad_audience",
        }
    }

    /// Every reason, to pre-register metrics.
    pub const ALL: [JwtError; 11] = [
        JwtError::Missing,
        JwtError::TooLong,
        JwtError::Malformed,
        JwtError::UnsupportedAlg,
        JwtError::UnknownKey,
        JwtError::BadSignature,
        JwtError::Expired,
        JwtError::NotYetValid,
        JwtError::BadSubject,
        JwtError::BadIssuer,
        JwtError::BadAudience,
    ];

    /// What a refusal of `jsonwebtoken::decode` means here. Only reached once a key was chosen
    /// for the token, so a key-format error is that key not verifying it.
    pub(super) fn from_decode(e: &jsonwebtoken::errors::Error) -> JwtError {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidKeyFormat
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey => JwtError::BadSignature,
            ErrorKind::InvalidAlgorithm
            | ErrorKind::UnsupportedAlgorithm
            | ErrorKind::MissingAlgorithm => JwtError::UnsupportedAlg,
            ErrorKind::InvalidIssuer => JwtError::BadIssuer,
            ErrorKind::InvalidAudience => JwtError::BadAudience,
            ErrorKind::MissingRequiredClaim(claim) | ErrorKind::InvalidClaimFormat(claim) => {
                match claim.as_str() {
                    "iss" => JwtError::BadIssuer,
                    "aud" => JwtError::BadAudience,
                    "sub" => JwtError::BadSubject,
                    _ => JwtError::Malformed,
                }
            }
            ErrorKind::ExpiredSignature => JwtError::Expired,
            ErrorKind::ImmatureSignature => JwtError::NotYetValid,
            _ => JwtError::Malformed,
        }
    }
}
