//! Secrets shown once: registration tokens and API tokens. A secret is 256 random bits,
//! printed as a prefixed hex string; only its SHA-256 is ever stored.

// The one SHA-256 of bytes outside the domain lives with the wire types, because protocol may
// not import `app` and `app` may import protocol.
use crate::protocol::reservation::sha256;

/// A freshly generated secret and the hash the store keeps.
#[derive(Debug, Clone)]
pub struct Secret {
    pub text: String,
    pub hash: [u8; 32],
}

/// Generates a secret with a prefix telling what it is for (`srt_` registration token,
/// `sat_` API token), so a leaked secret is recognisable in logs and scanners.
pub fn generate(prefix: &str) -> Secret {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source is unavailable");
    let text = format!("{prefix}{}", hex(&bytes));
    let hash = hash(&text);
    Secret { text, hash }
}

/// The SHA-256 of a presented secret.
pub fn hash(text: &str) -> [u8; 32] {
    sha256(text.as_bytes())
}

pub use crate::hex::encode as hex;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_hash_matches() {
        let a = generate("srt_");
        let b = generate("srt_");
        assert_ne!(a.text, b.text);
        assert!(a.text.starts_with("srt_") && a.text.len() == 4 + 64);
        assert_eq!(a.hash, hash(&a.text));
        assert_ne!(a.hash, hash(&b.text));
        // The SHA-256 of "abc", to pin the algorithm.
        assert_eq!(
            hex(&hash("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
