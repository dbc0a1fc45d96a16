//! S3's integrity checks (pure): the MD5 every object's ETag is made of, and the additional
//! checksums SDKs send (`x-amz-checksum-crc32`, `-crc32c`, `-crc64nvme`, `-sha1`, `-sha256`),
//! in headers or in an aws-chunked body's trailer.

use base64::Engine;
use md5::Digest as _;

use crate::error::S3Error;

static CRC32C: crc::Crc<u32, crc::Table<16>> =
    crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);
static CRC64NVME: crc::Crc<u64, crc::Table<16>> =
    crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_NVME);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

pub const ALGORITHMS: [Algorithm; 5] = [
    Algorithm::Crc32,
    Algorithm::Crc32c,
    Algorithm::Crc64Nvme,
    Algorithm::Sha1,
    Algorithm::Sha256,
];

impl Algorithm {
    /// As `x-amz-sdk-checksum-algorithm` and `ChecksumAlgorithm` name it.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "CRC32",
            Algorithm::Crc32c => "CRC32C",
            Algorithm::Crc64Nvme => "CRC64NVME",
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
        }
    }

    pub fn parse(name: &str) -> Option<Algorithm> {
        ALGORITHMS
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// `x-amz-checksum-crc32`, …
    pub fn header(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "x-amz-checksum-crc32",
            Algorithm::Crc32c => "x-amz-checksum-crc32c",
            Algorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Algorithm::Sha1 => "x-amz-checksum-sha1",
            Algorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The element of XML answers that carries it (`ChecksumCRC32`, …).
    pub fn element(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "ChecksumCRC32",
            Algorithm::Crc32c => "ChecksumCRC32C",
            Algorithm::Crc64Nvme => "ChecksumCRC64NVME",
            Algorithm::Sha1 => "ChecksumSHA1",
            Algorithm::Sha256 => "ChecksumSHA256",
        }
    }

    fn digest_len(self) -> usize {
        match self {
            Algorithm::Crc32 | Algorithm::Crc32c => 4,
            Algorithm::Crc64Nvme => 8,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
        }
    }

    pub fn hasher(self) -> Hasher {
        match self {
            Algorithm::Crc32 => Hasher::Crc32(crc32fast::Hasher::new()),
            Algorithm::Crc32c => Hasher::Crc32c(CRC32C.digest()),
            Algorithm::Crc64Nvme => Hasher::Crc64Nvme(CRC64NVME.digest()),
            Algorithm::Sha1 => Hasher::Sha1(Box::default()),
            Algorithm::Sha256 => Hasher::Sha256(Box::default()),
        }
    }

    /// Checks that a client's value is base64 of the right length, as S3 does before reading
    /// the body.
    pub fn check_value(self, value: &str) -> Result<(), S3Error> {
        match base64::engine::general_purpose::STANDARD.decode(value) {
            Ok(raw) if raw.len() == self.digest_len() => Ok(()),
            _ => Err(S3Error::invalid_request(format!(
                "Value for {} header is invalid.",
                self.header()
            ))),
        }
    }

    /// The error S3 gives when a value does not match the body.
    pub fn mismatch(self) -> S3Error {
        S3Error::new(
            400,
            "BadDigest",
            format!(
                "The {} you specified did not match the calculated checksum.",
                self.name()
            ),
        )
    }

    /// A multipart object's checksum: the checksum of the parts' checksums, `-<parts>`.
    pub fn composite(self, parts: &[String]) -> Option<String> {
        let mut h = self.hasher();
        for p in parts {
            h.update(&base64::engine::general_purpose::STANDARD.decode(p).ok()?);
        }
        Some(format!("{}-{}", h.finish(), parts.len()))
    }
}

pub enum Hasher {
    Crc32(crc32fast::Hasher),
    Crc32c(crc::Digest<'static, u32, crc::Table<16>>),
    Crc64Nvme(crc::Digest<'static, u64, crc::Table<16>>),
    Sha1(Box<sha1_smol::Sha1>),
    Sha256(Box<sha2::Sha256>),
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc32(h) => h.update(data),
            Hasher::Crc32c(h) => h.update(data),
            Hasher::Crc64Nvme(h) => h.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => sha2::Digest::update(h.as_mut(), data),
        }
    }

    /// The value as S3 writes it: base64 of the big-endian digest.
    pub fn finish(self) -> String {
        let raw: Vec<u8> = match self {
            Hasher::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            Hasher::Crc32c(h) => h.finalize().to_be_bytes().to_vec(),
            Hasher::Crc64Nvme(h) => h.finalize().to_be_bytes().to_vec(),
            Hasher::Sha1(h) => h.digest().bytes().to_vec(),
            Hasher::Sha256(h) => sha2::Digest::finalize(*h).to_vec(),
        };
        base64::engine::general_purpose::STANDARD.encode(raw)
    }
}

/// What a body is hashed with while it is stored: always MD5 (the ETag), and the checksum the
/// client asked for, if any.
pub struct Digests {
    md5: md5::Md5,
    checksum: Option<(Algorithm, Hasher)>,
    pub len: u64,
}

/// A stored body's digests.
#[derive(Debug, Clone, PartialEq)]
pub struct Digested {
    pub md5: [u8; 16],
    pub checksum: Option<(Algorithm, String)>,
    pub len: u64,
}

impl Digested {
    pub fn md5_hex(&self) -> String {
        hex(&self.md5)
    }
}

impl Digests {
    pub fn new(algorithm: Option<Algorithm>) -> Digests {
        Digests {
            md5: md5::Md5::new(),
            checksum: algorithm.map(|a| (a, a.hasher())),
            len: 0,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        if let Some((_, h)) = &mut self.checksum {
            h.update(data);
        }
        self.len += data.len() as u64;
    }

    pub fn finish(self) -> Digested {
        Digested {
            md5: self.md5.finalize().into(),
            checksum: self.checksum.map(|(a, h)| (a, h.finish())),
            len: self.len,
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// A multipart object's ETag: the MD5 of the parts' binary MD5s, `-<parts>`.
pub fn multipart_etag(part_md5_hexes: &[String]) -> String {
    let mut h = md5::Md5::new();
    for p in part_md5_hexes {
        let raw: Vec<u8> = (0..p.len() / 2)
            .filter_map(|i| u8::from_str_radix(&p[2 * i..2 * i + 2], 16).ok())
            .collect();
        h.update(&raw);
    }
    format!("{}-{}", hex(&h.finalize()), part_md5_hexes.len())
}

/// `Content-MD5`: base64 of 16 bytes, or S3's `InvalidDigest`.
pub fn parse_content_md5(value: &str) -> Result<[u8; 16], S3Error> {
    base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()
        .and_then(|raw| <[u8; 16]>::try_from(raw).ok())
        .ok_or_else(|| {
            S3Error::new(
                400,
                "InvalidDigest",
                "The Content-MD5 you specified was invalid.",
            )
            .with("Content-MD5", value)
        })
}

pub fn bad_digest(expected_b64: &str, got: &[u8; 16]) -> S3Error {
    S3Error::new(
        400,
        "BadDigest",
        "The Content-MD5 you specified did not match what we received.",
    )
    .with("ExpectedDigest", expected_b64)
    .with(
        "CalculatedDigest",
        base64::engine::general_purpose::STANDARD.encode(got),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Check values from the algorithms' catalogue ("123456789") and from S3's documentation.
    #[test]
    fn checksums_match_known_values() {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let cases: &[(Algorithm, String)] = &[
            (Algorithm::Crc32, b64(&0xCBF4_3926u32.to_be_bytes())),
            (Algorithm::Crc32c, b64(&0xE306_9283u32.to_be_bytes())),
            (
                Algorithm::Crc64Nvme,
                b64(&0xAE8B_1486_0A79_9888u64.to_be_bytes()),
            ),
            (Algorithm::Sha1, "98O8HYCOBHMq32eZZczDTKeuNEE=".into()),
            (
                Algorithm::Sha256,
                "FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU=".into(),
            ),
        ];
        for (a, want) in cases {
            let mut h = a.hasher();
            h.update(b"1234");
            h.update(b"56789");
            assert_eq!(&h.finish(), want, "{}", a.name());
            assert!(a.check_value(want).is_ok());
            assert_eq!(a.check_value("AAAA").unwrap_err().code, "InvalidRequest");
        }
    }

    #[test]
    fn etags_single_and_multipart() {
        let mut d = Digests::new(None);
        d.update(b"hello");
        assert_eq!(d.finish().md5_hex(), "5d41402abc4b2a76b9719d911017c592");
        // md5(md5("a") || md5("b")) with "-2".
        let parts = [
            "0cc175b9c0f1b6a831c399e269772661".to_owned(),
            "92eb5ffee6ae2fec3ad71c777531578f".to_owned(),
        ];
        let mut h = md5::Md5::new();
        h.update([
            0x0c, 0xc1, 0x75, 0xb9, 0xc0, 0xf1, 0xb6, 0xa8, 0x31, 0xc3, 0x99, 0xe2, 0x69, 0x77,
            0x26, 0x61,
        ]);
        h.update([
            0x92, 0xeb, 0x5f, 0xfe, 0xe6, 0xae, 0x2f, 0xec, 0x3a, 0xd7, 0x1c, 0x77, 0x75, 0x31,
            0x57, 0x8f,
        ]);
        assert_eq!(multipart_etag(&parts), format!("{}-2", hex(&h.finalize())));
    }

    #[test]
    fn content_md5_must_be_16_bytes_of_base64() {
        assert!(parse_content_md5("XUFAKrxLKna5cZ2REBfFkg==").is_ok());
        for bad in ["nope", "AAAA", ""] {
            assert_eq!(parse_content_md5(bad).unwrap_err().code, "InvalidDigest");
        }
    }
}
