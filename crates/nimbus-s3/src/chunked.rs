//! The `aws-chunked` content encoding (pure, fed as bytes arrive): what current SDKs send when
//! they stream an upload with a trailing checksum
//! (`x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER`) or signed chunks
//! (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`):
//! `<hex size>[;chunk-signature=…]\r\n<data>\r\n … 0[;…]\r\n[<trailer>:<value>\r\n]*\r\n`.
//! Chunk signatures are not verified (nimbus checks no signature).

use crate::error::S3Error;

/// A header or size line longer than this is not aws-chunked.
const MAX_LINE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

#[derive(Debug)]
pub struct Decoder {
    state: State,
    line: Vec<u8>,
    /// The trailers read (`x-amz-checksum-crc32: …`), names lowercased.
    pub trailers: Vec<(String, String)>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

fn malformed(what: &str) -> S3Error {
    S3Error::new(
        400,
        "IncompleteBody",
        format!("The request body is not valid aws-chunked encoding: {what}"),
    )
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            state: State::Size,
            line: Vec::new(),
            trailers: Vec::new(),
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Feeds the next bytes of the body; `out` receives each run of decoded data.
    pub fn feed(&mut self, mut input: &[u8], out: &mut impl FnMut(&[u8])) -> Result<(), S3Error> {
        while !input.is_empty() {
            match self.state {
                State::Done => return Err(malformed("data after the final chunk")),
                State::Data(left) => {
                    let n = (left as usize).min(input.len());
                    out(&input[..n]);
                    input = &input[n..];
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                }
                State::Size | State::DataEnd | State::Trailer => {
                    let Some(line) = self.take_line(&mut input)? else {
                        return Ok(());
                    };
                    self.on_line(&line)?;
                }
            }
        }
        Ok(())
    }

    /// Takes one `\r\n`-terminated line, or keeps a partial one for the next feed.
    fn take_line(&mut self, input: &mut &[u8]) -> Result<Option<Vec<u8>>, S3Error> {
        match input.iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.line.extend_from_slice(&input[..i]);
                *input = &input[i + 1..];
                if self.line.last() == Some(&b'\r') {
                    self.line.pop();
                }
                if self.line.len() > MAX_LINE {
                    return Err(malformed("a line is too long"));
                }
                Ok(Some(std::mem::take(&mut self.line)))
            }
            None => {
                self.line.extend_from_slice(input);
                *input = &[];
                if self.line.len() > MAX_LINE {
                    return Err(malformed("a line is too long"));
                }
                Ok(None)
            }
        }
    }

    fn on_line(&mut self, line: &[u8]) -> Result<(), S3Error> {
        let line = std::str::from_utf8(line).map_err(|_| malformed("a line is not text"))?;
        match self.state {
            State::DataEnd => {
                if !line.is_empty() {
                    return Err(malformed("a chunk is longer than its size"));
                }
                self.state = State::Size;
            }
            State::Size => {
                let size = line.split(';').next().unwrap_or("").trim();
                let size = u64::from_str_radix(size, 16)
                    .map_err(|_| malformed(&format!("chunk size {size:?} is not hexadecimal")))?;
                self.state = if size == 0 {
                    State::Trailer
                } else {
                    State::Data(size)
                };
            }
            State::Trailer => {
                if line.is_empty() {
                    self.state = State::Done;
                } else {
                    let (name, value) = line
                        .split_once(':')
                        .ok_or_else(|| malformed("a trailer has no ':'"))?;
                    if self.trailers.len() >= 16 {
                        return Err(malformed("too many trailers"));
                    }
                    self.trailers
                        .push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                }
            }
            State::Data(_) | State::Done => unreachable!("lines are read only between chunks"),
        }
        Ok(())
    }

    /// Called at the end of the body: a body that stops before its final chunk was cut short.
    pub fn finish(&self) -> Result<(), S3Error> {
        match self.state {
            State::Done => Ok(()),
            // Some clients end with the zero chunk's line and no blank line after it.
            State::Trailer if self.line.is_empty() => Ok(()),
            _ => Err(S3Error::new(
                400,
                "IncompleteBody",
                "You did not provide the number of bytes specified by the Content-Length HTTP header",
            )),
        }
    }

    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(body: &[u8], piece: usize) -> Result<(Vec<u8>, Decoder), S3Error> {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for p in body.chunks(piece) {
            d.feed(p, &mut |b| out.extend_from_slice(b))?;
        }
        d.finish()?;
        Ok((out, d))
    }

    #[test]
    fn decodes_unsigned_trailer_body_in_any_split() {
        let body = b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
        for piece in 1..body.len() {
            let (out, d) = decode_in_pieces(body, piece).unwrap();
            assert_eq!(out, b"hello world", "piece {piece}");
            assert_eq!(d.trailer("x-amz-checksum-crc32"), Some("DUoRhQ=="));
        }
    }

    #[test]
    fn decodes_signed_chunks() {
        let body = b"3;chunk-signature=abc\r\nabc\r\n0;chunk-signature=def\r\n\r\n";
        let (out, d) = decode_in_pieces(body, 7).unwrap();
        assert_eq!(out, b"abc");
        assert!(d.trailers.is_empty());
    }

    #[test]
    fn refuses_malformed_bodies() {
        let cases: &[&[u8]] = &[
            b"zz\r\nabc\r\n0\r\n\r\n",
            b"2\r\nabc\r\n0\r\n\r\n",
            b"5\r\nabc",
            b"3\r\nabc\r\n0\r\nno-colon\r\n\r\n",
            b"0\r\n\r\nextra",
        ];
        for body in cases {
            let e = decode_in_pieces(body, 4).unwrap_err();
            assert_eq!(
                e.code,
                "IncompleteBody",
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
