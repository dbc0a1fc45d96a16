//! The AWS SDK for Rust's S3 client against nimbus's S3 handler on a loopback port: the SDK's
//! own defaults (CRC checksums, aws-chunked streaming uploads with trailers, path-style
//! addressing toward a custom endpoint) must all be understood, and what it reads back must be
//! what it wrote.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;

struct Served {
    client: Client,
    _dir: tempfile::TempDir,
}

async fn serve() -> Served {
    let dir = tempfile::tempdir().expect("a temporary state directory");
    let s3 = nimbus_s3::S3::open(
        dir.path(),
        nimbus_s3::S3Config {
            region: "us-east-1".into(),
            account: "123456789012".into(),
            day_ms: 86_400_000,
        },
    )
    .expect("S3 opens");
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let s3 = s3.clone();
        async move { s3.handle(req).await }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(format!("http://{addr}"))
        .force_path_style(true)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    Served {
        client: Client::from_conf(config),
        _dir: dir,
    }
}

#[tokio::test]
async fn the_rust_sdk_puts_gets_lists_copies_and_deletes() {
    let Served { client: c, _dir } = serve().await;
    c.create_bucket()
        .bucket("sdk")
        .send()
        .await
        .expect("CreateBucket");
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    // A streamed file: the SDK sends it aws-chunked, with its default CRC32 as a trailer.
    let file = _dir.path().join("upload.bin");
    std::fs::write(&file, &body).expect("the upload's file");
    let put = c
        .put_object()
        .bucket("sdk")
        .key("dir/data.bin")
        .content_type("application/x-test")
        .metadata("owner", "rust")
        .body(
            ByteStream::from_path(&file)
                .await
                .expect("the file as a stream"),
        )
        .send()
        .await
        .expect("PutObject");
    use base64::Engine;
    let crc =
        base64::engine::general_purpose::STANDARD.encode(crc32fast::hash(&body).to_be_bytes());
    assert_eq!(
        put.checksum_crc32(),
        Some(crc.as_str()),
        "the SDK sent a CRC32 and nimbus checked it"
    );
    let got = c
        .get_object()
        .bucket("sdk")
        .key("dir/data.bin")
        .send()
        .await
        .expect("GetObject");
    assert_eq!(got.content_type(), Some("application/x-test"));
    assert_eq!(
        got.metadata()
            .and_then(|m| m.get("owner"))
            .map(String::as_str),
        Some("rust")
    );
    let bytes = got.body.collect().await.expect("the body").into_bytes();
    assert_eq!(&bytes[..], &body[..]);

    let ranged = c
        .get_object()
        .bucket("sdk")
        .key("dir/data.bin")
        .range("bytes=10-19")
        .send()
        .await
        .expect("ranged GetObject");
    assert_eq!(ranged.content_range(), Some("bytes 10-19/300000"));
    let part = ranged.body.collect().await.expect("the range").into_bytes();
    assert_eq!(&part[..], &body[10..20]);

    c.copy_object()
        .bucket("sdk")
        .key("copy.bin")
        .copy_source("sdk/dir/data.bin")
        .send()
        .await
        .expect("CopyObject");
    let listed = c
        .list_objects_v2()
        .bucket("sdk")
        .delimiter("/")
        .send()
        .await
        .expect("ListObjectsV2");
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    let prefixes: Vec<&str> = listed
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!((keys, prefixes), (vec!["copy.bin"], vec!["dir/"]));

    c.delete_object()
        .bucket("sdk")
        .key("copy.bin")
        .send()
        .await
        .expect("DeleteObject");
    let err = c
        .head_object()
        .bucket("sdk")
        .key("copy.bin")
        .send()
        .await
        .expect_err("the key is gone");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));
    let err = c
        .get_object()
        .bucket("sdk")
        .key("copy.bin")
        .send()
        .await
        .expect_err("the key is gone");
    assert_eq!(err.code(), Some("NoSuchKey"));
}

#[tokio::test]
async fn the_rust_sdk_uploads_in_parts_with_sha256_checksums() {
    let Served { client: c, _dir } = serve().await;
    c.create_bucket()
        .bucket("parts")
        .send()
        .await
        .expect("CreateBucket");
    let up = c
        .create_multipart_upload()
        .bucket("parts")
        .key("big")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .send()
        .await
        .expect("CreateMultipartUpload");
    let id = up.upload_id().expect("an upload id").to_owned();
    let chunks = [vec![1u8; 5 << 20], vec![2u8; 5 << 20], vec![3u8; 1000]];
    let mut done = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let n = i as i32 + 1;
        let r = c
            .upload_part()
            .bucket("parts")
            .key("big")
            .upload_id(&id)
            .part_number(n)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .body(ByteStream::from(chunk.clone()))
            .send()
            .await
            .expect("UploadPart");
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().expect("a part ETag"))
                .checksum_sha256(r.checksum_sha256().expect("the part's SHA-256"))
                .build(),
        );
    }
    let complete = c
        .complete_multipart_upload()
        .bucket("parts")
        .key("big")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .expect("CompleteMultipartUpload");
    assert!(complete.e_tag().expect("an ETag").ends_with("-3\""));
    assert!(complete
        .checksum_sha256()
        .expect("the composite SHA-256")
        .ends_with("-3"));
    let got = c
        .get_object()
        .bucket("parts")
        .key("big")
        .send()
        .await
        .expect("GetObject")
        .body
        .collect()
        .await
        .expect("the body")
        .into_bytes();
    assert_eq!(got.len(), (10 << 20) + 1000);
    assert_eq!(got[..], chunks.concat()[..]);
}
