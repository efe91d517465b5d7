//! Session state in a signed token: an RS256 JWT (RSA 2048 with SHA-256, through jsonwebtoken
//! and ring), signed by the server that starts a session and verified by whichever server gets
//! each later request. The claims carry padding so that the token is about the scenario's
//! `token_bytes`.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(serde::Serialize, serde::Deserialize)]
struct Claims {
    /// The session the token belongs to.
    sid: u64,
    /// Expiry (seconds since the epoch): an hour after signing.
    exp: u64,
    /// The session's state, as filler of the right size.
    state: String,
}

/// The fleet's keys: every backend signs and verifies with the same pair.
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    state: String,
}

/// Base64url characters of an RS256 token besides its claims' state: the header, the
/// signature (256 bytes), two dots, and the claims' other fields.
const FIXED_CHARS: usize = 36 + 342 + 2 + 55;

impl Keys {
    /// Reads a PEM key pair, for tokens of about `token_bytes`.
    pub fn load(private_pem: &Path, public_pem: &Path, token_bytes: usize) -> io::Result<Keys> {
        let invalid = |e: jsonwebtoken::errors::Error| io::Error::other(e.to_string());
        let encoding = EncodingKey::from_rsa_pem(&std::fs::read(private_pem)?).map_err(invalid)?;
        let decoding = DecodingKey::from_rsa_pem(&std::fs::read(public_pem)?).map_err(invalid)?;
        // Base64 writes 4 characters for each 3 bytes of the claims.
        let state_bytes = token_bytes.saturating_sub(FIXED_CHARS) * 3 / 4;
        Ok(Keys {
            encoding,
            decoding,
            validation: Validation::new(Algorithm::RS256),
            state: "s".repeat(state_bytes),
        })
    }

    pub fn sign(&self, session: u64) -> io::Result<String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = Claims {
            sid: session,
            exp: now + 3600,
            state: self.state.clone(),
        };
        encode(&Header::new(Algorithm::RS256), &claims, &self.encoding)
            .map_err(|e| io::Error::other(e.to_string()))
    }

    /// Whether `token` is a valid, unexpired token of `session`.
    pub fn verify(&self, token: &str, session: u64) -> bool {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .is_ok_and(|data| data.claims.sid == session)
    }
}

/// Generates an RSA 2048 key pair in `dir` with the `openssl` program: `jwt.key`, `jwt.pub`.
pub fn generate(dir: &Path) -> io::Result<(PathBuf, PathBuf)> {
    let (private_pem, public_pem) = (dir.join("jwt.key"), dir.join("jwt.pub"));
    let run = |command: &mut Command| -> io::Result<()> {
        let output = command.output().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot run openssl to make the JWT keys: {e}"),
            )
        })?;
        if output.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "openssl failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )))
        }
    };
    run(Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&private_pem))?;
    run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private_pem)
        .arg("-out")
        .arg(&public_pem))?;
    Ok((private_pem, public_pem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_about_their_size_and_verify_only_for_their_session() {
        let dir = std::env::temp_dir().join(format!("testbed-jwt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (private_pem, public_pem) = generate(&dir).unwrap();
        for token_bytes in [550, 2000] {
            let keys = Keys::load(&private_pem, &public_pem, token_bytes).unwrap();
            let token = keys.sign(42).unwrap();
            assert!(
                token.len().abs_diff(token_bytes) <= 8,
                "{} bytes for {token_bytes}",
                token.len()
            );
            assert!(keys.verify(&token, 42));
            assert!(!keys.verify(&token, 43));
            let mut forged = token.clone();
            forged.replace_range(40..41, if &token[40..41] == "A" { "B" } else { "A" });
            assert!(!keys.verify(&forged, 42));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
