//! TEMPORARY STUB — replaced by the real parser.
use crate::schema::Schema;
use crate::value::Value;
#[derive(Debug, Clone)]
pub struct Filter { src: String }
#[derive(Debug, Clone)]
pub struct CompiledFilter;
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum FilterError { #[error("stub {0}")] Stub(String) }
pub trait PayloadRow { fn id(&self) -> &str; fn value(&self, index: usize) -> ValueRef<'_>; }
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> { Null, Bool(bool), Int(i64), Float(f64), Str(&'a str) }
impl<'a> From<&'a Value> for ValueRef<'a> { fn from(v: &'a Value) -> Self { match v { Value::Null => ValueRef::Null, Value::Bool(b) => ValueRef::Bool(*b), Value::Int(i) => ValueRef::Int(*i), Value::Float(f) => ValueRef::Float(*f), Value::String(s) => ValueRef::Str(s) } } }
impl Filter { pub fn parse(t: &str) -> Result<Filter, FilterError> { Ok(Filter{src: t.into()}) } pub fn compile(&self, _s: &Schema) -> Result<CompiledFilter, FilterError> { Ok(CompiledFilter) } pub fn source(&self) -> &str { &self.src } }
impl CompiledFilter { pub fn matches(&self, _row: &dyn PayloadRow) -> bool { true } }
