//! Request bodies read as dockerd reads them: Go's `encoding/json` matches an object's
//! keys to a struct's fields ignoring case (an exact match first), so dockerd takes
//! `{"detachKeys": "ctrl-p"}` (docker-py's exec create) for `DetachKeys`. serde's
//! derived structs match exactly and drop the rest unseen. [`from_value`] gives each
//! struct, at any depth, the keys that name its fields in another case under the
//! field's own name; map keys (labels, environment, options) stay as sent. Of two
//! keys naming one field, the exact one wins (Go takes the later one; the order of an
//! object's keys is not kept here).

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{DeserializeOwned, Deserializer, IntoDeserializer, Visitor};
use serde_json::{Error, Map, Value};

/// Deserialize `v` into `T` with Go's key matching.
pub fn from_value<T: DeserializeOwned>(v: Value) -> Result<T, Error> {
    T::deserialize(GoCase(v))
}

/// Parse `raw` and deserialize it into `T` with Go's key matching.
pub fn from_slice<T: DeserializeOwned>(raw: &[u8]) -> Result<T, Error> {
    from_value(serde_json::from_slice(raw)?)
}

/// The fields of a container config that are Docker's `strslice.StrSlice`: a list of
/// strings that also takes a lone string for a list of one.
pub const STRSLICE_FIELDS: [&str; 3] = ["Cmd", "Entrypoint", "Shell"];

/// Rewrite a lone string in `obj`'s `StrSlice` fields (`fields`, keys matched in any
/// case as Go matches them) into the list of one that dockerd reads it as:
/// `"Cmd": "echo hi"` is `["echo hi"]`.
pub fn strslices(obj: &mut Value, fields: &[&str]) {
    let Some(m) = obj.as_object_mut() else { return };
    for (k, v) in m.iter_mut() {
        if v.is_string() && fields.iter().any(|f| f.eq_ignore_ascii_case(k)) {
            *v = Value::Array(vec![v.take()]);
        }
    }
}

struct GoCase(Value);

impl<'de> IntoDeserializer<'de, Error> for GoCase {
    type Deserializer = GoCase;
    fn into_deserializer(self) -> GoCase {
        self
    }
}

/// Hand `m`'s entries to `visitor` (as serde_json's own `Value` does), each value
/// read with Go's matching in turn.
fn visit_object<'de, V: Visitor<'de>>(m: Map<String, Value>, visitor: V) -> Result<V::Value, Error> {
    let mut map = MapDeserializer::new(m.into_iter().map(|(k, v)| (k, GoCase(v))));
    let out = visitor.visit_map(&mut map)?;
    map.end()?;
    Ok(out)
}

impl<'de> Deserializer<'de> for GoCase {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(a) => {
                let mut seq = SeqDeserializer::new(a.into_iter().map(GoCase));
                let out = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(out)
            }
            Value::Object(m) => visit_object(m, visitor),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let Value::Object(m) = self.0 else { return self.deserialize_any(visitor) };
        let mut keyed = Map::with_capacity(m.len());
        let mut other_case = Vec::new();
        for (k, v) in m {
            match fields.iter().find(|f| **f != k && f.eq_ignore_ascii_case(&k)) {
                Some(f) if !fields.contains(&k.as_str()) => other_case.push(((*f).to_owned(), v)),
                _ => {
                    keyed.insert(k, v);
                }
            }
        }
        for (k, v) in other_case {
            keyed.entry(k).or_insert(v);
        }
        visit_object(keyed, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_lone_string_is_a_strslice_of_one() {
        let mut v = json!({"cmd": "echo hi", "Entrypoint": ["sh", "-c"], "Shell": "", "Image": "busybox"});
        strslices(&mut v, &STRSLICE_FIELDS);
        assert_eq!(v, json!({"cmd": ["echo hi"], "Entrypoint": ["sh", "-c"], "Shell": [""], "Image": "busybox"}));
        let c: crate::models::ContainerCreateBody = from_value(v).unwrap();
        assert_eq!(c.cmd, Some(vec!["echo hi".to_owned()]));
        // Only those fields: any other string stays what it is.
        let mut v = json!({"Env": "A=1", "WorkingDir": "/x"});
        strslices(&mut v, &STRSLICE_FIELDS);
        assert_eq!(v, json!({"Env": "A=1", "WorkingDir": "/x"}));
    }

    #[test]
    fn struct_fields_match_in_any_case_and_maps_keep_their_keys() {
        let v = json!({
            "detachKeys": "ctrl-p",
            "CMD": ["sh"],
            "env": ["A=1"],
            "tty": true,
            "Privileged": null,
        });
        let e: crate::models::ExecConfig = from_value(v).unwrap();
        assert_eq!(e.detach_keys.as_deref(), Some("ctrl-p"));
        assert_eq!(e.cmd, Some(vec!["sh".to_owned()]));
        assert_eq!(e.env, Some(vec!["A=1".to_owned()]));
        assert_eq!(e.tty, Some(true));
        assert_eq!(e.privileged, None);

        // Nested structs too; a map's own keys are not field names.
        let c: crate::models::ContainerCreateBody = from_value(json!({
            "image": "busybox",
            "Labels": {"labels": "x", "Image": "y"},
            "hostconfig": {"memory": 1024, "LogConfig": {"type": "json-file", "config": {"max-size": "1k"}}},
        }))
        .unwrap();
        assert_eq!(c.image.as_deref(), Some("busybox"));
        let labels = c.labels.unwrap();
        assert_eq!((labels["labels"].as_str(), labels["Image"].as_str()), ("x", "y"));
        let hc = c.host_config.unwrap();
        assert_eq!(hc.memory, Some(1024));
        let lc = hc.log_config.unwrap();
        assert_eq!(lc.typ.as_deref(), Some("json-file"));
        assert_eq!(lc.config.unwrap()["max-size"], "1k");
    }

    #[test]
    fn an_exact_key_wins_over_another_case_of_it() {
        let e: crate::models::ExecConfig = from_value(json!({"Tty": false, "tty": true, "TTY": true})).unwrap();
        assert_eq!(e.tty, Some(false));
        // Wrong types are still errors, and values that are not objects pass through.
        assert!(from_value::<crate::models::ExecConfig>(json!({"tty": "yes"})).is_err());
        let v: Value = from_value(json!({"a": [1, {"B": null}]})).unwrap();
        assert_eq!(v, json!({"a": [1, {"B": null}]}));
    }
}
