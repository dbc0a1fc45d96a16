//! SNS's message signatures, as HTTP/HTTPS subscribers verify them: the string SNS signs for
//! each message type, signed with SHA1withRSA (`SignatureVersion` 1) or SHA256withRSA (2) by an
//! RSA key whose certificate is at the message's `SigningCertURL`.
//!
//! The key is nimbus's own (AWS's is not available): generated once per state directory, kept
//! beside the topic database (the key readable by its owner only), and its self-signed
//! certificate served on nimbus's endpoint. A subscriber that checks the certificate's URL
//! against `sns.<region>.amazonaws.com`, as AWS's SDK validators do, must be told about nimbus's
//! endpoint; one that verifies the signature against the certificate it downloads works as is.

use std::path::{Path, PathBuf};

use base64::Engine;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use serde_json::{Map, Value};
use sha2::Digest;

use crate::SnsError;

const KEY_FILE: &str = "sns-signing-key.pem";
const CERT_FILE: &str = "sns-signing-cert.pem";

/// DER `DigestInfo` prefixes (RFC 8017, 9.2) of SHA-1 and SHA-256: the hashes are computed here,
/// so the padding is given its algorithm's prefix rather than a `Digest` type.
const SHA1_PREFIX: &[u8] = &[
    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
];
const SHA256_PREFIX: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// The signing key and its certificate.
pub(crate) struct Signer {
    key: RsaPrivateKey,
    cert_pem: String,
}

fn failed(what: &str, e: impl std::fmt::Display) -> SnsError {
    SnsError::Internal(format!("SNS's signing key: {what}: {e}"))
}

impl Signer {
    /// The key and certificate kept in `dir`, or new ones (written there when `dir` is given).
    pub(crate) fn load_or_create(dir: Option<&Path>) -> Result<Signer, SnsError> {
        let files = dir.map(|d| (d.join(KEY_FILE), d.join(CERT_FILE)));
        if let Some((key_path, cert_path)) = &files {
            // Only missing files make a new key: one that cannot be read is an error, not a
            // reason to replace the key subscribers may have pinned.
            let read = |p: &Path| match std::fs::read_to_string(p) {
                Ok(text) => Ok(Some(text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(failed(&format!("cannot read {}", p.display()), e)),
            };
            if let (Some(key_pem), Some(cert_pem)) = (read(key_path)?, read(cert_path)?) {
                let key = RsaPrivateKey::from_pkcs8_pem(&key_pem)
                    .map_err(|e| failed(&format!("cannot read {}", key_path.display()), e))?;
                return Ok(Signer { key, cert_pem });
            }
        }
        let key = RsaPrivateKey::new(&mut rand_core_06::OsRng, 2048)
            .map_err(|e| failed("cannot generate", e))?;
        let der = key.to_pkcs8_der().map_err(|e| failed("cannot encode", e))?;
        let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &der.as_bytes().into(),
            &rcgen::PKCS_RSA_SHA256,
        )
        .map_err(|e| failed("cannot use", e))?;
        let mut params = rcgen::CertificateParams::new(vec!["sns.nimbus.localhost".to_owned()])
            .map_err(|e| failed("cannot describe its certificate", e))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "sns.nimbus.localhost");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "nimbus");
        let cert_pem = params
            .self_signed(&pair)
            .map_err(|e| failed("cannot sign its certificate", e))?
            .pem();
        if let Some((key_path, cert_path)) = &files {
            let key_pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| failed("cannot encode", e))?;
            // A key that cannot be kept still signs this run's messages.
            if let Err(e) = write_private(key_path, key_pem.as_bytes())
                .and_then(|()| write_atomically(cert_path, cert_pem.as_bytes(), false))
            {
                tracing::warn!(error = %e, "SNS's signing key is kept in memory only: a restart makes a new one");
            }
        }
        Ok(Signer { key, cert_pem })
    }

    pub(crate) fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The base64 signature of `doc` (a message as SNS sends it) for `version` "1" or "2".
    pub(crate) fn sign(&self, doc: &Map<String, Value>, version: &str) -> Result<String, SnsError> {
        let (scheme, hash) = hashed(&string_to_sign(doc), version);
        let signature = self
            .key
            .sign(scheme, &hash)
            .map_err(|e| failed("cannot sign", e))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(signature))
    }
}

/// The padding scheme and hash of `text` for signature `version` "2" (SHA-256) or else "1"
/// (SHA-1).
fn hashed(text: &str, version: &str) -> (Pkcs1v15Sign, Vec<u8>) {
    match version {
        "2" => (
            Pkcs1v15Sign {
                hash_len: Some(32),
                prefix: SHA256_PREFIX.into(),
            },
            sha2::Sha256::digest(text.as_bytes()).to_vec(),
        ),
        _ => (
            Pkcs1v15Sign {
                hash_len: Some(20),
                prefix: SHA1_PREFIX.into(),
            },
            sha1_smol::Sha1::from(text.as_bytes())
                .digest()
                .bytes()
                .to_vec(),
        ),
    }
}

/// Writes the private key readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), SnsError> {
    write_atomically(path, bytes, true)
}

fn write_atomically(path: &Path, bytes: &[u8], private: bool) -> Result<(), SnsError> {
    use std::io::Write;
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    // A leftover temporary file would keep its own permissions: start afresh.
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let written = options
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    written.map_err(|e| failed(&format!("cannot write {}", path.display()), e))
}

/// The text SNS signs: each signed field's name and value on lines of their own, in the order
/// SNS documents. Notifications sign `Subject` only when they have one; confirmations sign
/// `SubscribeURL` and `Token` instead.
pub(crate) fn string_to_sign(doc: &Map<String, Value>) -> String {
    let fields: &[&str] = match doc.get("Type").and_then(Value::as_str) {
        Some("Notification") => &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ],
        _ => &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ],
    };
    let mut text = String::new();
    for field in fields {
        if let Some(v) = doc.get(*field).and_then(Value::as_str) {
            text.push_str(field);
            text.push('\n');
            text.push_str(v);
            text.push('\n');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_signed_text_names_each_field_in_snss_order() {
        for (message, want) in [
            (
                json!({"Type": "Notification", "MessageId": "m", "TopicArn": "t", "Subject": "s",
                       "Message": "hello", "Timestamp": "ts", "UnsubscribeURL": "u"}),
                "Message\nhello\nMessageId\nm\nSubject\ns\nTimestamp\nts\nTopicArn\nt\nType\nNotification\n",
            ),
            (
                json!({"Type": "Notification", "MessageId": "m", "TopicArn": "t",
                       "Message": "hello", "Timestamp": "ts"}),
                "Message\nhello\nMessageId\nm\nTimestamp\nts\nTopicArn\nt\nType\nNotification\n",
            ),
            (
                json!({"Type": "SubscriptionConfirmation", "MessageId": "m", "TopicArn": "t",
                       "Token": "k", "Message": "confirm", "SubscribeURL": "url",
                       "Timestamp": "ts"}),
                "Message\nconfirm\nMessageId\nm\nSubscribeURL\nurl\nTimestamp\nts\nToken\nk\nTopicArn\nt\nType\nSubscriptionConfirmation\n",
            ),
        ] {
            assert_eq!(string_to_sign(&doc(message)), want);
        }
    }

    #[test]
    fn signatures_verify_against_the_certificates_key_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::load_or_create(Some(dir.path())).unwrap();
        let message = doc(
            json!({"Type": "Notification", "MessageId": "m", "TopicArn": "t",
                                 "Message": "hello", "Timestamp": "ts"}),
        );
        let text = string_to_sign(&message);
        let public = rsa::RsaPublicKey::from(&signer.key);
        // Each version's hash has its algorithm's length; the Python end-to-end test checks the
        // signatures with an independent RSA implementation (python-rsa).
        for (version, hash_len) in [("1", 20), ("2", 32)] {
            let (scheme, hash) = hashed(&text, version);
            assert_eq!(hash.len(), hash_len);
            let signature = base64::engine::general_purpose::STANDARD
                .decode(signer.sign(&message, version).unwrap())
                .unwrap();
            public.verify(scheme, &hash, &signature).unwrap();
        }
        // The certificate carries the same public key, and a second start reads the same pair.
        let again = Signer::load_or_create(Some(dir.path())).unwrap();
        assert_eq!(again.cert_pem(), signer.cert_pem());
        assert_eq!(rsa::RsaPublicKey::from(&again.key), public);
        let cert_der = base64::engine::general_purpose::STANDARD
            .decode(
                signer
                    .cert_pem()
                    .lines()
                    .filter(|l| !l.starts_with("-----"))
                    .collect::<String>(),
            )
            .unwrap();
        let spki = rsa::pkcs8::EncodePublicKey::to_public_key_der(&public).unwrap();
        assert!(
            cert_der
                .windows(spki.as_bytes().len())
                .any(|w| w == spki.as_bytes()),
            "the certificate holds the signing key's public key"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
