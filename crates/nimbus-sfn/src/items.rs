//! A distributed `Map`'s items read from an S3 object (pure): a JSON array (or the array a
//! JSON Pointer names inside the document), JSON Lines, or CSV with the header row first or
//! the headers given, each row an object of strings, as Step Functions reads them. And the
//! listing items of `s3:listObjectsV2`.

use serde_json::{json, Map, Value};

use crate::asl::{InputType, ItemReader};

/// The items of an object's text, or the reason it holds none.
pub fn parse(r: &ItemReader, text: &str) -> Result<Vec<Value>, String> {
    match r.input_type {
        InputType::Json => {
            let doc: Value = serde_json::from_str(text)
                .map_err(|e| format!("the object is not valid JSON: {e}"))?;
            let array = match &r.items_pointer {
                Some(p) => doc
                    .pointer(p)
                    .ok_or_else(|| format!("the ItemsPointer {p} selects nothing in the object"))?,
                None => &doc,
            };
            match array {
                Value::Array(a) => Ok(a.clone()),
                _ => Err("the JSON object is not an array of items (use ItemsPointer to select one inside it)".into()),
            }
        }
        InputType::Jsonl => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map_err(|e| format!("line {} is not valid JSON: {e}", i + 1))
            })
            .collect(),
        InputType::Csv => {
            let mut rows = csv_rows(text, r.csv_delimiter)?.into_iter();
            let headers = match &r.csv_headers {
                Some(h) => h.clone(),
                None => rows.next().ok_or("the CSV object has no header row")?,
            };
            objects(rows, &headers)
        }
        InputType::Manifest => {
            Err("an inventory manifest names the files that hold the items".into())
        }
        InputType::Parquet => Err("a Parquet file is binary: read it with parquet_rows".into()),
    }
}

/// The most a Parquet file's rows may take as JSON text: its pages may unpack to far more
/// than the object's size.
const PARQUET_JSON_LIMIT: usize = 256 << 20;

/// The first `limit` rows of a Parquet file, each an object of its columns (numbers, strings,
/// lists and maps as JSON), as Step Functions reads them. Blocking: run it off the runtime.
pub fn parquet_rows(file: Vec<u8>, limit: usize) -> Result<Vec<Value>, String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let why = |e: parquet::errors::ParquetError| {
        let e = e.to_string();
        match ["zstd", "brotli"].iter().find(|c| e.contains(*c)) {
            Some(codec) => format!(
                "its pages are compressed with {codec}, which nimbus does not read (Snappy, gzip, LZ4 and uncompressed pages it does)"
            ),
            None => e,
        }
    };
    let reader = SerializedFileReader::new(bytes::Bytes::from(file)).map_err(|e| {
        format!(
            "the object is not a Parquet file nimbus can read: {}",
            why(e)
        )
    })?;
    let rows = reader
        .get_row_iter(None)
        .map_err(|e| format!("the Parquet file's rows cannot be read: {}", why(e)))?;
    let mut items = Vec::new();
    let mut size = 0;
    for row in rows.take(limit) {
        let item = row
            .map_err(|e| format!("a row of the Parquet file cannot be read: {}", why(e)))?
            .to_json_value();
        size += item.to_string().len();
        if size > PARQUET_JSON_LIMIT {
            return Err(format!(
                "the Parquet file's rows take more than {} MiB as JSON",
                PARQUET_JSON_LIMIT >> 20
            ));
        }
        items.push(item);
    }
    Ok(items)
}

/// An S3 Inventory report, as its `manifest.json` says it.
#[derive(Debug, Clone, PartialEq)]
pub struct Inventory {
    /// Where the report's files are (the manifest's `destinationBucket`, an ARN or a name).
    pub bucket: String,
    pub keys: Vec<String>,
    /// The columns of every row (`fileSchema`).
    pub schema: Vec<String>,
}

/// Reads an S3 Inventory `manifest.json`. Step Functions reads CSV inventories only.
pub fn inventory(text: &str) -> Result<Inventory, String> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| format!("the manifest is not valid JSON: {e}"))?;
    let field = |k: &str| {
        doc[k]
            .as_str()
            .ok_or_else(|| format!("the manifest has no {k}"))
    };
    let format = field("fileFormat")?;
    if !format.eq_ignore_ascii_case("CSV") {
        return Err(format!(
            "the inventory's fileFormat is {format}; Step Functions reads CSV inventories"
        ));
    }
    let bucket = field("destinationBucket")?;
    let bucket = bucket.strip_prefix("arn:aws:s3:::").unwrap_or(bucket);
    let schema = field("fileSchema")?
        .split(',')
        .map(|c| c.trim().to_owned())
        .collect();
    let keys = doc["files"]
        .as_array()
        .ok_or("the manifest has no files")?
        .iter()
        .map(|f| {
            f["key"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| "a file of the manifest has no key".to_owned())
        })
        .collect::<Result<_, _>>()?;
    Ok(Inventory {
        bucket: bucket.to_owned(),
        keys,
        schema,
    })
}

/// The rows of one inventory file (CSV without a header row), each an object of strings keyed
/// by the manifest's schema.
pub fn inventory_rows(text: &str, schema: &[String]) -> Result<Vec<Value>, String> {
    objects(csv_rows(text, ',')?.into_iter(), schema)
}

/// CSV rows as objects of strings under `headers`; a short row's missing fields are empty.
fn objects(
    rows: impl Iterator<Item = Vec<String>>,
    headers: &[String],
) -> Result<Vec<Value>, String> {
    rows.enumerate()
        .map(|(i, row)| {
            if row.len() > headers.len() {
                return Err(format!(
                    "row {} has {} fields but there are {} headers",
                    i + 1,
                    row.len(),
                    headers.len()
                ));
            }
            let mut item = Map::new();
            for (h, v) in headers
                .iter()
                .zip(row.into_iter().chain(std::iter::repeat(String::new())))
            {
                item.insert(h.clone(), Value::String(v));
            }
            Ok(Value::Object(item))
        })
        .collect()
}

/// RFC 4180 rows: fields split by `delim`, quoted fields may hold the delimiter, line breaks
/// and `""` for a quote; blank lines are skipped.
pub fn csv_rows(text: &str, delim: char) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            c if c == delim => {
                row.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                was_quoted = false;
                if !(row.len() == 1 && row[0].is_empty()) {
                    rows.push(std::mem::take(&mut row));
                } else {
                    row.clear();
                }
            }
            c => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted CSV field is not closed".into());
    }
    if !field.is_empty() || !row.is_empty() || was_quoted {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}

/// One `s3:listObjectsV2` item as Step Functions gives it (`LastModified` in epoch seconds).
pub fn listing_item(o: &Value) -> Value {
    let modified = o["LastModified"]
        .as_str()
        .and_then(crate::clock::parse_timestamp)
        .map(|ms| (ms / 1000) as i64)
        .unwrap_or(0);
    json!({
        "Etag": o["ETag"],
        "Key": o["Key"],
        "LastModified": modified,
        "Size": o["Size"],
        "StorageClass": o["StorageClass"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(input_type: InputType) -> ItemReader {
        ItemReader {
            listing: false,
            template: None,
            input_type,
            csv_headers: None,
            csv_delimiter: ',',
            max_items: None,
            items_pointer: None,
        }
    }

    #[test]
    fn json_jsonl_and_csv_objects_become_items() {
        let cases: Vec<(ItemReader, &str, Result<Value, &str>)> = vec![
            (
                reader(InputType::Json),
                r#"[{"a":1},2]"#,
                Ok(json!([{"a": 1}, 2])),
            ),
            (reader(InputType::Json), r#"{"a":1}"#, Err("not an array")),
            (
                ItemReader {
                    items_pointer: Some("/data/rows".into()),
                    ..reader(InputType::Json)
                },
                r#"{"data":{"rows":[1,2]}}"#,
                Ok(json!([1, 2])),
            ),
            (
                reader(InputType::Jsonl),
                "{\"a\":1}\n\n[2]\n",
                Ok(json!([{"a": 1}, [2]])),
            ),
            (reader(InputType::Jsonl), "{\"a\":1}\nnope\n", Err("line 2")),
            (
                reader(InputType::Csv),
                "name,qty\nbolt,3\n\"nut, hex\",\"say \"\"hi\"\"\"\n",
                Ok(
                    json!([{"name": "bolt", "qty": "3"}, {"name": "nut, hex", "qty": "say \"hi\""}]),
                ),
            ),
            (
                ItemReader {
                    csv_headers: Some(vec!["a".into(), "b".into()]),
                    csv_delimiter: '|',
                    ..reader(InputType::Csv)
                },
                "1|2\r\n3|\r\n",
                Ok(json!([{"a": "1", "b": "2"}, {"a": "3", "b": ""}])),
            ),
            (
                reader(InputType::Csv),
                "a\n1,2\n",
                Err("row 1 has 2 fields"),
            ),
            (reader(InputType::Csv), "a\n\"open\n", Err("not closed")),
        ];
        for (i, (r, text, want)) in cases.into_iter().enumerate() {
            match (parse(&r, text), want) {
                (Ok(got), Ok(want)) => assert_eq!(Value::Array(got), want, "case {i}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "case {i}: {got}"),
                (got, want) => panic!("case {i}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn an_inventory_manifest_names_its_csv_files_and_their_columns() {
        let manifest = json!({
            "sourceBucket": "photos",
            "destinationBucket": "arn:aws:s3:::inventory",
            "version": "2016-11-30",
            "fileFormat": "CSV",
            "fileSchema": "Bucket, Key, Size, LastModifiedDate",
            "files": [{"key": "photos/inv/data/a.csv.gz", "size": 10, "MD5checksum": "x"}]
        });
        let inv = inventory(&manifest.to_string()).unwrap();
        assert_eq!(inv.bucket, "inventory");
        assert_eq!(inv.keys, ["photos/inv/data/a.csv.gz"]);
        assert_eq!(inv.schema, ["Bucket", "Key", "Size", "LastModifiedDate"]);
        let rows = inventory_rows(
            "\"photos\",\"a, b.jpg\",\"12\",\"2024-01-02T03:04:05.000Z\"\n",
            &inv.schema,
        )
        .unwrap();
        assert_eq!(
            rows,
            [json!({"Bucket": "photos", "Key": "a, b.jpg", "Size": "12",
                    "LastModifiedDate": "2024-01-02T03:04:05.000Z"})]
        );
        let bad = [
            ("not json", "not valid JSON"),
            (
                r#"{"fileFormat": "ORC", "destinationBucket": "b", "fileSchema": "Key", "files": []}"#,
                "ORC",
            ),
            (
                r#"{"fileFormat": "CSV", "fileSchema": "Key", "files": []}"#,
                "destinationBucket",
            ),
            (
                r#"{"fileFormat": "CSV", "destinationBucket": "b", "fileSchema": "Key", "files": [{}]}"#,
                "no key",
            ),
        ];
        for (text, why) in bad {
            let e = inventory(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    /// A Parquet file of `(id INT64, name UTF8)` rows, its pages compressed with `codec`.
    fn parquet_file(rows: &[(i64, &str)], codec: parquet::basic::Compression) -> Vec<u8> {
        use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
        use parquet::file::properties::WriterProperties;
        use parquet::file::writer::SerializedFileWriter;
        let schema = std::sync::Arc::new(
            parquet::schema::parser::parse_message_type(
                "message item { REQUIRED INT64 id; REQUIRED BYTE_ARRAY name (UTF8); }",
            )
            .unwrap(),
        );
        let props = std::sync::Arc::new(WriterProperties::builder().set_compression(codec).build());
        let mut out = Vec::new();
        let mut w = SerializedFileWriter::new(&mut out, schema, props).unwrap();
        let mut group = w.next_row_group().unwrap();
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let names: Vec<ByteArray> = rows.iter().map(|r| ByteArray::from(r.1)).collect();
        let mut col = group.next_column().unwrap().unwrap();
        col.typed::<Int64Type>()
            .write_batch(&ids, None, None)
            .unwrap();
        col.close().unwrap();
        let mut col = group.next_column().unwrap().unwrap();
        col.typed::<ByteArrayType>()
            .write_batch(&names, None, None)
            .unwrap();
        col.close().unwrap();
        group.close().unwrap();
        w.close().unwrap();
        out
    }

    #[test]
    fn a_parquet_files_rows_become_items_whatever_its_pages_codec() {
        use parquet::basic::{Compression, GzipLevel};
        let want = vec![
            json!({"id": 1, "name": "a"}),
            json!({"id": 2, "name": "b, c"}),
        ];
        for codec in [
            Compression::UNCOMPRESSED,
            Compression::SNAPPY,
            Compression::GZIP(GzipLevel::default()),
            Compression::LZ4_RAW,
        ] {
            let file = parquet_file(&[(1, "a"), (2, "b, c")], codec);
            assert_eq!(parquet_rows(file, usize::MAX).unwrap(), want, "{codec:?}");
        }
        let file = parquet_file(&[(1, "a"), (2, "b, c")], Compression::SNAPPY);
        assert_eq!(parquet_rows(file, 1).unwrap(), want[..1]);
        let e = parquet_rows(b"id,name\n1,a\n".to_vec(), usize::MAX).unwrap_err();
        assert!(e.contains("not a Parquet file"), "{e}");
    }

    #[test]
    fn listing_items_carry_epoch_seconds() {
        let o = json!({"Key": "a", "Size": 3, "ETag": "\"x\"", "LastModified": "2026-01-01T00:00:01.000Z", "StorageClass": "STANDARD"});
        assert_eq!(listing_item(&o)["LastModified"], 1_767_225_601);
        assert_eq!(listing_item(&o)["Etag"], "\"x\"");
    }
}
