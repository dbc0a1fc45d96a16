//! Receiving an upload: the request body streamed to a temporary file while it is hashed (MD5
//! for the ETag, the client's checksum if it sent one), aws-chunked bodies decoded on the way,
//! and every check S3 makes (`Content-MD5`, `x-amz-checksum-*`, the decoded length) made before
//! the file is published. A body is never whole in memory: up to [`SPILL`] bytes are buffered
//! (small objects are then written in one call), beyond that a hashing thread and a writing
//! thread take the chunks through bounded channels, so hashing, disk writes and the network
//! overlap.

use std::io::Write;
use std::path::PathBuf;

use axum::body::Body;
use axum::http::HeaderMap;
use bytes::Bytes;
use http_body_util::BodyExt;

use crate::checksum::{self, Algorithm, Digested, Digests};
use crate::chunked::Decoder;
use crate::error::S3Error;
use crate::state::Files;

/// Bodies up to this size are buffered and written at once.
const SPILL: usize = 1 << 20;
/// Chunks in flight to the writer thread (each a frame of the connection, tens of KiB).
const CHANNEL: usize = 32;

/// What a request says its body will be.
#[derive(Debug, Default)]
pub(crate) struct Expect {
    pub chunked: bool,
    pub decoded_len: Option<u64>,
    pub algorithm: Option<Algorithm>,
    /// The checksum's value from a header; `None` with `trailer` set when it comes after the body.
    pub value: Option<String>,
    pub trailer: bool,
    pub content_md5: Option<(String, [u8; 16])>,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

pub(crate) fn expect(h: &HeaderMap) -> Result<Expect, S3Error> {
    let mut e = Expect {
        chunked: header(h, "x-amz-content-sha256").is_some_and(|v| v.starts_with("STREAMING-"))
            || header(h, "content-encoding")
                .is_some_and(|v| v.split(',').any(|p| p.trim() == "aws-chunked")),
        ..Expect::default()
    };
    if let Some(v) = header(h, "x-amz-decoded-content-length") {
        e.decoded_len = Some(v.trim().parse().map_err(|_| {
            S3Error::invalid_argument(
                "x-amz-decoded-content-length is not a number",
                "x-amz-decoded-content-length",
                v,
            )
        })?);
    }
    for a in checksum::ALGORITHMS {
        if let Some(v) = header(h, a.header()) {
            if e.value.is_some() {
                return Err(S3Error::invalid_request(
                    "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
                ));
            }
            a.check_value(v)?;
            e.algorithm = Some(a);
            e.value = Some(v.to_owned());
        }
    }
    if let Some(t) = header(h, "x-amz-trailer") {
        let a = checksum::ALGORITHMS
            .into_iter()
            .find(|a| a.header().eq_ignore_ascii_case(t.trim()))
            .ok_or_else(|| {
                S3Error::invalid_request(format!(
                    "The value specified in the x-amz-trailer header is not supported: {t}"
                ))
            })?;
        e.algorithm = Some(a);
        e.trailer = true;
    }
    if e.algorithm.is_none() {
        if let Some(name) = header(h, "x-amz-sdk-checksum-algorithm") {
            e.algorithm = Some(Algorithm::parse(name).ok_or_else(|| {
                S3Error::invalid_argument(
                    "Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]",
                    "x-amz-sdk-checksum-algorithm",
                    name,
                )
            })?);
        }
    }
    if let Some(v) = header(h, "content-md5") {
        e.content_md5 = Some((v.to_owned(), checksum::parse_content_md5(v)?));
    }
    Ok(e)
}

/// A body stored as a published file.
#[derive(Debug)]
pub(crate) struct Stored {
    pub file: String,
    pub digested: Digested,
}

enum Sink {
    Buffer(Vec<u8>),
    Thread {
        tx: tokio::sync::mpsc::Sender<Bytes>,
        done: tokio::task::JoinHandle<std::io::Result<Digested>>,
    },
}

struct Writer {
    sink: Sink,
    path: PathBuf,
    algorithm: Option<Algorithm>,
    len: u64,
}

impl Writer {
    async fn push(&mut self, data: Bytes) -> Result<(), S3Error> {
        self.len += data.len() as u64;
        match &mut self.sink {
            Sink::Buffer(buf) if buf.len() + data.len() <= SPILL => {
                buf.extend_from_slice(&data);
                Ok(())
            }
            Sink::Buffer(buf) => {
                let first = std::mem::take(buf);
                let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(CHANNEL);
                let path = self.path.clone();
                let algorithm = self.algorithm;
                // Two stages on two blocking threads: hashing (MD5 is the slowest step, about
                // 600 MiB/s) and writing, so the disk never waits for the hash.
                let runtime = tokio::runtime::Handle::current();
                let done = tokio::task::spawn_blocking(move || {
                    let (wtx, mut wrx) = tokio::sync::mpsc::channel::<Bytes>(CHANNEL);
                    let writer = runtime.spawn_blocking(move || -> std::io::Result<()> {
                        let mut f = std::fs::File::create(&path)?;
                        while let Some(chunk) = wrx.blocking_recv() {
                            f.write_all(&chunk)?;
                        }
                        Ok(())
                    });
                    let mut d = Digests::new(algorithm);
                    let mut next = Some(Bytes::from(first));
                    while let Some(chunk) = next.take().or_else(|| rx.blocking_recv()) {
                        d.update(&chunk);
                        if wtx.blocking_send(chunk).is_err() {
                            break; // the writer failed: its error is below
                        }
                    }
                    drop(wtx);
                    match runtime.block_on(writer) {
                        Ok(written) => written?,
                        Err(e) => return Err(std::io::Error::other(e.to_string())),
                    }
                    Ok(d.finish())
                });
                let sent = tx.send(data).await;
                self.sink = Sink::Thread { tx, done };
                match sent {
                    Ok(()) => Ok(()),
                    Err(_) => Err(self.fail().await),
                }
            }
            Sink::Thread { tx, .. } => match tx.send(data).await {
                Ok(()) => Ok(()),
                Err(_) => Err(self.fail().await),
            },
        }
    }

    /// The writer thread stopped early: its error.
    async fn fail(&mut self) -> S3Error {
        match std::mem::replace(&mut self.sink, Sink::Buffer(Vec::new())) {
            Sink::Thread { tx, done } => {
                drop(tx);
                match done.await {
                    Ok(Err(e)) => S3Error::from(e),
                    _ => S3Error::internal("the object writer stopped"),
                }
            }
            Sink::Buffer(_) => S3Error::internal("the object writer stopped"),
        }
    }

    async fn finish(self) -> Result<Digested, S3Error> {
        match self.sink {
            Sink::Buffer(buf) => {
                let mut d = Digests::new(self.algorithm);
                d.update(&buf);
                // A small file: one write, cheaper on this task than a hop to a thread.
                std::fs::write(&self.path, &buf)?;
                Ok(d.finish())
            }
            Sink::Thread { tx, done } => {
                drop(tx);
                match done.await {
                    Ok(r) => Ok(r?),
                    Err(e) => Err(S3Error::internal(e.to_string())),
                }
            }
        }
    }

    /// Stops and removes what was written.
    async fn abandon(self) {
        if let Sink::Thread { tx, done } = self.sink {
            drop(tx);
            let _ = done.await;
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn too_large(max: u64, size: u64) -> S3Error {
    S3Error::new(
        400,
        "EntityTooLarge",
        "Your proposed upload exceeds the maximum allowed size",
    )
    .with("ProposedSize", size.to_string())
    .with("MaxSizeAllowed", max.to_string())
}

fn incomplete() -> S3Error {
    S3Error::new(
        400,
        "IncompleteBody",
        "You did not provide the number of bytes specified by the Content-Length HTTP header",
    )
}

/// Streams `body` into a new file under `files`, checks it as `expect` says, and publishes it.
/// Nothing is left behind on any error.
pub(crate) async fn receive(
    files: &Files,
    body: Body,
    expect: &Expect,
    max: u64,
) -> Result<Stored, S3Error> {
    if let Some(n) = expect.decoded_len.filter(|n| *n > max) {
        return Err(too_large(max, n));
    }
    let (id, path) = files.new_tmp();
    let mut w = Writer {
        sink: Sink::Buffer(Vec::new()),
        path,
        algorithm: expect.algorithm,
        len: 0,
    };
    match stream(body, expect, max, &mut w).await {
        Ok(trailer) => {
            let tmp = w.path.clone();
            match w.finish().await.and_then(|d| verify(expect, trailer, d)) {
                Ok(digested) => {
                    files.publish(&id, &tmp)?;
                    Ok(Stored { file: id, digested })
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    Err(e)
                }
            }
        }
        Err(e) => {
            w.abandon().await;
            Err(e)
        }
    }
}

/// Feeds the body to the writer; returns the checksum trailer's value, if any.
async fn stream(
    mut body: Body,
    expect: &Expect,
    max: u64,
    w: &mut Writer,
) -> Result<Option<String>, S3Error> {
    let mut decoder = expect.chunked.then(Decoder::new);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| incomplete())?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        match &mut decoder {
            None => w.push(data).await?,
            Some(d) => {
                let mut pieces = Vec::new();
                d.feed(&data, &mut |piece| pieces.push(data.slice_ref(piece)))?;
                for p in pieces {
                    w.push(p).await?;
                }
            }
        }
        if w.len > max {
            return Err(too_large(max, w.len));
        }
    }
    let Some(d) = decoder else {
        return Ok(None);
    };
    d.finish()?;
    if expect.decoded_len.is_some_and(|n| n != w.len) {
        return Err(incomplete());
    }
    Ok(expect
        .algorithm
        .filter(|_| expect.trailer)
        .and_then(|a| d.trailer(a.header()))
        .map(str::to_owned))
}

fn verify(expect: &Expect, trailer: Option<String>, d: Digested) -> Result<Digested, S3Error> {
    if let Some((b64, md5)) = &expect.content_md5 {
        if *md5 != d.md5 {
            return Err(checksum::bad_digest(b64, &d.md5));
        }
    }
    if let (Some((algorithm, got)), Some(want)) = (&d.checksum, expect.value.clone().or(trailer)) {
        algorithm.check_value(&want)?;
        if *got != want {
            return Err(algorithm.mismatch());
        }
    }
    Ok(d)
}

/// Writes a new body file with `write` (given its temporary path) off the async workers, and
/// publishes it: its id and what `write` returned. Nothing is left behind on an error.
pub(crate) async fn write_file<T: Send + 'static>(
    files: &Files,
    write: impl FnOnce(&std::path::Path) -> std::io::Result<T> + Send + 'static,
) -> Result<(String, T), S3Error> {
    let (id, tmp) = files.new_tmp();
    let into = tmp.clone();
    let written = tokio::task::spawn_blocking(move || write(&into))
        .await
        .map_err(|e| S3Error::internal(e.to_string()))?;
    match written {
        Ok(t) => {
            files.publish(&id, &tmp)?;
            Ok((id, t))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e.into())
        }
    }
}

/// A small request body (an XML document), decoded and checked like an upload, in memory.
pub(crate) async fn read_small(body: Body, h: &HeaderMap, limit: usize) -> Result<String, S3Error> {
    let expect = expect(h)?;
    let mut raw = Vec::new();
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| incomplete())?;
        if let Ok(data) = frame.into_data() {
            raw.extend_from_slice(&data);
            if raw.len() > limit {
                return Err(S3Error::new(
                    400,
                    "MaxMessageLengthExceeded",
                    "Your request was too big.",
                ));
            }
        }
    }
    let mut trailer = None;
    if expect.chunked {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        d.feed(&raw, &mut |p| out.extend_from_slice(p))?;
        d.finish()?;
        trailer = expect
            .algorithm
            .and_then(|a| d.trailer(a.header()))
            .map(str::to_owned);
        raw = out;
    }
    let mut digests = Digests::new(expect.algorithm);
    digests.update(&raw);
    verify(&expect, trailer, digests.finish())?;
    String::from_utf8(raw).map_err(|_| S3Error::malformed_xml())
}
