//! DynamoDB's attribute values: the ten types, exact decimal numbers, and the wire form
//! (`{"S": "x"}`, `{"N": "1.5"}`, `{"B": "<base64>"}`, ...) with DynamoDB's validation messages.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine;
use bigdecimal::{BigDecimal, Signed, Zero};
use serde_json::{Map, Value as Json};

use crate::error::DdbError;

/// An item: attribute names to values. DynamoDB keeps no attribute order; a sorted map gives
/// answers that do not change from run to run.
pub type Item = BTreeMap<String, AttrValue>;

/// A DynamoDB number: an exact decimal of at most 38 significant digits, magnitude between
/// 1E-130 and 1E+126 (or zero). Kept normalized, so equal numbers have equal representations,
/// with its text as DynamoDB answers it made once: items are read far more often than written,
/// and formatting a big decimal on every read was the largest cost of a Query page.
#[derive(Clone)]
pub struct Number(BigDecimal, Box<str>);

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for Number {}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0)
    }
}

impl std::hash::Hash for Number {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Normalized, so equal values have equal text.
        self.1.hash(state);
    }
}

const MAX_DIGITS: u64 = 38;

impl Number {
    /// Parses a number as DynamoDB accepts it: an optional sign, digits with an optional point,
    /// an optional exponent; no spaces, no `Infinity`, no `NaN`.
    pub fn parse(text: &str) -> Result<Number, DdbError> {
        let bad = || DdbError::validation("A value provided cannot be converted into a number");
        // 38 significant digits, a sign, a point, an exponent and the zeros of the largest and
        // smallest magnitudes fit well within this; longer text is refused before the decimal
        // parser, whose cost grows faster than the text.
        if text.len() > 400 {
            return Err(DdbError::validation(
                "Attempting to store more than 38 significant digits in a Number",
            ));
        }
        let t = text.strip_prefix(['-', '+']).unwrap_or(text);
        let (mantissa, exponent) = match t.find(['e', 'E']) {
            Some(i) => (&t[..i], Some(&t[i + 1..])),
            None => (t, None),
        };
        let mut digits = 0;
        let mut points = 0;
        for c in mantissa.chars() {
            match c {
                '0'..='9' => digits += 1,
                '.' => points += 1,
                _ => return Err(bad()),
            }
        }
        if digits == 0 || points > 1 {
            return Err(bad());
        }
        if let Some(e) = exponent {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            if e.is_empty() || e.len() > 9 || !e.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
        }
        let d = BigDecimal::from_str(text).map_err(|_| bad())?;
        Number::checked(d)
    }

    /// A computed number, refused as DynamoDB refuses one it cannot store.
    pub fn checked(d: BigDecimal) -> Result<Number, DdbError> {
        let d = d.normalized();
        if d.is_zero() {
            return Ok(Number::new(BigDecimal::zero()));
        }
        if d.digits() > MAX_DIGITS {
            return Err(DdbError::validation(
                "Attempting to store more than 38 significant digits in a Number",
            ));
        }
        // The magnitude is digits * 10^-scale: its decimal exponent is digits - scale - 1.
        let (_, scale) = d.as_bigint_and_exponent();
        let exp = d.digits() as i64 - scale - 1;
        if exp > 125 {
            return Err(DdbError::validation(
                "Number overflow. Attempting to store a number with magnitude larger than supported range",
            ));
        }
        if exp < -130 {
            return Err(DdbError::validation(
                "Number underflow. Attempting to store a number with magnitude smaller than supported range",
            ));
        }
        Ok(Number::new(d))
    }

    pub fn from_i64(n: i64) -> Number {
        Number::new(BigDecimal::from(n).normalized())
    }

    fn new(d: BigDecimal) -> Number {
        let text = plain(&d).into_boxed_str();
        Number(d, text)
    }

    /// The number as DynamoDB writes it.
    pub fn as_str(&self) -> &str {
        &self.1
    }

    pub fn add(&self, other: &Number) -> Result<Number, DdbError> {
        Number::checked(&self.0 + &other.0)
    }

    pub fn sub(&self, other: &Number) -> Result<Number, DdbError> {
        Number::checked(&self.0 - &other.0)
    }

    /// The size DynamoDB counts for a number: about one byte per two significant digits, plus one.
    fn size(&self) -> usize {
        (self.0.digits() as usize).div_ceil(2) + 1
    }
}

/// Plain decimal notation, as DynamoDB answers (`1E+2` is stored and returned as `100`).
fn plain(d: &BigDecimal) -> String {
    if d.is_zero() {
        return "0".into();
    }
    let (int, scale) = d.as_bigint_and_exponent();
    let digits = int.abs().to_string();
    let mut out = String::with_capacity(digits.len() + 4);
    if int.is_negative() {
        out.push('-');
    }
    if scale <= 0 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (-scale) as usize));
        return out;
    }
    let scale = scale as usize;
    if digits.len() > scale {
        let (a, b) = digits.split_at(digits.len() - scale);
        out.push_str(a);
        out.push('.');
        out.push_str(b);
    } else {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', scale - digits.len()));
        out.push_str(&digits);
    }
    out
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.1)
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// One attribute value. Sets keep the order they were written in; equality ignores it.
#[derive(Clone, Debug)]
pub enum AttrValue {
    S(String),
    N(Number),
    B(Vec<u8>),
    Ss(Vec<String>),
    Ns(Vec<Number>),
    Bs(Vec<Vec<u8>>),
    M(Item),
    L(Vec<AttrValue>),
    Null,
    Bool(bool),
}

fn same_set<T: Ord + Clone>(a: &[T], b: &[T]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a == b
}

impl PartialEq for AttrValue {
    /// DynamoDB's equality: numbers by value, sets without order, maps and lists deeply.
    fn eq(&self, other: &Self) -> bool {
        use AttrValue::*;
        match (self, other) {
            (S(a), S(b)) => a == b,
            (N(a), N(b)) => a == b,
            (B(a), B(b)) => a == b,
            (Ss(a), Ss(b)) => same_set(a, b),
            (Ns(a), Ns(b)) => same_set(a, b),
            (Bs(a), Bs(b)) => same_set(a, b),
            (M(a), M(b)) => a == b,
            (L(a), L(b)) => a == b,
            (Null, Null) => true,
            (Bool(a), Bool(b)) => a == b,
            _ => false,
        }
    }
}

impl AttrValue {
    /// The type's name on the wire: `S`, `N`, `B`, `SS`, `NS`, `BS`, `M`, `L`, `NULL`, `BOOL`.
    pub fn type_name(&self) -> &'static str {
        match self {
            AttrValue::S(_) => "S",
            AttrValue::N(_) => "N",
            AttrValue::B(_) => "B",
            AttrValue::Ss(_) => "SS",
            AttrValue::Ns(_) => "NS",
            AttrValue::Bs(_) => "BS",
            AttrValue::M(_) => "M",
            AttrValue::L(_) => "L",
            AttrValue::Null => "NULL",
            AttrValue::Bool(_) => "BOOL",
        }
    }

    /// DynamoDB's ordering for the comparators `<`, `<=`, `>`, `>=` and `BETWEEN`: defined only
    /// between two strings (UTF-8 bytes), two numbers or two binaries.
    pub fn compare(&self, other: &AttrValue) -> Option<Ordering> {
        match (self, other) {
            (AttrValue::S(a), AttrValue::S(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            (AttrValue::N(a), AttrValue::N(b)) => Some(a.cmp(b)),
            (AttrValue::B(a), AttrValue::B(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// The bytes DynamoDB counts for this value (names excluded), for the item size limit and
    /// capacity units.
    pub fn size(&self) -> usize {
        match self {
            AttrValue::S(s) => s.len(),
            AttrValue::N(n) => n.size(),
            AttrValue::B(b) => b.len(),
            AttrValue::Ss(v) => v.iter().map(String::len).sum(),
            AttrValue::Ns(v) => v.iter().map(Number::size).sum(),
            AttrValue::Bs(v) => v.iter().map(Vec::len).sum(),
            AttrValue::M(m) => 3 + m.iter().map(|(k, v)| k.len() + v.size() + 1).sum::<usize>(),
            AttrValue::L(l) => 3 + l.iter().map(|v| v.size() + 1).sum::<usize>(),
            AttrValue::Null | AttrValue::Bool(_) => 1,
        }
    }

    /// Parses the wire form, with DynamoDB's messages for what it refuses.
    pub fn from_json(v: &Json) -> Result<AttrValue, DdbError> {
        let obj = v.as_object().ok_or_else(|| {
            DdbError::Serialization(format!("Unexpected value type in payload: {v}"))
        })?;
        let mut it = obj.iter();
        let (ty, inner) = match (it.next(), it.next()) {
            (None, _) => {
                return Err(DdbError::validation(
                    "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
                ))
            }
            (Some(_), Some(_)) => {
                return Err(DdbError::validation(
                    "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
                ))
            }
            (Some(one), None) => one,
        };
        let string = |j: &Json| -> Result<String, DdbError> {
            j.as_str().map(str::to_owned).ok_or_else(|| {
                DdbError::Serialization(format!(
                    "Unexpected value type for {ty}: expected a string, got {j}"
                ))
            })
        };
        let binary = |j: &Json| -> Result<Vec<u8>, DdbError> {
            let s = string(j)?;
            base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .map_err(|_| {
                    DdbError::Serialization(format!(
                        "Base64 encoded length is expected a multiple of 4 bytes but found: {}",
                        s.len()
                    ))
                })
        };
        let list = |j: &Json| -> Result<Vec<Json>, DdbError> {
            j.as_array().cloned().ok_or_else(|| {
                DdbError::Serialization(format!(
                    "Unexpected value type for {ty}: expected a list, got {j}"
                ))
            })
        };
        Ok(match ty.as_str() {
            "S" => AttrValue::S(string(inner)?),
            "N" => AttrValue::N(Number::parse(&string(inner)?)?),
            "B" => AttrValue::B(binary(inner)?),
            "SS" => {
                let v = list(inner)?
                    .iter()
                    .map(string)
                    .collect::<Result<Vec<_>, _>>()?;
                check_set(&v, "string", String::clone)?;
                AttrValue::Ss(v)
            }
            "NS" => {
                let raw = list(inner)?
                    .iter()
                    .map(string)
                    .collect::<Result<Vec<_>, _>>()?;
                let v = raw
                    .iter()
                    .map(|s| Number::parse(s))
                    .collect::<Result<Vec<_>, _>>()?;
                check_set(&v, "number", |n| n.to_string())?;
                AttrValue::Ns(v)
            }
            "BS" => {
                let v = list(inner)?
                    .iter()
                    .map(binary)
                    .collect::<Result<Vec<_>, _>>()?;
                check_set(&v, "binary", |b| {
                    format!("java.nio.HeapByteBuffer[pos=0 lim={} cap={}]", b.len(), b.len())
                })?;
                AttrValue::Bs(v)
            }
            "M" => {
                let m = inner.as_object().ok_or_else(|| {
                    DdbError::Serialization(format!(
                        "Unexpected value type for M: expected a map, got {inner}"
                    ))
                })?;
                AttrValue::M(item_from_json(m)?)
            }
            "L" => AttrValue::L(
                list(inner)?
                    .iter()
                    .map(AttrValue::from_json)
                    .collect::<Result<_, _>>()?,
            ),
            "NULL" => match inner {
                Json::Bool(true) => AttrValue::Null,
                _ => {
                    return Err(DdbError::invalid(
                        "Null attribute value types must have the value of true",
                    ))
                }
            },
            "BOOL" => AttrValue::Bool(inner.as_bool().ok_or_else(|| {
                DdbError::Serialization(format!(
                    "Unexpected value type for BOOL: expected a boolean, got {inner}"
                ))
            })?),
            other => {
                return Err(DdbError::Serialization(format!(
                    "Unknown attribute value type {other:?}; DynamoDB's are S, N, B, SS, NS, BS, M, L, NULL and BOOL"
                )))
            }
        })
    }

    pub fn to_json(&self) -> Json {
        let b64 = |b: &[u8]| Json::String(base64::engine::general_purpose::STANDARD.encode(b));
        let (ty, v) = match self {
            AttrValue::S(s) => ("S", Json::String(s.clone())),
            AttrValue::N(n) => ("N", Json::String(n.as_str().to_owned())),
            AttrValue::B(b) => ("B", b64(b)),
            AttrValue::Ss(v) => ("SS", v.iter().cloned().map(Json::String).collect()),
            AttrValue::Ns(v) => (
                "NS",
                v.iter().map(|n| Json::String(n.to_string())).collect(),
            ),
            AttrValue::Bs(v) => ("BS", v.iter().map(|b| b64(b)).collect()),
            AttrValue::M(m) => ("M", Json::Object(item_to_json(m))),
            AttrValue::L(l) => ("L", l.iter().map(AttrValue::to_json).collect()),
            AttrValue::Null => ("NULL", Json::Bool(true)),
            AttrValue::Bool(b) => ("BOOL", Json::Bool(*b)),
        };
        let mut o = Map::new();
        o.insert(ty.into(), v);
        Json::Object(o)
    }
}

/// DynamoDB refuses empty sets and sets with duplicates, with these messages.
fn check_set<T: Ord + Clone>(
    v: &[T],
    kind: &str,
    show: impl Fn(&T) -> String,
) -> Result<(), DdbError> {
    if v.is_empty() {
        return Err(DdbError::invalid(format!(
            "An {kind} set  may not be empty"
        )));
    }
    let mut sorted = v.to_vec();
    sorted.sort();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        let shown: Vec<String> = v.iter().map(show).collect();
        return Err(DdbError::invalid(format!(
            "Input collection [{}] contains duplicates.",
            shown.join(", ")
        )));
    }
    Ok(())
}

pub fn item_from_json(m: &Map<String, Json>) -> Result<Item, DdbError> {
    m.iter()
        .map(|(k, v)| Ok((k.clone(), AttrValue::from_json(v)?)))
        .collect()
}

pub fn item_to_json(item: &Item) -> Map<String, Json> {
    item.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()
}

/// The size of an item as DynamoDB counts it: names plus values.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + v.size()).sum()
}

/// A key attribute's value: the three types a key may have, ordered as DynamoDB orders them
/// (strings by UTF-8 bytes, numbers by value, binaries by unsigned bytes).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyVal {
    S(String),
    N(Number),
    B(Vec<u8>),
    /// A bound after every key value, for walking to the end of a partition; never stored.
    Max,
}

impl KeyVal {
    pub fn from_attr(v: &AttrValue) -> Option<KeyVal> {
        Some(match v {
            AttrValue::S(s) => KeyVal::S(s.clone()),
            AttrValue::N(n) => KeyVal::N(n.clone()),
            AttrValue::B(b) => KeyVal::B(b.clone()),
            _ => return None,
        })
    }

    pub fn to_attr(&self) -> AttrValue {
        match self {
            KeyVal::S(s) => AttrValue::S(s.clone()),
            KeyVal::N(n) => AttrValue::N(n.clone()),
            KeyVal::B(b) => AttrValue::B(b.clone()),
            // Only ever a bound; a key built from it has nothing to show.
            KeyVal::Max => AttrValue::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_exact_normalized_and_bounded() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("1.50", Ok("1.5")),
            ("1E+2", Ok("100")),
            ("-0", Ok("0")),
            ("0.000", Ok("0")),
            ("007", Ok("7")),
            ("-.5", Ok("-0.5")),
            ("1e-3", Ok("0.001")),
            (
                "12345678901234567890123456789012345678",
                Ok("12345678901234567890123456789012345678"),
            ),
            (
                "-1234.5678901234567890123456789012345678",
                Ok("-1234.5678901234567890123456789012345678"),
            ),
            (
                "123456789012345678901234567890123456789",
                Err("Attempting to store more than 38 significant digits in a Number"),
            ),
            ("1E126", Err("Number overflow. Attempting to store a number with magnitude larger than supported range")),
            ("9.9E125", Ok("990000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000")),
            ("1E-131", Err("Number underflow. Attempting to store a number with magnitude smaller than supported range")),
            ("abc", Err("A value provided cannot be converted into a number")),
            (" 1", Err("A value provided cannot be converted into a number")),
            ("1.2.3", Err("A value provided cannot be converted into a number")),
            ("", Err("A value provided cannot be converted into a number")),
            ("NaN", Err("A value provided cannot be converted into a number")),
            ("1e", Err("A value provided cannot be converted into a number")),
        ];
        for (text, want) in cases {
            let got = Number::parse(text)
                .map(|n| n.to_string())
                .map_err(|e| e.to_string());
            assert_eq!(
                got,
                want.map(str::to_owned).map_err(str::to_owned),
                "{text:?}"
            );
        }
        let big = Number::parse("12345678901234567890123456789012345678").unwrap();
        let next = Number::parse("12345678901234567890123456789012345679").unwrap();
        assert!(big < next);
        assert_eq!(
            Number::parse("0.1")
                .unwrap()
                .add(&Number::parse("0.2").unwrap())
                .unwrap()
                .to_string(),
            "0.3"
        );
    }

    #[test]
    fn wire_values_round_trip_and_bad_ones_get_dynamodb_messages() {
        let item = json!({
            "s": {"S": "héllo"}, "n": {"N": "1.50"}, "b": {"B": "AAH+/w=="},
            "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["2", "1"]}, "bs": {"BS": ["AQ==", "AgM="]},
            "l": {"L": [{"NULL": true}, {"BOOL": false}, {"M": {}}]},
        });
        let parsed = item_from_json(item.as_object().unwrap()).unwrap();
        let back = Json::Object(item_to_json(&parsed));
        let mut want = item.clone();
        want["n"] = json!({"N": "1.5"});
        assert_eq!(back, want);

        let bad: &[(Json, &str)] = &[
            (json!({}), "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"),
            (json!({"S": "a", "N": "1"}), "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"),
            (json!({"SS": []}), "One or more parameter values were invalid: An string set  may not be empty"),
            (json!({"NS": ["1", "1.0"]}), "One or more parameter values were invalid: Input collection [1, 1] contains duplicates."),
            (json!({"NULL": false}), "One or more parameter values were invalid: Null attribute value types must have the value of true"),
            (json!({"N": "x"}), "A value provided cannot be converted into a number"),
        ];
        for (v, want) in bad {
            assert_eq!(
                AttrValue::from_json(v).unwrap_err().to_string(),
                *want,
                "{v}"
            );
        }
    }

    #[test]
    fn equality_ignores_set_order_and_number_form() {
        let a = AttrValue::from_json(&json!({"NS": ["1", "2.0"]})).unwrap();
        let b = AttrValue::from_json(&json!({"NS": ["2", "1"]})).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, AttrValue::from_json(&json!({"SS": ["1", "2"]})).unwrap());
        let s = |x: &str| AttrValue::S(x.into());
        assert_eq!(s("a").compare(&s("b")), Some(Ordering::Less));
        // UTF-8 byte order: U+00E9 sorts after every ASCII letter.
        assert_eq!(s("\u{e9}").compare(&s("z")), Some(Ordering::Greater));
        assert_eq!(s("1").compare(&AttrValue::N(Number::from_i64(1))), None);
    }
}
