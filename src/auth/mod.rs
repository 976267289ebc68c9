//! Tokens, scopes and the access policy. Tokens look like `asof_<id>_<secret>`; only a
//! SHA-256 of the secret is stored, found by id and compared in constant time.

pub mod blob_access;
pub mod last_use;
mod scope;

use std::str::FromStr;

use subtle::ConstantTimeEq;

pub use blob_access::BlobAccess;
pub use last_use::LastUse;
pub use scope::{Pattern, Scope, ScopeError};

use crate::catalog::CatalogError;
use crate::domain::{ArchiveName, Digest};

#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenRecord {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

/// Scopes as every catalog stores them: a JSON array of their texts.
pub fn scopes_to_json(scopes: &[Scope]) -> String {
    let texts: Vec<String> = scopes.iter().map(ToString::to_string).collect();
    serde_json::to_string(&texts).expect("strings")
}

/// Scopes read back; one that no longer parses (or a column that is not such an array)
/// grants nothing.
pub fn scopes_from_json(text: &str) -> Vec<Scope> {
    let texts: Vec<String> = serde_json::from_str(text).unwrap_or_default();
    texts.iter().filter_map(|s| s.parse::<Scope>().ok()).collect()
}

/// Where tokens and archive visibility are kept (SQLite in the embedded default).
pub trait AuthStore: Send + Sync + 'static {
    fn insert_token(
        &self,
        name: &str,
        secret_hash: &Digest,
        scopes: &[Scope],
        now: i64,
        expires_at: Option<i64>,
    ) -> Result<i64, CatalogError>;
    /// A token and the hash of its secret.
    fn token(&self, id: i64) -> Result<Option<(TokenRecord, Digest)>, CatalogError>;
    fn tokens(&self) -> Result<Vec<TokenRecord>, CatalogError>;
    /// False when there is no such token.
    fn revoke_token(&self, id: i64, now: i64) -> Result<bool, CatalogError>;
    /// Marks an archive private or public, creating it (empty) if needed, so that an
    /// archive can be private from its very first snapshot.
    fn set_private(&self, archive: &ArchiveName, private: bool, now: i64) -> Result<(), CatalogError>;
    fn is_private(&self, archive: &ArchiveName) -> Result<bool, CatalogError> {
        Ok(self.visibility(archive)? == Some(true))
    }
    /// `None` when there is no such archive, else whether it is private: one lookup for
    /// "may this caller even learn that the archive exists".
    fn visibility(&self, archive: &ArchiveName) -> Result<Option<bool>, CatalogError>;
    /// Records that token `token_id` sent the bytes of `digest` and they matched.
    fn grant_upload(&self, token_id: i64, digest: &Digest, now: i64) -> Result<(), CatalogError>;
    /// Whether token `token_id` uploaded the bytes of `digest` at or after `since`.
    fn upload_granted(&self, token_id: i64, digest: &Digest, since: i64) -> Result<bool, CatalogError>;
    /// Stores last-use times recorded in the background (see `LastUse`).
    fn touch_tokens(&self, uses: &[(i64, i64)]) -> Result<(), CatalogError>;
}

/// Who made a request, once its token checked out.
#[derive(Debug, Clone)]
pub struct Principal {
    pub token_id: i64,
    pub name: String,
    pub scopes: Vec<Scope>,
}

impl Principal {
    pub fn can_read(&self, archive: &ArchiveName) -> bool {
        self.scopes.iter().any(|s| match s {
            Scope::Admin => true,
            Scope::Read(p) | Scope::Publish(p) => p.matches(archive),
            Scope::Rollout(_) | Scope::Report(_) => false,
        })
    }

    pub fn can_publish(&self, archive: &ArchiveName) -> bool {
        self.scopes.iter().any(|s| match s {
            Scope::Admin => true,
            Scope::Publish(p) => p.matches(archive),
            Scope::Read(_) | Scope::Rollout(_) | Scope::Report(_) => false,
        })
    }

    /// Whether this caller may change rollout channel `channel`.
    pub fn can_roll_out(&self, channel: &crate::domain::ChannelName) -> bool {
        self.scopes.iter().any(|s| match s {
            Scope::Admin | Scope::Rollout(None) => true,
            Scope::Rollout(Some(c)) => c == channel,
            Scope::Read(_) | Scope::Publish(_) | Scope::Report(_) => false,
        })
    }

    /// Whether this caller may report node outcomes to channel `channel`: whoever may
    /// change it, or a `report:` token (what nodes are given).
    pub fn can_report(&self, channel: &crate::domain::ChannelName) -> bool {
        self.can_roll_out(channel)
            || self.scopes.iter().any(|s| matches!(s, Scope::Report(c) if c.as_ref().is_none_or(|c| c == channel)))
    }

    pub fn can_publish_somewhere(&self) -> bool {
        self.scopes.iter().any(|s| matches!(s, Scope::Admin | Scope::Publish(_)))
    }

    pub fn is_admin(&self) -> bool {
        self.scopes.contains(&Scope::Admin)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown or invalid token")]
    Invalid,
    #[error("token has expired")]
    Expired,
    #[error("token has been revoked")]
    Revoked,
}

impl AuthError {
    /// A label for the failed-attempts metric.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Malformed => "malformed",
            AuthError::Invalid => "invalid",
            AuthError::Expired => "expired",
            AuthError::Revoked => "revoked",
        }
    }
}

/// A token as presented: its id and secret.
pub struct PresentedToken {
    id: i64,
    secret: String,
}

impl FromStr for PresentedToken {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, AuthError> {
        let rest = s.trim().strip_prefix("asof_").ok_or(AuthError::Malformed)?;
        let (id, secret) = rest.split_once('_').ok_or(AuthError::Malformed)?;
        let id = id.parse().map_err(|_| AuthError::Malformed)?;
        if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AuthError::Malformed);
        }
        Ok(Self { id, secret: secret.to_string() })
    }
}

/// Creates a token; the returned string is shown once and never stored.
pub fn create_token(
    store: &dyn AuthStore,
    name: &str,
    scopes: &[Scope],
    expires_at: Option<i64>,
) -> Result<(i64, String), CatalogError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| CatalogError::Corrupt(format!("no randomness available: {e}")))?;
    let secret = hex::encode(secret);
    let now = chrono::Utc::now().timestamp();
    let id = store.insert_token(name, &Digest::of(secret.as_bytes()), scopes, now, expires_at)?;
    Ok((id, format!("asof_{id}_{secret}")))
}

/// Checks a presented token. Reads only: the caller notes the use in `LastUse`.
pub fn authenticate(store: &dyn AuthStore, token: &str) -> Result<Result<Principal, AuthError>, CatalogError> {
    let presented = match token.parse::<PresentedToken>() {
        Ok(t) => t,
        Err(e) => return Ok(Err(e)),
    };
    let Some((record, hash)) = store.token(presented.id)? else { return Ok(Err(AuthError::Invalid)) };
    let candidate = Digest::of(presented.secret.to_ascii_lowercase().as_bytes());
    if !bool::from(candidate.as_bytes().ct_eq(hash.as_bytes())) {
        return Ok(Err(AuthError::Invalid));
    }
    let now = chrono::Utc::now().timestamp();
    if record.revoked_at.is_some() {
        return Ok(Err(AuthError::Revoked));
    }
    if record.expires_at.is_some_and(|e| e <= now) {
        return Ok(Err(AuthError::Expired));
    }
    Ok(Ok(Principal { token_id: record.id, name: record.name, scopes: record.scopes }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_presented_tokens() {
        let good = format!("asof_12_{}", "a".repeat(64));
        assert_eq!(good.parse::<PresentedToken>().unwrap().id, 12);
        for bad in
            ["", "asof_", "asof_x_aa", &format!("asof_1_{}", "g".repeat(64)), &format!("tok_1_{}", "a".repeat(64))]
        {
            assert!(bad.parse::<PresentedToken>().is_err(), "{bad}");
        }
    }

    #[test]
    fn scopes_grant_what_they_say() {
        let p = Principal {
            token_id: 1,
            name: "ci".into(),
            scopes: vec!["publish:ubuntu/*".parse().unwrap(), "read:private".parse().unwrap()],
        };
        let a = |s: &str| s.parse::<ArchiveName>().unwrap();
        assert!(p.can_publish(&a("ubuntu/22.04")));
        assert!(p.can_read(&a("ubuntu/22.04")));
        assert!(!p.can_publish(&a("ubuntu")));
        assert!(!p.can_publish(&a("private")));
        assert!(p.can_read(&a("private")));
        assert!(!p.can_read(&a("private/x")));
        assert!(!p.is_admin());
    }
}
