//! Collection schemas: vector fields with a dimension and metric, and typed payload fields.

use crate::error::{Result, StoreError};
use crate::value::FieldType;
use serde::{Deserialize, Serialize};

/// How two vectors of a field are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Cosine similarity; the score is the similarity, higher is better.
    Cosine,
    /// Euclidean distance; the score is the distance, lower is better.
    L2,
    /// Inner product; the score is the product, higher is better.
    Dot,
}

impl Metric {
    pub fn parse(text: &str) -> Option<Metric> {
        match text.to_ascii_lowercase().as_str() {
            "cosine" | "cos" => Some(Metric::Cosine),
            "l2" | "euclidean" => Some(Metric::L2),
            "dot" | "ip" | "inner" => Some(Metric::Dot),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::L2 => "l2",
            Metric::Dot => "dot",
        }
    }
}

/// HNSW build and search parameters of one vector field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnswParams {
    /// Neighbours kept per node on upper layers (twice this on layer 0).
    pub m: usize,
    /// Beam width while building.
    pub ef_construction: usize,
    /// Default beam width while searching graphs of up to 100k rows; larger graphs scale it by
    /// `(rows / 100k)^0.6` (`crate::default_ef`). Raised to k when k is larger.
    pub ef_search: usize,
    /// Which implementation builds the graph (both write the same file layout).
    #[serde(default)]
    pub builder: GraphBuilder,
}

/// The HNSW graph builder of a vector field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GraphBuilder {
    /// medvec's own builder: flat arrays and hnswlib's heuristic on every list overflow.
    #[default]
    Medvec,
    /// The `hnsw_rs` crate's builder.
    HnswRs,
}

impl GraphBuilder {
    /// Parses `medvec` or `hnsw_rs`.
    pub fn parse(name: &str) -> Option<GraphBuilder> {
        match name {
            "medvec" => Some(GraphBuilder::Medvec),
            "hnsw_rs" => Some(GraphBuilder::HnswRs),
            _ => None,
        }
    }
}

impl Default for HnswParams {
    /// hnswlib's M and ef_construction. ef_search 64 is the smallest power of two that reached
    /// recall@10 >= 0.95 (0.965–0.967) on 100k clustered 512-d vectors with medvec's builder, as
    /// it is for hnswlib and faiss (`benches/README.md`).
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 200,
            ef_search: 64,
            builder: GraphBuilder::default(),
        }
    }
}

/// A named vector field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VectorField {
    pub name: String,
    pub dim: usize,
    pub metric: Metric,
    #[serde(default)]
    pub hnsw: HnswParams,
    /// Compact codes stored beside the `f32` column for graph traversal; absent in manifests
    /// written before quantisation existed, which read as [`Quantization::None`].
    #[serde(default, skip_serializing_if = "Quantization::is_none")]
    pub quantization: Quantization,
}

/// How a vector field's graph walks score rows: on the exact `f32` column, or on compact codes
/// whose best candidates are then re-scored exactly (so returned scores are always exact).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantization {
    #[default]
    None,
    /// One byte per dimension: per-dimension ranges learned when a segment is written.
    Sq8,
}

impl Quantization {
    pub fn parse(text: &str) -> Option<Quantization> {
        match text.to_ascii_lowercase().as_str() {
            "none" | "f32" => Some(Quantization::None),
            "sq8" => Some(Quantization::Sq8),
            _ => None,
        }
    }

    pub fn is_none(&self) -> bool {
        *self == Quantization::None
    }

    pub fn name(self) -> &'static str {
        match self {
            Quantization::None => "none",
            Quantization::Sq8 => "sq8",
        }
    }
}

impl VectorField {
    /// Parses the CLI form `name:dim:metric[:quantization]`, for example `image:512:cosine` or
    /// `image:512:cosine:sq8`.
    ///
    /// ```
    /// use medvec_store::{Metric, Quantization, VectorField};
    /// let field = VectorField::parse("image:512:cosine").unwrap();
    /// assert_eq!((field.name.as_str(), field.dim, field.metric), ("image", 512, Metric::Cosine));
    /// let coded = VectorField::parse("image:512:cosine:sq8").unwrap();
    /// assert_eq!(coded.quantization, Quantization::Sq8);
    /// ```
    pub fn parse(spec: &str) -> Result<VectorField> {
        let bad = |why: &str| StoreError::InvalidSchema(format!("vector field `{spec}`: {why}"));
        let parts: Vec<&str> = spec.split(':').collect();
        let (name, dim, metric, quantization) = match parts.as_slice() {
            [name, dim, metric] => (name, dim, metric, Quantization::None),
            [name, dim, metric, code] => (
                name,
                dim,
                metric,
                Quantization::parse(code).ok_or_else(|| bad("QUANTIZATION must be none or sq8"))?,
            ),
            _ => {
                return Err(bad(
                    "expected NAME:DIM:METRIC[:QUANTIZATION], for example image:512:cosine:sq8",
                ))
            }
        };
        let dim: usize = dim
            .parse()
            .map_err(|_| bad("DIM is not a positive integer"))?;
        let metric =
            Metric::parse(metric).ok_or_else(|| bad("METRIC must be cosine, l2 or dot"))?;
        let field = VectorField {
            name: name.to_string(),
            dim,
            metric,
            hnsw: HnswParams::default(),
            quantization,
        };
        field.validate()?;
        Ok(field)
    }

    /// The CLI form [`parse`](Self::parse) reads, for display.
    pub fn spec(&self) -> String {
        let spec = format!("{}:{}:{}", self.name, self.dim, self.metric.name());
        match self.quantization {
            Quantization::None => spec,
            q => format!("{spec}:{}", q.name()),
        }
    }

    fn validate(&self) -> Result<()> {
        validate_name(&self.name)?;
        if self.dim == 0 || self.dim > MAX_DIM {
            return Err(StoreError::InvalidSchema(format!(
                "vector field `{}`: dimension {} is outside 1..={MAX_DIM}",
                self.name, self.dim
            )));
        }
        let p = self.hnsw;
        if !(2..=128).contains(&p.m) || p.ef_construction == 0 || p.ef_search == 0 {
            return Err(StoreError::InvalidSchema(format!(
                "vector field `{}`: HNSW needs 2 <= M <= 128 and positive ef values",
                self.name
            )));
        }
        Ok(())
    }
}

/// The largest vector dimension accepted (LLaMA-2 70B hidden size is 8192).
pub const MAX_DIM: usize = 65_536;

/// A named, typed payload field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadField {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
}

impl PayloadField {
    /// Parses the CLI form `name:type`, for example `dx:string` or `age:int`.
    pub fn parse(spec: &str) -> Result<PayloadField> {
        let bad = |why: &str| StoreError::InvalidSchema(format!("payload field `{spec}`: {why}"));
        let (name, type_name) = spec
            .split_once(':')
            .ok_or_else(|| bad("expected NAME:TYPE, for example dx:string"))?;
        let field_type = FieldType::parse(type_name)
            .ok_or_else(|| bad("TYPE must be string, int, float or bool"))?;
        validate_name(name)?;
        Ok(PayloadField {
            name: name.to_string(),
            field_type,
        })
    }
}

/// The fixed shape of a collection's records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    pub vectors: Vec<VectorField>,
    pub payload: Vec<PayloadField>,
}

impl Schema {
    /// Checks names are valid and unique and that there is at least one vector field.
    pub fn validate(&self) -> Result<()> {
        if self.vectors.is_empty() {
            return Err(StoreError::InvalidSchema(
                "a collection needs at least one vector field".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for field in &self.vectors {
            field.validate()?;
            if !seen.insert(field.name.as_str()) {
                return Err(StoreError::InvalidSchema(format!(
                    "field `{}` is named twice",
                    field.name
                )));
            }
        }
        for field in &self.payload {
            validate_name(&field.name)?;
            if field.name == "id" {
                return Err(StoreError::InvalidSchema(
                    "`id` is reserved for the record id".into(),
                ));
            }
            if !seen.insert(field.name.as_str()) {
                return Err(StoreError::InvalidSchema(format!(
                    "field `{}` is named twice",
                    field.name
                )));
            }
        }
        Ok(())
    }

    pub fn vector_field(&self, name: &str) -> Result<&VectorField> {
        self.vectors
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| StoreError::UnknownField(name.to_string()))
    }

    pub fn vector_index(&self, name: &str) -> Result<usize> {
        self.vectors
            .iter()
            .position(|f| f.name == name)
            .ok_or_else(|| StoreError::UnknownField(name.to_string()))
    }

    pub fn payload_index(&self, name: &str) -> Option<usize> {
        self.payload.iter().position(|f| f.name == name)
    }
}

/// Field and collection names: ASCII letters, digits, `_`, `-` and `.`, not starting with `.`,
/// because they become file names.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidSchema(format!(
            "name `{name}` must be 1-64 ASCII letters, digits, `_`, `-` or `.`, not starting with `.`"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_vector_specs() {
        assert!(VectorField::parse("image:0:cosine").is_err());
        assert!(VectorField::parse("image:512").is_err());
        assert!(VectorField::parse("image:512:manhattan").is_err());
        assert!(VectorField::parse("../x:512:l2").is_err());
        assert!(VectorField::parse("image:-3:l2").is_err());
        assert!(VectorField::parse("image:512:l2:pq").is_err());
        assert!(VectorField::parse("image:512:l2:sq8:x").is_err());
    }

    #[test]
    fn specs_round_trip() {
        for spec in ["image:512:cosine", "t:3:l2:sq8", "x:8:dot"] {
            assert_eq!(VectorField::parse(spec).unwrap().spec(), spec);
        }
    }

    #[test]
    fn rejects_duplicate_names() {
        let schema = Schema {
            vectors: vec![VectorField::parse("a:2:l2").unwrap()],
            payload: vec![PayloadField::parse("a:int").unwrap()],
        };
        assert!(schema.validate().is_err());
    }
}
