//! The vendors' own published API descriptions, for the drivers' tests:
//! records made of a schema's field examples, the units a field's text
//! states, and the fields a normalizer's types read that the description
//! does not name. The descriptions are read in place
//! (`../shared/vendor-specs` beside the workspace, or
//! `CONNECTOR_VENDOR_SPECS`), never copied into the repository.

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};
use std::cell::RefCell;

/// A vendor's description, YAML or JSON; None, with a line saying so,
/// where the descriptions are not there.
pub fn vendor_description(file: &str) -> Option<Value> {
    let dir = std::env::var_os("CONNECTOR_VENDOR_SPECS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vendor-specs")
        });
    let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
        eprintln!("{file}: no vendor description here; the tests against it did not run");
        return None;
    };
    Some(if file.ends_with(".json") {
        serde_json::from_str(&text).expect("description is JSON")
    } else {
        serde_yaml::from_str(&text).expect("description is YAML")
    })
}

/// A named schema of an OpenAPI description (`components/schemas`) or a
/// Google discovery document (`schemas`).
fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let s = &doc["components"]["schemas"][name];
    if s.is_null() {
        &doc["schemas"][name]
    } else {
        s
    }
}

/// `node` with its `$ref` followed (an OpenAPI pointer or a discovery name).
fn resolve<'a>(doc: &'a Value, node: &'a Value) -> &'a Value {
    match node["$ref"].as_str() {
        Some(r) if r.starts_with('#') => resolve(doc, doc.pointer(&r[1..]).unwrap_or(&Value::Null)),
        Some(name) => resolve(doc, schema(doc, name)),
        None => node,
    }
}

/// The record schema `name` shows by its fields' own `example`s (nested
/// schemas followed; an array shows one item).
pub fn example_of(doc: &Value, name: &str) -> Value {
    build(doc, schema(doc, name), false, 0)
}

/// A record of schema `name` with every field it describes: its example
/// where it has one, else a value of its type and format (for tracing
/// what a type reads, never for golden values).
pub fn specimen_of(doc: &Value, name: &str) -> Value {
    build(doc, schema(doc, name), true, 0)
}

fn build(doc: &Value, node: &Value, typed: bool, depth: u8) -> Value {
    let node = resolve(doc, node);
    if let Some(e) = node.get("example") {
        return e.clone();
    }
    if depth > 12 {
        return Value::Null;
    }
    if typed {
        if let Some(first) = node["enum"].as_array().and_then(|e| e.first()) {
            return first.clone();
        }
        let kind = match &node["type"] {
            Value::Array(kinds) => kinds.iter().find(|k| *k != "null").cloned(),
            other => Some(other.clone()),
        };
        let scalar = match (
            kind.as_ref().and_then(Value::as_str),
            node["format"].as_str(),
        ) {
            (Some("string"), Some("date")) => Some(Value::from("2020-01-01")),
            (Some("string"), Some("date-time" | "google-datetime")) => {
                Some(Value::from("2020-01-01T00:00:00+00:00"))
            }
            (Some("string"), Some("google-duration")) => Some(Value::from("60s")),
            (Some("string"), _) => Some(Value::from("1")),
            (Some("integer"), _) => Some(Value::from(1)),
            (Some("number"), _) => Some(Value::from(1.5)),
            (Some("boolean"), _) => Some(Value::from(true)),
            _ => None,
        };
        if let Some(v) = scalar {
            return v;
        }
        for k in ["anyOf", "oneOf"] {
            let variants = node[k].as_array().into_iter().flatten();
            if let Some(v) = variants
                .map(|v| build(doc, v, typed, depth + 1))
                .find(|v| !v.is_null())
            {
                return v;
            }
        }
    }
    if node["type"] == "array" {
        return Value::Array(vec![build(doc, &node["items"], typed, depth + 1)]);
    }
    let mut out = Map::new();
    for part in node["allOf"].as_array().into_iter().flatten() {
        if let Value::Object(m) = build(doc, part, typed, depth + 1) {
            out.extend(m);
        }
    }
    for (k, v) in node["properties"].as_object().into_iter().flatten() {
        out.insert(k.clone(), build(doc, v, typed, depth + 1));
    }
    if typed && out.is_empty() && !node.is_object() {
        return Value::Null;
    }
    Value::Object(out)
}

/// A schema field's description text (for the unit it states).
pub fn field_text<'a>(doc: &'a Value, schema_name: &str, field: &str) -> &'a str {
    resolve(doc, schema(doc, schema_name))["properties"][field]["description"]
        .as_str()
        .unwrap_or_default()
}

/// The schemas `node` combines (`allOf`, `anyOf`, `oneOf`).
fn parts(node: &Value) -> impl Iterator<Item = &Value> {
    ["allOf", "anyOf", "oneOf"]
        .into_iter()
        .flat_map(move |k| node[k].as_array().into_iter().flatten())
}

/// The `(schema, field, unit)` whose field text no longer states the unit
/// a normalizer converts from.
pub fn unstated_units(doc: &Value, units: &[(&str, &str, &str)]) -> Vec<String> {
    units
        .iter()
        .filter(|(schema, field, unit)| !field_text(doc, schema, field).contains(unit))
        .map(|(schema, field, unit)| format!("{schema}.{field}: {unit}"))
        .collect()
}

/// Whether the description names `field` on the object `node` describes
/// (directly, through `allOf`/`anyOf`/`oneOf`, or as a free-form map).
fn names_field(doc: &Value, node: &Value, field: &str, depth: u8) -> bool {
    let node = resolve(doc, node);
    if depth > 12 {
        return false;
    }
    node["properties"].get(field).is_some()
        || node["additionalProperties"].is_object()
        || node["additionalProperties"] == true
        || parts(node).any(|s| names_field(doc, s, field, depth + 1))
}

/// The schema of `field` on the object `node` describes, if named.
fn field_schema<'a>(doc: &'a Value, node: &'a Value, field: &str, depth: u8) -> Option<&'a Value> {
    let node = resolve(doc, node);
    if depth > 12 {
        return None;
    }
    if let Some(s) = node["properties"].get(field) {
        return Some(s);
    }
    if node["additionalProperties"].is_object() {
        return Some(&node["additionalProperties"]);
    }
    parts(node).find_map(|s| field_schema(doc, s, field, depth + 1))
}

/// The schema of the items of the list `node` describes (through
/// `anyOf`/`oneOf`/`allOf`, as beside a `null`).
fn items_schema<'a>(doc: &'a Value, node: &'a Value, depth: u8) -> Option<&'a Value> {
    let node = resolve(doc, node);
    if depth > 12 {
        return None;
    }
    if !node["items"].is_null() {
        return Some(&node["items"]);
    }
    parts(node).find_map(|s| items_schema(doc, s, depth + 1))
}

/// The schema that schema `name` gives the JSON path of `steps` (`*`: each
/// item of a list), if it describes that path.
fn schema_at<'a, 's>(
    doc: &'a Value,
    name: &str,
    steps: impl IntoIterator<Item = &'s str>,
) -> Option<&'a Value> {
    steps.into_iter().try_fold(schema(doc, name), |node, step| {
        if step == "*" {
            items_schema(doc, node, 0)
        } else {
            field_schema(doc, node, step, 0)
        }
    })
}

/// Whether schema `name` describes the JSON path `path` (`*`: each item
/// of a list), for normalizers that read by path rather than by type.
pub fn names_path(doc: &Value, name: &str, path: &[&str]) -> bool {
    schema_at(doc, name, path.iter().copied()).is_some()
}

/// Every field `T` reads (as serde names them) that schema `name` of the
/// description does not, as `<path>/<field>`. `T` is traced over a
/// [`specimen_of`] the schema, so each nested type the description has
/// is followed; a field `T` reads is listed whether or not the record
/// has it.
pub fn undescribed_reads<T: DeserializeOwned>(doc: &Value, name: &str) -> Vec<String> {
    undescribed_reads_of::<T>(doc, name, &specimen_of(doc, name))
}

/// [`undescribed_reads`] traced over `record` (a record the example
/// cannot stand for, such as a list).
pub fn undescribed_reads_of<T: DeserializeOwned>(
    doc: &Value,
    name: &str,
    record: &Value,
) -> Vec<String> {
    let log = RefCell::new(Vec::new());
    let traced = T::deserialize(Traced {
        value: record,
        path: String::new(),
        log: &log,
    });
    let mut out = Vec::new();
    if let Err(e) = traced {
        out.push(format!("not traced to the end: {e}"));
    }
    for (path, fields) in log.into_inner() {
        let node = schema_at(doc, name, path.split('/').filter(|s| !s.is_empty()));
        for field in fields {
            if !node.is_some_and(|n| names_field(doc, n, field, 0)) {
                out.push(format!("{path}/{field}"));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A deserializer over a JSON value that logs, at each struct, the fields
/// the type asks for and where.
struct Traced<'a> {
    value: &'a Value,
    path: String,
    log: &'a RefCell<Vec<(String, &'static [&'static str])>>,
}

impl<'a> Traced<'a> {
    fn at(&self, value: &'a Value, step: &str) -> Self {
        Traced {
            value,
            path: format!("{}/{step}", self.path),
            log: self.log,
        }
    }
}

impl<'de, 'a> de::Deserializer<'de> for Traced<'a> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.value {
            Value::Array(items) => visitor.visit_seq(Items {
                items: items.iter(),
                parent: self,
            }),
            Value::Object(fields) => visitor.visit_map(Fields {
                fields: fields.iter(),
                pending: None,
                parent: self,
            }),
            // Scalars carry nothing to trace.
            other => other.clone().deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.log.borrow_mut().push((self.path.clone(), fields));
        self.deserialize_any(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.value.clone().deserialize_enum(name, variants, visitor)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

struct Items<'a> {
    items: std::slice::Iter<'a, Value>,
    parent: Traced<'a>,
}

impl<'de> de::SeqAccess<'de> for Items<'_> {
    type Error = serde_json::Error;

    fn next_element_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Self::Error> {
        match self.items.next() {
            Some(v) => seed.deserialize(self.parent.at(v, "*")).map(Some),
            None => Ok(None),
        }
    }
}

struct Fields<'a> {
    fields: serde_json::map::Iter<'a>,
    pending: Option<(&'a String, &'a Value)>,
    parent: Traced<'a>,
}

impl<'de> de::MapAccess<'de> for Fields<'_> {
    type Error = serde_json::Error;

    fn next_key_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Self::Error> {
        match self.fields.next() {
            Some((k, v)) => {
                self.pending = Some((k, v));
                seed.deserialize(k.as_str().into_deserializer()).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, Self::Error> {
        let (k, v) = self
            .pending
            .take()
            .ok_or_else(|| de::Error::custom("a value without its key"))?;
        seed.deserialize(self.parent.at(v, k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Page {
        records: Vec<Record>,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Record {
        id: i64,
        #[serde(rename = "type")]
        kind: Option<String>,
        score: Option<Score>,
        nickname: Option<String>,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Score {
        strain: f64,
        mood: Option<f64>,
    }

    #[test]
    fn reads_outside_the_description_are_named_with_their_path() {
        let doc = serde_json::json!({"components": {"schemas": {
            "Page": {"type": "object", "properties": {
                "records": {"type": "array", "items": {"$ref": "#/components/schemas/Record"}}}},
            "Record": {"type": "object", "properties": {
                "id": {"type": "integer", "example": 7},
                "type": {"type": "string", "example": "run"},
                "score": {"allOf": [{"$ref": "#/components/schemas/Score"}]}}},
            "Score": {"type": "object", "properties": {"strain": {"type": "number", "example": 5.5}}}
        }}});
        assert_eq!(
            example_of(&doc, "Page"),
            serde_json::json!({"records": [{"id": 7, "type": "run", "score": {"strain": 5.5}}]})
        );
        assert_eq!(
            undescribed_reads::<Page>(&doc, "Page"),
            ["/records/*/nickname", "/records/*/score/mood"]
        );
        // A record that does not fit the type stops the trace, and says so.
        let wrong = serde_json::json!({"records": [{"id": "seven"}]});
        let found = undescribed_reads_of::<Page>(&doc, "Page", &wrong);
        assert!(
            found
                .iter()
                .any(|f| f.starts_with("not traced to the end: ")),
            "{found:?}"
        );
    }
}
