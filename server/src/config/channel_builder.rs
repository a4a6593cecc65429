//! channel_builder: per-app rules that change the channels a published message goes to.
//!
//! ```yaml
//! channel_builder:
//!   game:   {kind: compose2, separator: _, field1: device.game, field2: id}
//!   common: {kind: add, channel: foo}
//!   shard:  {kind: remove, prefix: sms_live_shard_v1}
//!   super:  {kind: add_shard, shards: 4, channel: "subscriber_republished_{shard}"}
//! ```
//!
//! The rules run in config order on the channel list of the publish (`channels` then
//! `channel`); the result is deduplicated, first occurrence kept. Unlike the reference
//! (which turns the list into a set), the order is kept so delivery order is predictable.
//! `add_shard` is our extension; the reference knows the other three.

use std::collections::HashSet;

use rand::Rng;
use serde_json::Value as Json;
use serde_yaml_ng::{Mapping, Value};

use super::apps::scalar_text;

/// One named rule of an app's `channel_builder`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The rule's key in the config (only used in messages).
    pub name: String,
    /// The rule kind.
    pub kind: RuleKind,
}

/// What a rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    /// Adds `<field1><separator><field2>` when both fields of the message exist and are strings
    /// or numbers (a number is rendered as its JSON text: `42`, `1.5`). Booleans, null, objects
    /// and arrays count as absent: the reference would render Python reprs (`True`, `{...}`),
    /// never a channel anyone means.
    Compose2 {
        /// Put between the two fields' values.
        separator: String,
        /// The first field read from the message.
        field1: FieldPath,
        /// The second field read from the message.
        field2: FieldPath,
    },
    /// Adds a fixed channel.
    Add {
        /// The channel.
        channel: String,
    },
    /// Adds `channel` with `{shard}` replaced by a uniformly random number in `[0, shards)`,
    /// spreading one hot stream over several channels.
    AddShard {
        /// How many shards (`{shard}` takes a value in `0..shards`).
        shards: u32,
        /// The channel.
        channel: String,
    },
    /// Drops every channel starting with `prefix`.
    Remove {
        /// The prefix.
        prefix: String,
    },
}

/// A dotted path into a JSON object (`device.game`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath(Vec<String>);

impl FieldPath {
    /// Parses `a.b.c`; every component must be non-empty.
    pub fn parse(text: &str) -> Option<FieldPath> {
        let parts: Vec<String> = text.split('.').map(str::to_owned).collect();
        if parts.iter().any(String::is_empty) {
            return None;
        }
        Some(FieldPath(parts))
    }

    /// The value at this path in `message`, if every step is an object holding the key.
    pub fn lookup<'a>(&self, message: &'a Json) -> Option<&'a Json> {
        self.0
            .iter()
            .try_fold(message, |node, key| node.as_object()?.get(key))
    }

    fn text(&self) -> String {
        self.0.join(".")
    }
}

/// Why a channel_builder rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The rule is not a mapping.
    #[error("a rule must be a mapping with a `kind`")]
    NotAMapping,
    /// The rule has no `kind`.
    #[error("missing `kind`")]
    MissingKind,
    /// A kind other than compose2, add, add_shard or remove.
    #[error("unknown kind `{0}` (expected compose2, add, add_shard or remove)")]
    UnknownKind(String),
    /// A field the kind needs is absent.
    #[error("`{kind}` needs `{field}`")]
    MissingField {
        /// The rule kind.
        kind: &'static str,
        /// The field's name.
        field: &'static str,
    },
    /// A field has the wrong type or value.
    #[error("`{field}`: {what}")]
    BadField {
        /// The field's name.
        field: &'static str,
        /// What is wrong.
        what: String,
    },
}

impl Rule {
    /// Parses the rule `name` from its YAML value.
    pub fn from_yaml(name: &str, value: &Value) -> Result<Rule, RuleError> {
        let map = value.as_mapping().ok_or(RuleError::NotAMapping)?;
        let kind_name = match map.get("kind") {
            None | Some(Value::Null) => return Err(RuleError::MissingKind),
            Some(v) => scalar_text(v),
        };
        let kind = match kind_name.as_str() {
            "compose2" => RuleKind::Compose2 {
                separator: text_field(map, "compose2", "separator")?,
                field1: path_field(map, "field1")?,
                field2: path_field(map, "field2")?,
            },
            "add" => RuleKind::Add {
                channel: non_empty(text_field(map, "add", "channel")?, "channel")?,
            },
            "remove" => RuleKind::Remove {
                prefix: non_empty(text_field(map, "remove", "prefix")?, "prefix")?,
            },
            "add_shard" => {
                let shards = map
                    .get("shards")
                    .ok_or(RuleError::MissingField {
                        kind: "add_shard",
                        field: "shards",
                    })?
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| RuleError::BadField {
                        field: "shards",
                        what: "must be a positive integer".to_owned(),
                    })?;
                let channel = text_field(map, "add_shard", "channel")?;
                if !channel.contains("{shard}") {
                    return Err(RuleError::BadField {
                        field: "channel",
                        what: format!("`{channel}` has no `{{shard}}` placeholder"),
                    });
                }
                RuleKind::AddShard { shards, channel }
            }
            other => return Err(RuleError::UnknownKind(other.to_owned())),
        };
        Ok(Rule {
            name: name.to_owned(),
            kind,
        })
    }

    /// The rule as YAML (the inverse of [`Rule::from_yaml`]).
    pub fn to_yaml_value(&self) -> Value {
        let mut map = Mapping::new();
        let mut put = |k: &str, v: Value| {
            map.insert(Value::from(k), v);
        };
        match &self.kind {
            RuleKind::Compose2 {
                separator,
                field1,
                field2,
            } => {
                put("kind", "compose2".into());
                put("separator", separator.as_str().into());
                put("field1", field1.text().into());
                put("field2", field2.text().into());
            }
            RuleKind::Add { channel } => {
                put("kind", "add".into());
                put("channel", channel.as_str().into());
            }
            RuleKind::AddShard { shards, channel } => {
                put("kind", "add_shard".into());
                put("shards", (*shards).into());
                put("channel", channel.as_str().into());
            }
            RuleKind::Remove { prefix } => {
                put("kind", "remove".into());
                put("prefix", prefix.as_str().into());
            }
        }
        Value::Mapping(map)
    }
}

fn text_field(map: &Mapping, kind: &'static str, field: &'static str) -> Result<String, RuleError> {
    match map.get(field) {
        None | Some(Value::Null) => Err(RuleError::MissingField { kind, field }),
        Some(Value::String(s)) => Ok(s.clone()),
        // `separator: 1` or `channel: 42` are plain YAML scalars meant as text.
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(scalar_text(v)),
        Some(_) => Err(RuleError::BadField {
            field,
            what: "must be a string".to_owned(),
        }),
    }
}

fn path_field(map: &Mapping, field: &'static str) -> Result<FieldPath, RuleError> {
    let text = text_field(map, "compose2", field)?;
    FieldPath::parse(&text).ok_or_else(|| RuleError::BadField {
        field,
        what: format!("`{text}` is not a dotted field path"),
    })
}

fn non_empty(text: String, field: &'static str) -> Result<String, RuleError> {
    if text.is_empty() {
        return Err(RuleError::BadField {
            field,
            what: "must not be empty".to_owned(),
        });
    }
    Ok(text)
}

/// The channels a published `message` goes to: `initial` (the publish's `channels` then
/// `channel`) transformed by `rules` in order, deduplicated keeping the first occurrence.
/// Rules that read fields do nothing on a message that is not a JSON object.
pub fn apply(rules: &[Rule], initial: Vec<String>, message: &Json) -> Vec<String> {
    apply_with_rng(rules, initial, message, &mut rand::rng())
}

/// [`apply`] with the random source of `add_shard` given (for reproducible tests).
pub fn apply_with_rng<R: Rng + ?Sized>(
    rules: &[Rule],
    initial: Vec<String>,
    message: &Json,
    rng: &mut R,
) -> Vec<String> {
    let mut channels = initial;
    for rule in rules {
        match &rule.kind {
            RuleKind::Compose2 {
                separator,
                field1,
                field2,
            } => {
                let value1 = field1.lookup(message).and_then(render);
                let value2 = field2.lookup(message).and_then(render);
                if let (Some(a), Some(b)) = (value1, value2) {
                    channels.push(format!("{a}{separator}{b}"));
                }
            }
            RuleKind::Add { channel } => channels.push(channel.clone()),
            RuleKind::AddShard { shards, channel } => {
                let shard = rng.random_range(0..*shards);
                channels.push(channel.replace("{shard}", &shard.to_string()));
            }
            RuleKind::Remove { prefix } => channels.retain(|c| !c.starts_with(prefix.as_str())),
        }
    }
    let mut seen = HashSet::with_capacity(channels.len());
    channels.retain(|c| seen.insert(c.clone()));
    channels
}

/// A field value as channel-name text: strings as is, numbers as JSON text; anything else
/// is not a name.
fn render(value: &Json) -> Option<String> {
    match value {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(yaml: &str) -> Vec<Rule> {
        let map: Mapping = serde_yaml_ng::from_str(yaml).unwrap();
        map.iter()
            .map(|(k, v)| Rule::from_yaml(k.as_str().unwrap(), v).unwrap())
            .collect()
    }

    fn rule_err(yaml: &str) -> String {
        let v: Value = serde_yaml_ng::from_str(yaml).unwrap();
        Rule::from_yaml("r", &v).unwrap_err().to_string()
    }

    fn chans(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn compose2_when_both_fields_exist() {
        let r = rules("g: {kind: compose2, separator: _, field1: device.game, field2: id}");
        let msg = json!({"id": "engine_fps_id", "device": {"game": "wiso"}});
        assert_eq!(
            apply(&r, chans(&["c"]), &msg),
            chans(&["c", "wiso_engine_fps_id"])
        );
        // Numbers render as their JSON text.
        let msg = json!({"id": 42, "device": {"game": 1.5}});
        assert_eq!(apply(&r, chans(&["c"]), &msg), chans(&["c", "1.5_42"]));
    }

    #[test]
    fn compose2_does_nothing_when_a_field_is_absent_or_not_a_name() {
        let r = rules("g: {kind: compose2, separator: _, field1: device.game, field2: id}");
        for msg in [
            json!({"id": "x"}),
            json!({"device": {"game": "wiso"}}),
            json!({"id": "x", "device": "flat"}),
            json!({"id": "x", "device": {"game": null}}),
            json!({"id": true, "device": {"game": "wiso"}}),
            json!({"id": {"a": 1}, "device": {"game": "wiso"}}),
            json!([1, 2]),
            json!("text"),
        ] {
            assert_eq!(apply(&r, chans(&["c"]), &msg), chans(&["c"]), "{msg}");
        }
    }

    #[test]
    fn add_remove_and_dedup_in_order() {
        let r = rules(
            r#"
a: {kind: add, channel: foo}
b: {kind: remove, prefix: sms_}
c: {kind: add, channel: sms_kept}
d: {kind: add, channel: foo}
"#,
        );
        let out = apply(&r, chans(&["sms_1", "x", "x", "sms_2", "y"]), &json!({}));
        assert_eq!(out, chans(&["x", "y", "foo", "sms_kept"]));
        // Rules that need no field also work on non-object messages.
        assert_eq!(apply(&r, vec![], &json!(3)), chans(&["foo", "sms_kept"]));
        // No rules: only the dedup.
        assert_eq!(
            apply(&[], chans(&["a", "b", "a"]), &json!({})),
            chans(&["a", "b"])
        );
    }

    #[test]
    fn add_shard_stays_in_range_and_covers_it() {
        let r = rules(r#"s: {kind: add_shard, shards: 4, channel: "rep_{shard}_x"}"#);
        let mut seen = HashSet::new();
        for _ in 0..400 {
            let out = apply(&r, chans(&["c"]), &json!({}));
            assert_eq!(out.len(), 2);
            assert_eq!(out[0], "c");
            seen.insert(out[1].clone());
        }
        let expected: HashSet<String> = (0..4).map(|i| format!("rep_{i}_x")).collect();
        assert_eq!(seen, expected);
        let one = rules(r#"s: {kind: add_shard, shards: 1, channel: "only_{shard}"}"#);
        assert_eq!(apply(&one, vec![], &json!({})), chans(&["only_0"]));
    }

    #[test]
    fn rule_errors() {
        assert_eq!(rule_err("[1]"), "a rule must be a mapping with a `kind`");
        assert_eq!(rule_err("{channel: foo}"), "missing `kind`");
        assert_eq!(rule_err("{kind: add}"), "`add` needs `channel`");
        assert_eq!(
            rule_err("{kind: add, channel: ''}"),
            "`channel`: must not be empty"
        );
        assert_eq!(rule_err("{kind: remove}"), "`remove` needs `prefix`");
        assert_eq!(
            rule_err("{kind: compose2, field1: a, field2: b}"),
            "`compose2` needs `separator`"
        );
        assert_eq!(
            rule_err("{kind: compose2, separator: _, field1: a..b, field2: b}"),
            "`field1`: `a..b` is not a dotted field path"
        );
        assert_eq!(
            rule_err("{kind: add_shard, channel: 'x_{shard}'}"),
            "`add_shard` needs `shards`"
        );
        assert_eq!(
            rule_err("{kind: add_shard, shards: 0, channel: 'x_{shard}'}"),
            "`shards`: must be a positive integer"
        );
        assert_eq!(
            rule_err("{kind: add_shard, shards: -2, channel: 'x_{shard}'}"),
            "`shards`: must be a positive integer"
        );
        assert_eq!(
            rule_err("{kind: add_shard, shards: 2, channel: x}"),
            "`channel`: `x` has no `{shard}` placeholder"
        );
        assert_eq!(
            rule_err("{kind: add, channel: [a]}"),
            "`channel`: must be a string"
        );
    }

    #[test]
    fn yaml_round_trip() {
        let r = rules(
            r#"
g: {kind: compose2, separator: "-", field1: device.game, field2: id}
a: {kind: add, channel: foo}
s: {kind: add_shard, shards: 4, channel: "x_{shard}"}
r: {kind: remove, prefix: sms}
"#,
        );
        for rule in &r {
            assert_eq!(
                &Rule::from_yaml(&rule.name, &rule.to_yaml_value()).unwrap(),
                rule
            );
        }
    }
}
