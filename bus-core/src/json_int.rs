//! Integers in request bodies, read as JSON Schema reads them: `51.0` is
//! the integer 51 (a JSON number has no separate integer type, and clients
//! in languages with one number type send it so), while `51.5` or a number
//! past 64 bits is refused. Used with `#[serde(deserialize_with = …)]`.

use serde::de::{self, Deserializer, Visitor};
use std::fmt;

struct Integer;

impl Visitor<'_> for Integer {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer (64-bit)")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        // An integer literal past 64 bits arrives here rounded: -2^63 - 1
        // reads as -2^63, so both ends are open (2^63 is past i64::MAX).
        if v.fract() == 0.0 && v > -(2f64.powi(63)) && v < 2f64.powi(63) {
            Ok(v as i64)
        } else {
            Err(E::invalid_value(de::Unexpected::Float(v), &self))
        }
    }
}

/// An `i64`.
pub fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(Integer)
}

/// An `Option<i64>` (`null` is `None`).
pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct Optional;
    impl<'de> Visitor<'de> for Optional {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer (64-bit) or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            integer(d).map(Some)
        }
    }
    d.deserialize_option(Optional)
}

/// A patch's `Option<Option<i64>>`: absent (with `#[serde(default)]`) is
/// `None`, `null` is `Some(None)`.
pub fn set_or_clear<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    optional(d).map(Some)
}

/// One integer of a list.
#[derive(serde::Deserialize)]
struct Item(#[serde(deserialize_with = "integer")] i64);

/// A `Vec<i64>`.
pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
    let items: Vec<Item> = serde::Deserialize::deserialize(d)?;
    Ok(items.into_iter().map(|Item(n)| n).collect())
}

/// An `Option<Vec<i64>>` (`null` is `None`).
pub fn optional_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<i64>>, D::Error> {
    let items: Option<Vec<Item>> = serde::Deserialize::deserialize(d)?;
    Ok(items.map(|items| items.into_iter().map(|Item(n)| n).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Body {
        #[serde(deserialize_with = "integer")]
        id: i64,
        #[serde(default, deserialize_with = "optional")]
        group: Option<i64>,
        #[serde(default, deserialize_with = "list")]
        ids: Vec<i64>,
    }

    #[test]
    fn integral_floats_are_integers_and_the_rest_is_refused() {
        let b: Body = serde_json::from_str(r#"{"id": 51.0, "group": null, "ids": [1, 2.0, -3]}"#).unwrap();
        assert_eq!(b, Body { id: 51, group: None, ids: vec![1, 2, -3] });
        let b: Body = serde_json::from_str(r#"{"id": -9223372036854775808, "group": 7.0}"#).unwrap();
        assert_eq!((b.id, b.group), (i64::MIN, Some(7)));
        let past = [r#"{"id": 9223372036854775808}"#, r#"{"id": -9223372036854775809}"#, r#"{"id": 1e19}"#];
        for bad in past.into_iter().chain([r#"{"id": 51.5}"#, r#"{"id": "1"}"#]) {
            assert!(serde_json::from_str::<Body>(bad).is_err(), "{bad}");
        }
    }
}
