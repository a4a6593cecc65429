//! Single-pass evaluation input from raw JSON text: walk the message once with serde_json, descending only
//! into keys the statement's path trie needs, skipping the rest with `IgnoredAny`, borrowing strings and
//! projected subtrees (`&RawValue`) from the message text. Nothing is allocated unless a needed string
//! value contains escapes.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::paths::{Captured, Paths, Slot};
use super::value::{Num, Scalar};

/// Where the fields of a message were found.
pub(crate) enum Root<'de> {
    /// The message is an object.
    Object,
    /// The message is an array whose first element is an object (its raw text if asked for).
    First(Option<&'de str>),
    /// Anything else: never matches.
    NotObject,
}

/// Read `json` into `slots`. `Err` for text that is not exactly one valid JSON value.
pub(crate) fn read<'de>(
    paths: &Paths,
    slots: &mut [Slot<'de>],
    json: &'de str,
    want_first_raw: bool,
) -> Result<Root<'de>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(json);
    let root = RootSeed::<true> {
        paths,
        slots,
        want_first_raw,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(root)
}

/// Forget what an earlier occurrence of a duplicated key left below `node` (the last occurrence wins,
/// as in `serde_json::Value`).
#[inline]
fn reset_below(paths: &Paths, slots: &mut [Slot<'_>], node: usize) {
    for &(_, c) in &paths.nodes[node].children {
        slots[c] = Slot::default();
        reset_below(paths, slots, c);
    }
}

/// Reads the value of one trie node (and, for objects, its needed children).
struct Walk<'p, 's, 'de> {
    paths: &'p Paths,
    slots: &'s mut [Slot<'de>],
    node: usize,
    /// False when re-reading a node's own captured text.
    capture_self: bool,
}

impl<'de> DeserializeSeed<'de> for Walk<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let n = &self.paths.nodes[self.node];
        reset_below(self.paths, self.slots, self.node);
        if self.capture_self && n.needs_raw {
            let raw = <&'de RawValue>::deserialize(d)?;
            let text = raw.get();
            self.slots[self.node].captured = Captured::Raw(text);
            if n.children.is_empty() && !n.needs_scalar {
                return Ok(());
            }
            // Projected and also compared or descended into: read the (already validated) text again.
            let mut de = serde_json::Deserializer::from_str(text);
            return Walk {
                capture_self: false,
                ..self
            }
            .deserialize(&mut de)
            .map_err(de::Error::custom);
        }
        d.deserialize_any(self)
    }
}

impl<'de> Walk<'_, '_, 'de> {
    fn set<E>(self, s: Scalar<'de>) -> Result<(), E> {
        self.slots[self.node].scalar = s;
        Ok(())
    }
}

impl<'de> Visitor<'de> for Walk<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.set(Scalar::Null)
    }

    fn visit_none<E>(self) -> Result<(), E> {
        self.set(Scalar::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.set(Scalar::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.set(Scalar::Num(Num::Int(v.into())))
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.set(Scalar::Num(Num::Int(v.into())))
    }

    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.set(Scalar::Num(Num::Float(v)))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
        self.set(Scalar::Str(v.into()))
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        // Only strings with escapes get here: they cannot be borrowed.
        self.set(Scalar::Str(v.to_owned().into()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.set(Scalar::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Walk {
            paths, slots, node, ..
        } = self;
        slots[node].scalar = Scalar::Object;
        while let Some(child) = map.next_key_seed(Key { paths, node })? {
            match child {
                Some(c) => map.next_value_seed(Walk {
                    paths,
                    slots: &mut *slots,
                    node: c,
                    capture_self: true,
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Reads an object key and looks it up among a node's children, without allocating.
struct Key<'p> {
    paths: &'p Paths,
    node: usize,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Key<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, v: &str) -> Result<Option<usize>, E> {
        Ok(self.paths.child(self.node, v))
    }
}

/// A root that is a scalar (null, bool, number, string) is not an object: the message does not
/// match. Shared by the two root visitors below.
macro_rules! scalars_are_not_objects {
    () => {
        fn visit_unit<E>(self) -> Result<Root<'de>, E> {
            Ok(Root::NotObject)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Root<'de>, E> {
            Ok(Root::NotObject)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Root<'de>, E> {
            Ok(Root::NotObject)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Root<'de>, E> {
            Ok(Root::NotObject)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Root<'de>, E> {
            Ok(Root::NotObject)
        }
        fn visit_str<E>(self, _: &str) -> Result<Root<'de>, E> {
            Ok(Root::NotObject)
        }
    };
}

/// The whole message (`TOP`): an object, or an array whose first element is used. That element
/// is read with `TOP = false`: an object or nothing, a nested array there is not looked into.
/// A const parameter, so each reader is its own code with no flag tested per message.
struct RootSeed<'p, 's, 'de, const TOP: bool> {
    paths: &'p Paths,
    slots: &'s mut [Slot<'de>],
    want_first_raw: bool,
}

impl<'de, const TOP: bool> DeserializeSeed<'de> for RootSeed<'_, '_, 'de, TOP> {
    type Value = Root<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Root<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, const TOP: bool> Visitor<'de> for RootSeed<'_, '_, 'de, TOP> {
    type Value = Root<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if TOP {
            "a JSON message"
        } else {
            "a JSON value"
        })
    }

    scalars_are_not_objects!();

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Root<'de>, A::Error> {
        Walk {
            paths: self.paths,
            slots: self.slots,
            node: 0,
            capture_self: false,
        }
        .visit_map(map)?;
        Ok(Root::Object)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Root<'de>, A::Error> {
        let mut root = Root::NotObject;
        if TOP {
            let first = FirstSeed {
                paths: self.paths,
                slots: self.slots,
                want_raw: self.want_first_raw,
            };
            if let Some(Some(raw)) = seq.next_element_seed(first)? {
                root = Root::First(raw);
            }
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(root)
    }
}

/// The first element of an array message: `Some` if it is an object (with its text if wanted).
struct FirstSeed<'p, 's, 'de> {
    paths: &'p Paths,
    slots: &'s mut [Slot<'de>],
    want_raw: bool,
}

impl<'de> DeserializeSeed<'de> for FirstSeed<'_, '_, 'de> {
    type Value = Option<Option<&'de str>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let element = RootSeed::<false> {
            paths: self.paths,
            slots: self.slots,
            want_first_raw: false,
        };
        if !self.want_raw {
            let root = element.deserialize(d)?;
            return Ok(matches!(root, Root::Object).then_some(None));
        }
        let text = <&'de RawValue>::deserialize(d)?.get();
        let mut de = serde_json::Deserializer::from_str(text);
        let root = element.deserialize(&mut de).map_err(de::Error::custom)?;
        Ok(matches!(root, Root::Object).then_some(Some(text)))
    }
}
