//! Decoding with Go's leniency and errors that name the offending field.
//!
//! [`from_json`] decodes through [`Wrap`], a `Deserializer` adapter around
//! `serde_json`'s. The adapter always asks for structs as JSON objects
//! (serde would otherwise also accept a struct written as an array of its
//! field values, which Go rejects). The first pass does nothing more and
//! succeeds for every well-formed message, since the model types accept
//! `null` in every field. Only when it fails is the input decoded a second
//! time, with the adapter also
//!
//! - recording where in the document the first error happened (the chain
//!   of map keys and list indices leading to it), and
//! - giving `null` Go's meaning everywhere: "leave the zero value", also
//!   for list elements and map values that the types themselves do not
//!   expect to be null (`"images": [null]`, `{"latest": null}`).
//!
//! If the second pass succeeds the input was valid for Go and its value is
//! returned; otherwise its error comes back with the path.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::marker::PhantomData;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess,
    Visitor,
};

/// Decodes JSON into `T` the way the reference Go client does.
///
/// Accepted beyond what the types demand: `null` anywhere a value is
/// expected (it reads as the zero value: `""`, `0`, `false`, empty list or
/// map, or `None` for optional fields), missing fields, and unknown fields.
/// Rejected: wrong types, bad times, malformed JSON, trailing data. The
/// error names the path of the value that failed, e.g. `data.image[0].size`.
///
/// ```
/// use library_model::{from_json, EntityResponse};
///
/// let err = from_json::<EntityResponse>(br#"{"data":{"name":5}}"#).unwrap_err();
/// assert_eq!(err.path(), "data.name");
/// ```
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    match decode_with(bytes, &Track::new(false)) {
        Ok(value) => Ok(value),
        Err(_) => {
            let track = Track::new(true);
            decode_with(bytes, &track).map_err(|source| DecodeError {
                path: track.take(),
                source,
            })
        }
    }
}

fn decode_with<T: DeserializeOwned>(bytes: &[u8], track: &Track) -> Result<T, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = T::deserialize(Wrap {
        de: &mut de,
        chain: &Chain::Root,
        track,
        check_null: true,
    })?;
    de.end()?;
    Ok(value)
}

/// A JSON document that could not be decoded into the expected type, with
/// the path of the value where decoding failed.
#[derive(Debug)]
pub struct DecodeError {
    path: String,
    source: serde_json::Error,
}

impl DecodeError {
    /// Where the error happened: map keys joined by `.`, list indices in
    /// brackets, e.g. `data.image[0].size`. Empty for the document itself
    /// (e.g. a syntax error before the first value, or trailing data).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The line (1-based) of the error in the input.
    pub fn line(&self) -> usize {
        self.source.line()
    }

    /// The column (1-based) of the error in the input.
    pub fn column(&self) -> usize {
        self.source.column()
    }

    /// Whether the input was malformed JSON, ended early, or was valid
    /// JSON of the wrong shape.
    pub fn classify(&self) -> serde_json::error::Category {
        self.source.classify()
    }

    /// The underlying `serde_json` error.
    pub fn into_inner(self) -> serde_json::Error {
        self.source
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.source)
        } else {
            write!(f, "{}: {}", self.path, self.source)
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The position being decoded: a linked list of path segments living on
/// the stack of the decoding functions.
enum Chain<'a> {
    Root,
    Key { parent: &'a Chain<'a>, key: String },
    Index { parent: &'a Chain<'a>, index: usize },
}

impl Chain<'_> {
    fn render(&self, out: &mut String) {
        match self {
            Chain::Root => {}
            Chain::Key { parent, key } => {
                parent.render(out);
                let plain = !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
                if plain {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                } else {
                    let _ = write!(out, "[{key:?}]");
                }
            }
            Chain::Index { parent, index } => {
                parent.render(out);
                let _ = write!(out, "[{index}]");
            }
        }
    }
}

/// The mode of a decoding pass, shared by all its adapters. In the
/// thorough pass it remembers the path of the first (innermost) failure,
/// and `null` is read as a zero value everywhere.
struct Track {
    thorough: bool,
    path: RefCell<Option<String>>,
}

impl Track {
    fn new(thorough: bool) -> Self {
        Track {
            thorough,
            path: RefCell::new(None),
        }
    }

    fn fail<E>(&self, chain: &Chain<'_>, error: E) -> E {
        if !self.thorough {
            return error;
        }
        let mut path = self.path.borrow_mut();
        if path.is_none() {
            let mut out = String::new();
            chain.render(&mut out);
            *path = Some(out);
        }
        error
    }

    fn take(&self) -> String {
        self.path.borrow_mut().take().unwrap_or_default()
    }
}

/// A deserializer that reads structs only from JSON objects and, in the
/// thorough pass, tracks the path and reads `null` as the zero value of
/// whatever type is requested (`check_null` is false only where the value
/// is already known not to be `null`).
struct Wrap<'a, D> {
    de: D,
    chain: &'a Chain<'a>,
    track: &'a Track,
    check_null: bool,
}

/// What a `deserialize_*` call asked for; used to produce the zero value
/// for `null` and to make the call again on a non-null value.
#[derive(Clone, Copy)]
enum Kind {
    Bool,
    I8,
    I16,
    I32,
    I64,
    I128,
    U8,
    U16,
    U32,
    U64,
    U128,
    F32,
    F64,
    Str,
    String,
    Seq,
    Map,
    Struct,
}

macro_rules! lenient_methods {
    ($($method:ident => $kind:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.lenient(Kind::$kind, visitor)
        }
    )*};
}

macro_rules! plain_methods {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            let (chain, track) = (self.chain, self.track);
            self.de
                .$method($($arg,)* TrackVisitor { visitor, chain, track })
                .map_err(|e| track.fail(chain, e))
        }
    )*};
}

impl<'a, 'de, D: Deserializer<'de>> Wrap<'a, D> {
    fn lenient<V: Visitor<'de>>(self, kind: Kind, visitor: V) -> Result<V::Value, D::Error> {
        let (chain, track) = (self.chain, self.track);
        let result = if self.check_null && track.thorough {
            self.de.deserialize_option(NullOr {
                visitor,
                chain,
                track,
                kind,
            })
        } else {
            let visitor = TrackVisitor {
                visitor,
                chain,
                track,
            };
            match kind {
                Kind::Bool => self.de.deserialize_bool(visitor),
                Kind::I8 => self.de.deserialize_i8(visitor),
                Kind::I16 => self.de.deserialize_i16(visitor),
                Kind::I32 => self.de.deserialize_i32(visitor),
                Kind::I64 => self.de.deserialize_i64(visitor),
                Kind::I128 => self.de.deserialize_i128(visitor),
                Kind::U8 => self.de.deserialize_u8(visitor),
                Kind::U16 => self.de.deserialize_u16(visitor),
                Kind::U32 => self.de.deserialize_u32(visitor),
                Kind::U64 => self.de.deserialize_u64(visitor),
                Kind::U128 => self.de.deserialize_u128(visitor),
                Kind::F32 => self.de.deserialize_f32(visitor),
                Kind::F64 => self.de.deserialize_f64(visitor),
                Kind::Str => self.de.deserialize_str(visitor),
                Kind::String => self.de.deserialize_string(visitor),
                Kind::Seq => self.de.deserialize_seq(visitor),
                Kind::Map => self.de.deserialize_map(visitor),
                // Asking for a map makes serde_json reject an array here.
                Kind::Struct => self.de.deserialize_map(visitor),
            }
        };
        result.map_err(|e| track.fail(chain, e))
    }
}

impl<'a, 'de, D: Deserializer<'de>> Deserializer<'de> for Wrap<'a, D> {
    type Error = D::Error;

    lenient_methods! {
        deserialize_bool => Bool;
        deserialize_i8 => I8;
        deserialize_i16 => I16;
        deserialize_i32 => I32;
        deserialize_i64 => I64;
        deserialize_i128 => I128;
        deserialize_u8 => U8;
        deserialize_u16 => U16;
        deserialize_u32 => U32;
        deserialize_u64 => U64;
        deserialize_u128 => U128;
        deserialize_f32 => F32;
        deserialize_f64 => F64;
        deserialize_str => Str;
        deserialize_string => String;
        deserialize_seq => Seq;
        deserialize_map => Map;
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.lenient(Kind::Struct, visitor)
    }

    plain_methods! {
        deserialize_any();
        deserialize_char();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    fn is_human_readable(&self) -> bool {
        self.de.is_human_readable()
    }
}

/// Asked of `deserialize_option`: `null` gives the zero value of `kind`,
/// anything else is decoded as `kind`.
struct NullOr<'a, V> {
    visitor: V,
    chain: &'a Chain<'a>,
    track: &'a Track,
    kind: Kind,
}

impl<'de, V: Visitor<'de>> NullOr<'_, V> {
    fn zero<E: de::Error>(self) -> Result<V::Value, E> {
        let v = self.visitor;
        match self.kind {
            Kind::Bool => v.visit_bool(false),
            Kind::I8 | Kind::I16 | Kind::I32 | Kind::I64 | Kind::I128 => v.visit_i64(0),
            Kind::U8 | Kind::U16 | Kind::U32 | Kind::U64 | Kind::U128 => v.visit_u64(0),
            Kind::F32 | Kind::F64 => v.visit_f64(0.0),
            Kind::Str | Kind::String => v.visit_borrowed_str(""),
            Kind::Seq => v.visit_seq(Empty(PhantomData)),
            Kind::Map | Kind::Struct => v.visit_map(Empty(PhantomData)),
        }
    }
}

impl<'de, V: Visitor<'de>> Visitor<'de> for NullOr<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.visitor.expecting(f)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.zero()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.zero()
    }

    fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<V::Value, D2::Error> {
        Wrap {
            de: d,
            chain: self.chain,
            track: self.track,
            check_null: false,
        }
        .lenient(self.kind, self.visitor)
    }
}

/// An empty list or map.
struct Empty<E>(PhantomData<E>);

impl<'de, E: de::Error> SeqAccess<'de> for Empty<E> {
    type Error = E;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, _: T) -> Result<Option<T::Value>, E> {
        Ok(None)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(0)
    }
}

impl<'de, E: de::Error> MapAccess<'de> for Empty<E> {
    type Error = E;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, _: K) -> Result<Option<K::Value>, E> {
        Ok(None)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, _: T) -> Result<T::Value, E> {
        Err(E::custom("value requested from an empty map"))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(0)
    }
}

macro_rules! forward_visits {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.visitor.$method(v)
        }
    )*};
}

/// Passes every value to the wrapped visitor, wrapping nested
/// deserializers, lists and maps so that tracking continues inside them.
struct TrackVisitor<'a, V> {
    visitor: V,
    chain: &'a Chain<'a>,
    track: &'a Track,
}

impl<'a, 'de, V: Visitor<'de>> Visitor<'de> for TrackVisitor<'a, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.visitor.expecting(f)
    }

    forward_visits! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_str(&str);
        visit_borrowed_str(&'de str);
        visit_string(String);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.visitor.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.visitor.visit_unit()
    }

    fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<V::Value, D2::Error> {
        self.visitor.visit_some(Wrap {
            de: d,
            chain: self.chain,
            track: self.track,
            check_null: true,
        })
    }

    fn visit_newtype_struct<D2: Deserializer<'de>>(self, d: D2) -> Result<V::Value, D2::Error> {
        self.visitor.visit_newtype_struct(Wrap {
            de: d,
            chain: self.chain,
            track: self.track,
            check_null: true,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_seq(TrackSeq {
            seq,
            chain: self.chain,
            track: self.track,
            index: 0,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_map(TrackMap {
            map,
            chain: self.chain,
            track: self.track,
            key: None,
        })
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        // No model is an enum; errors inside one are reported at the enum.
        self.visitor.visit_enum(data)
    }
}

/// Deserializes a list element or map value at a deeper path.
struct TrackSeed<'a, T> {
    seed: T,
    chain: &'a Chain<'a>,
    track: &'a Track,
}

impl<'a, 'de, T: DeserializeSeed<'de>> DeserializeSeed<'de> for TrackSeed<'a, T> {
    type Value = T::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T::Value, D::Error> {
        self.seed.deserialize(Wrap {
            de: d,
            chain: self.chain,
            track: self.track,
            check_null: true,
        })
    }
}

struct TrackSeq<'a, A> {
    seq: A,
    chain: &'a Chain<'a>,
    track: &'a Track,
    index: usize,
}

impl<'a, 'de, A: SeqAccess<'de>> SeqAccess<'de> for TrackSeq<'a, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        let chain = Chain::Index {
            parent: self.chain,
            index: self.index,
        };
        self.index += 1;
        let track = self.track;
        self.seq
            .next_element_seed(TrackSeed {
                seed,
                chain: &chain,
                track,
            })
            .map_err(|e| track.fail(&chain, e))
    }

    fn size_hint(&self) -> Option<usize> {
        self.seq.size_hint()
    }
}

struct TrackMap<'a, A> {
    map: A,
    chain: &'a Chain<'a>,
    track: &'a Track,
    key: Option<String>,
}

impl<'a, 'de, A: MapAccess<'de>> MapAccess<'de> for TrackMap<'a, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        if !self.track.thorough {
            return self.map.next_key_seed(seed);
        }
        let mut key = None;
        let result = self.map.next_key_seed(CaptureKey {
            inner: seed,
            key: &mut key,
        });
        self.key = key;
        result.map_err(|e| self.track.fail(self.chain, e))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        let chain = Chain::Key {
            parent: self.chain,
            key: self.key.take().unwrap_or_default(),
        };
        let track = self.track;
        self.map
            .next_value_seed(TrackSeed {
                seed,
                chain: &chain,
                track,
            })
            .map_err(|e| track.fail(&chain, e))
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// Decodes a map key and keeps a copy of its text for the path. Used as
/// the seed, the deserializer and the visitor of the key.
struct CaptureKey<'b, T> {
    inner: T,
    key: &'b mut Option<String>,
}

impl<'b, 'de, K: DeserializeSeed<'de>> DeserializeSeed<'de> for CaptureKey<'b, K> {
    type Value = K::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<K::Value, D::Error> {
        self.inner.deserialize(CaptureKey {
            inner: d,
            key: self.key,
        })
    }
}

macro_rules! capture_methods {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            self.inner.$method($($arg,)* CaptureKey { inner: visitor, key: self.key })
        }
    )*};
}

impl<'b, 'de, D: Deserializer<'de>> Deserializer<'de> for CaptureKey<'b, D> {
    type Error = D::Error;

    capture_methods! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

macro_rules! capture_visits {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            *self.key = Some(v.to_string());
            self.inner.$method(v)
        }
    )*};
}

impl<'b, 'de, V: Visitor<'de>> Visitor<'de> for CaptureKey<'b, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    capture_visits! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_str(&str);
        visit_borrowed_str(&'de str);
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<V::Value, E> {
        *self.key = Some(v.clone());
        self.inner.visit_string(v)
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<V::Value, E> {
        *self.key = Some(String::from_utf8_lossy(v).into_owned());
        self.inner.visit_bytes(v)
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<V::Value, E> {
        *self.key = Some(String::from_utf8_lossy(v).into_owned());
        self.inner.visit_borrowed_bytes(v)
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<V::Value, E> {
        *self.key = Some(String::from_utf8_lossy(&v).into_owned());
        self.inner.visit_byte_buf(v)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<V::Value, D2::Error> {
        self.inner.visit_some(d)
    }

    fn visit_newtype_struct<D2: Deserializer<'de>>(self, d: D2) -> Result<V::Value, D2::Error> {
        self.inner.visit_newtype_struct(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.inner.visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(map)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(data)
    }
}

/// `deserialize_with` helper for the model fields: `null` reads as the
/// type's default (Go leaves the zero value in place).
pub(crate) fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Option::unwrap_or_default)
}
