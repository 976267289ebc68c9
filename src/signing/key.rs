//! An archive's signing key: parsing the armored secret key an operator gives, and the
//! clearsigned and detached signatures asof makes with it (rpgp, no gpg process).

use pgp::composed::{ArmorOptions, CleartextSignedMessage, Deserializable, DetachedSignature, SignedSecretKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Signature, SignatureConfig, SignatureType, Subpacket, SubpacketData};
use pgp::types::{KeyDetails, KeyVersion, Password, Timestamp};

/// Why a key cannot be used for signing; each message says what to do instead.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("not an armored OpenPGP secret key ({0}); export one with `gpg --armor --export-secret-keys KEYID`")]
    Unreadable(String),
    #[error(
        "the secret key is protected by a passphrase; asof signs unattended and keeps the key in its catalog, \
         so give it a key without one (e.g. a dedicated key made with `gpg --batch --passphrase '' --quick-gen-key`)"
    )]
    Protected,
    #[error("the key is an OpenPGP v{0} key; apt's gpgv (2.2) verifies only v4 signatures, so give a v4 key")]
    Version(u8),
    #[error("the primary key is not allowed to sign (its self-signature lacks the sign flag); give a signing key")]
    CannotSign,
    #[error("signing failed: {0}")]
    Sign(String),
}

/// A usable archive key: the secret as stored, the public half users put in `Signed-By`.
#[derive(Clone)]
pub struct ArchiveKey {
    key: SignedSecretKey,
    /// Upper-case hex, as gpg prints it.
    pub fingerprint: String,
    pub secret_armored: String,
    pub public_armored: String,
}

impl std::fmt::Debug for ArchiveKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveKey").field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

impl ArchiveKey {
    /// Parses and checks an armored secret key: unprotected, v4, allowed to sign.
    pub fn from_armored(armored: &str) -> Result<Self, KeyError> {
        let (key, _) = SignedSecretKey::from_string(armored).map_err(|e| KeyError::Unreadable(e.to_string()))?;
        if key.primary_key.secret_params().is_encrypted() {
            return Err(KeyError::Protected);
        }
        if key.version() != KeyVersion::V4 {
            return Err(KeyError::Version(u8::from(key.version())));
        }
        // Without key flags (old keys) a primary key may sign; with them, one must allow it.
        let flagged: Vec<_> = key
            .details
            .users
            .iter()
            .flat_map(|u| &u.signatures)
            .map(|s| s.key_flags())
            .filter(|f| f.sign() || f.certify() || f.encrypt_comms() || f.encrypt_storage() || f.authentication())
            .collect();
        if !flagged.is_empty() && !flagged.iter().any(|f| f.sign()) {
            return Err(KeyError::CannotSign);
        }
        let public_armored = key
            .to_public_key()
            .to_armored_string(ArmorOptions::default())
            .map_err(|e| KeyError::Unreadable(e.to_string()))?;
        Ok(Self {
            fingerprint: format!("{:X}", key.fingerprint()),
            key,
            secret_armored: armored.to_owned(),
            public_armored,
        })
    }

    /// When the key was made: a signature older than its key is rejected by gpgv.
    pub fn created_at(&self) -> i64 {
        i64::from(self.key.created_at().as_secs())
    }

    /// `text` clearsigned (an InRelease), signed at `at` (unix seconds).
    pub fn clearsign(&self, text: &str, at: i64) -> Result<Vec<u8>, KeyError> {
        // The cleartext framework does not sign a line break right before the signature.
        let body = text.strip_suffix('\n').unwrap_or(text);
        let msg = CleartextSignedMessage::new_many(body, |normalized| {
            // RFC 9580 §7.1: trailing spaces and tabs are not part of the signed text (gpgv
            // strips them when verifying).
            let trimmed: String = normalized.split_inclusive('\n').map(trim_line_end).collect();
            Ok(vec![self.signature(SignatureType::Text, trimmed.as_bytes(), at)?])
        })
        .map_err(sign_error)?;
        msg.to_armored_bytes(ArmorOptions::default()).map_err(sign_error)
    }

    /// An armored detached signature over `data` (a Release.gpg), signed at `at`.
    pub fn detached(&self, data: &[u8], at: i64) -> Result<Vec<u8>, KeyError> {
        let sig = self.signature(SignatureType::Binary, data, at).map_err(sign_error)?;
        DetachedSignature::new(sig).to_armored_bytes(ArmorOptions::default()).map_err(sign_error)
    }

    fn signature(&self, typ: SignatureType, data: &[u8], at: i64) -> pgp::errors::Result<Signature> {
        let created = Timestamp::from_secs(u32::try_from(at.max(self.created_at())).unwrap_or(u32::MAX));
        // SHA-512 as Debian's archive signs; apt rejects SHA-1 signatures.
        let mut config = SignatureConfig::v4(typ, self.key.algorithm(), HashAlgorithm::Sha512);
        config.hashed_subpackets = vec![
            Subpacket::regular(SubpacketData::SignatureCreationTime(created))?,
            Subpacket::regular(SubpacketData::IssuerFingerprint(self.key.fingerprint()))?,
        ];
        config.unhashed_subpackets = vec![Subpacket::regular(SubpacketData::IssuerKeyId(self.key.legacy_key_id()))?];
        config.sign(&self.key.primary_key, &Password::empty(), data)
    }
}

fn trim_line_end(line: &str) -> String {
    let (content, end) = match line.strip_suffix("\r\n") {
        Some(c) => (c, "\r\n"),
        None => line.strip_suffix('\n').map_or((line, ""), |c| (c, "\n")),
    };
    format!("{}{end}", content.trim_end_matches([' ', '\t']))
}

fn sign_error(e: pgp::errors::Error) -> KeyError {
    KeyError::Sign(e.to_string())
}

#[cfg(test)]
mod tests {
    use pgp::composed::SignedPublicKey;

    use super::*;

    fn fixture_key() -> ArchiveKey {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/keys/test-signing.sec.asc");
        ArchiveKey::from_armored(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn reads_the_fixture_key() {
        let key = fixture_key();
        assert_eq!(key.fingerprint, "D35193C26D156CC17F75638D588654D34D56B23D");
        // 2023-12-01T00:00:00Z (fixtures/README.md).
        assert_eq!(key.created_at(), 1_701_388_800);
        assert!(key.public_armored.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----\n"));
    }

    #[test]
    fn refuses_what_is_not_a_secret_key() {
        let public =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/keys/test-signing.pub.asc"))
                .unwrap();
        assert!(matches!(ArchiveKey::from_armored(&public), Err(KeyError::Unreadable(_))));
        assert!(matches!(ArchiveKey::from_armored("hello"), Err(KeyError::Unreadable(_))));
    }

    #[test]
    fn clearsigned_text_keeps_its_bytes_and_verifies_with_trailing_spaces() {
        let key = fixture_key();
        let text = "Origin: x \nDescription: tab\t\n- dash\nSHA256:\n ab 1 f\n";
        let signed = String::from_utf8(key.clearsign(text, 1_704_067_200).unwrap()).unwrap();
        assert_eq!(crate::mirror::deb822::clearsigned_text(&signed).unwrap(), text);
        let (msg, _) = CleartextSignedMessage::from_string(&signed).unwrap();
        let public = SignedPublicKey::from_string(&key.public_armored).unwrap().0;
        let sig = msg.verify(&public).unwrap();
        assert_eq!(sig.created().unwrap().as_secs(), 1_704_067_200);
        assert_eq!(sig.hash_alg(), Some(HashAlgorithm::Sha512));
    }

    #[test]
    fn a_signature_is_never_older_than_its_key() {
        let key = fixture_key();
        let sig = key.detached(b"Origin: x\n", 0).unwrap();
        let (sig, _) = DetachedSignature::from_string(std::str::from_utf8(&sig).unwrap()).unwrap();
        assert_eq!(i64::from(sig.signature.created().unwrap().as_secs()), key.created_at());
    }
}
