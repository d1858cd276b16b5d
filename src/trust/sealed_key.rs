//! The sigstore encrypted private key (cosign's `cosign.key`, skopeo's
//! `--sign-by-sigstore-private-key`): a PEM block whose body is JSON naming the key derivation
//! (scrypt, with its salt and cost) and the cipher (NaCl secretbox, with its nonce) that seal
//! the PKCS#8 DER of the key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The PEM label cosign 2 and sigstore write.
pub const LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The label of keys made by cosign before 2.0; the content is the same.
pub const COSIGN_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

/// cosign's scrypt cost: N = 2^15, r = 8, p = 1 (about 100 ms and 32 MiB).
const LOG_N: u8 = 15;
const R: u32 = 8;
const P: u32 = 1;
/// The most a key file may ask of scrypt: a crafted file must take neither the host's memory
/// nor minutes. scrypt needs 128·r·N bytes and time in proportion to N·r·p: at most 256 MiB
/// (8 times cosign's) and 32 times cosign's work.
const MAX_LOG_N: u8 = 20;
const MAX_R: u32 = 16;
const MAX_P: u32 = 16;
const MAX_MEMORY: u64 = 256 << 20;
const MAX_WORK: u64 = 32 << (LOG_N as u64 + 3);

#[derive(Serialize, Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// Why a sealed key does not open.
#[derive(Debug)]
pub enum OpenError {
    /// The envelope is not what the format says (the field is named).
    Format(String),
    /// The passphrase does not open it.
    WrongPassphrase,
}

/// Seals `secret` (a PKCS#8 DER key) under `passphrase` with a fresh salt and nonce: the PEM
/// text of the key file.
pub fn seal(secret: &[u8], passphrase: &[u8]) -> String {
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 24];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut nonce);
    let key = derive(passphrase, &salt, LOG_N, R, P).expect("cosign's parameters are valid");
    let ciphertext = XSalsa20Poly1305::new(&Key::from(*key))
        .encrypt(&Nonce::from(nonce), secret)
        .expect("secretbox seals any length");
    let envelope = Envelope {
        kdf: Kdf {
            name: "scrypt".into(),
            params: KdfParams {
                n: 1 << LOG_N,
                r: R,
                p: P,
            },
            salt: STANDARD.encode(salt),
        },
        cipher: Cipher {
            name: "nacl/secretbox".into(),
            nonce: STANDARD.encode(nonce),
        },
        ciphertext: STANDARD.encode(ciphertext),
    };
    let json = serde_json::to_vec(&envelope).expect("the envelope serialises");
    p256::pkcs8::der::pem::encode_string(LABEL, p256::pkcs8::LineEnding::LF, &json)
        .expect("PEM encodes any bytes")
}

/// Opens the JSON body of a sealed key with `passphrase`: the PKCS#8 DER inside.
pub fn open(json: &[u8], passphrase: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let format = |what: &str| OpenError::Format(what.to_string());
    let envelope: Envelope = serde_json::from_slice(json)
        .map_err(|e| OpenError::Format(format!("the envelope is not the sigstore JSON: {e}")))?;
    if envelope.kdf.name != "scrypt" {
        return Err(OpenError::Format(format!(
            "kdf.name is '{}', only scrypt is known",
            envelope.kdf.name
        )));
    }
    if envelope.cipher.name != "nacl/secretbox" {
        return Err(OpenError::Format(format!(
            "cipher.name is '{}', only nacl/secretbox is known",
            envelope.cipher.name
        )));
    }
    let params = &envelope.kdf.params;
    if !params.n.is_power_of_two() || params.n < 2 {
        return Err(format("kdf.params.N is not a power of two"));
    }
    let log_n = params.n.trailing_zeros() as u8;
    let (n, r, p) = (params.n, u64::from(params.r), u64::from(params.p));
    if log_n > MAX_LOG_N
        || params.r > MAX_R
        || params.p > MAX_P
        || params.r == 0
        || params.p == 0
        || 128 * r * n > MAX_MEMORY
        || n * r * p > MAX_WORK
    {
        return Err(OpenError::Format(format!(
            "kdf.params (N={}, r={}, p={}) are beyond what a key file needs",
            params.n, params.r, params.p
        )));
    }
    let decode = |field: &str, text: &str| {
        STANDARD
            .decode(text)
            .map_err(|e| OpenError::Format(format!("{field} is not base64: {e}")))
    };
    let salt = decode("kdf.salt", &envelope.kdf.salt)?;
    let nonce = decode("cipher.nonce", &envelope.cipher.nonce)?;
    let ciphertext = decode("ciphertext", &envelope.ciphertext)?;
    let nonce: [u8; 24] = nonce
        .try_into()
        .map_err(|_| format("cipher.nonce is not 24 bytes"))?;
    let key = derive(passphrase, &salt, log_n, params.r, params.p)
        .map_err(|e| OpenError::Format(format!("kdf.params: {e}")))?;
    XSalsa20Poly1305::new(&Key::from(*key))
        .decrypt(&Nonce::from(nonce), ciphertext.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| OpenError::WrongPassphrase)
}

fn derive(
    passphrase: &[u8],
    salt: &[u8],
    log_n: u8,
    r: u32,
    p: u32,
) -> Result<Zeroizing<[u8; 32]>, String> {
    let params = scrypt::Params::new(log_n, r, p, 32).map_err(|e| e.to_string())?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(passphrase, salt, &params, &mut key[..]).map_err(|e| e.to_string())?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_opens_with_its_passphrase_only() {
        let pem = seal(b"secret bytes", b"right");
        let (label, json) = p256::pkcs8::der::pem::decode_vec(pem.as_bytes()).unwrap();
        assert_eq!(label, LABEL);
        assert_eq!(&open(&json, b"right").unwrap()[..], b"secret bytes");
        assert!(matches!(
            open(&json, b"wrong"),
            Err(OpenError::WrongPassphrase)
        ));
        let text = String::from_utf8(json).unwrap();
        assert!(
            text.contains(r#""params":{"N":32768,"r":8,"p":1}"#),
            "{text}"
        );
    }

    #[test]
    fn a_crafted_cost_is_refused_before_any_work() {
        // Too much memory (N = 2^30; N = 2^20 with r = 8 is 1 GiB, with r = 16 2 GiB), or too
        // much work (p = 16 at N = 2^18).
        for (n, r, p) in [
            (1u64 << 30, 8, 1),
            (1 << 20, 16, 16),
            (1 << 20, 8, 1),
            (1 << 18, 8, 16),
        ] {
            let json = format!(
                r#"{{"kdf":{{"name":"scrypt","params":{{"N":{n},"r":{r},"p":{p}}},"salt":""}},
                "cipher":{{"name":"nacl/secretbox","nonce":""}},"ciphertext":""}}"#
            );
            let Err(OpenError::Format(reason)) = open(json.as_bytes(), b"x") else {
                panic!("N={n} r={r} p={p} accepted")
            };
            assert!(reason.contains("kdf.params"), "{reason}");
        }
    }
}
