//! The labelled rows a head trains on, read from a collection, and their train / validation /
//! test split (a split column, a seeded stratified split, a grouped one, or a cross-validation
//! fold).

use crate::error::{QueryError, Result};
use crate::heads::{assign_parts, stratified_group_split, stratified_split};
use crate::training::{SplitSource, TrainRequest};
use medvec_store::{Collection, Record};

/// Labelled records with every field of the head, in scan order.
pub(crate) struct Dataset {
    pub ids: Vec<String>,
    /// `columns[f][r]`: row `r`'s vector of the head's field `f`.
    pub columns: Vec<Vec<Vec<f32>>>,
    pub labels: Vec<usize>,
    pub classes: Vec<String>,
    pub split_values: Vec<String>,
    /// Labelled records without one of the fields (left out).
    pub missing_field_rows: usize,
}

impl Dataset {
    /// The vectors of `rows`, per field, and their labels.
    pub fn subset(&self, rows: &[usize]) -> (Vec<Vec<&[f32]>>, Vec<usize>) {
        let columns = self
            .columns
            .iter()
            .map(|column| rows.iter().map(|&r| column[r].as_slice()).collect())
            .collect();
        (columns, rows.iter().map(|&r| self.labels[r]).collect())
    }

    /// The width of each field.
    pub fn dims(&self) -> Vec<usize> {
        self.columns
            .iter()
            .map(|c| c.first().map_or(0, Vec::len))
            .collect()
    }
}

/// The column read per row: the split itself, or the group of a grouped split.
pub(crate) fn split_column_of(split: &SplitSource) -> Option<&str> {
    match split {
        SplitSource::Column(c)
        | SplitSource::Grouped { column: c, .. }
        | SplitSource::Fold {
            group_column: Some(c),
            ..
        } => Some(c),
        SplitSource::Fractions(..) | SplitSource::Fold { .. } => None,
    }
}

/// Reads the labelled records that have every field of `request` (counting those that lack
/// one), with their split or group value.
pub(crate) fn load_dataset(collection: &Collection, request: &TrainRequest) -> Result<Dataset> {
    let schema = collection.schema();
    let fields = &request.fields.fields;
    request.fields.validate()?;
    for field in fields {
        schema.vector_field(field)?;
    }
    if schema.payload_index(&request.label_field).is_none() {
        return Err(QueryError::Invalid(format!(
            "unknown label field `{}`",
            request.label_field
        )));
    }
    let split_column = split_column_of(&request.split);
    if let Some(c) = split_column.filter(|c| schema.payload_index(c).is_none()) {
        return Err(QueryError::Invalid(format!(
            "unknown split or group field `{c}`"
        )));
    }
    let split_column = split_column.map(str::to_string);
    let mut raw: Vec<(Record, String)> = Vec::new();
    let mut missing_field_rows = 0;
    collection.scan(|record| {
        let label = record
            .payload
            .get(&request.label_field)
            .map(|v| v.to_string())
            .unwrap_or_default();
        let complete = fields.iter().all(|f| record.vectors.contains_key(f));
        match (label.is_empty(), complete) {
            (false, true) => raw.push((record, label)),
            (false, false) => missing_field_rows += 1,
            (true, _) => {}
        }
        Ok(())
    })?;
    let mut classes: Vec<String> = raw.iter().map(|(_, l)| l.clone()).collect();
    classes.sort();
    classes.dedup();
    let mut data = Dataset {
        ids: Vec::new(),
        columns: vec![Vec::new(); fields.len()],
        labels: Vec::new(),
        classes,
        split_values: Vec::new(),
        missing_field_rows,
    };
    for (mut record, label) in raw {
        data.labels
            .push(data.classes.binary_search(&label).expect("collected above"));
        data.split_values.push(
            split_column
                .as_ref()
                .and_then(|c| record.payload.get(c))
                .map(|v| v.to_string())
                .unwrap_or_default(),
        );
        for (column, field) in data.columns.iter_mut().zip(fields) {
            column.push(record.vectors.remove(field).expect("checked above"));
        }
        data.ids.push(record.id);
    }
    if data.classes.len() < 2 {
        return Err(QueryError::Invalid(format!(
            "label `{}` needs at least two classes among records with every field ({})",
            request.label_field,
            request.fields.names()
        )));
    }
    Ok(data)
}

/// The train, validation and test rows of `split`.
pub(crate) fn split_rows(data: &Dataset, split: &SplitSource) -> Result<[Vec<usize>; 3]> {
    match split {
        SplitSource::Fractions(fractions, seed) => {
            let s = stratified_split(&data.labels, *fractions, *seed)
                .map_err(|e| QueryError::Invalid(e.to_string()))?;
            Ok([s.train, s.val, s.test])
        }
        SplitSource::Grouped {
            fractions, seed, ..
        } => {
            let groups = group_numbers(data);
            let s = stratified_group_split(&data.labels, &groups, *fractions, *seed)
                .map_err(|e| QueryError::Invalid(e.to_string()))?;
            Ok([s.train, s.val, s.test])
        }
        SplitSource::Fold {
            fold,
            folds,
            val,
            seed,
            group_column,
        } => fold_rows(data, *fold, *folds, *val, *seed, group_column.is_some()),
        SplitSource::Column(column) => {
            let mut parts: [Vec<usize>; 3] = Default::default();
            for (row, value) in data.split_values.iter().enumerate() {
                match value.to_ascii_lowercase().as_str() {
                    "train" | "training" => parts[0].push(row),
                    "val" | "valid" | "validation" | "dev" => parts[1].push(row),
                    "test" => parts[2].push(row),
                    other => return Err(QueryError::Invalid(format!("record `{}`: split column `{column}` is `{other}`; expected train, val or test", data.ids[row]))),
                }
            }
            if parts[0].is_empty() || parts[1].is_empty() {
                return Err(QueryError::Invalid(format!("split column `{column}` needs train and val rows (λ and epochs are chosen on val, never on test)")));
            }
            Ok(parts)
        }
    }
}

/// Fold `fold` of `folds` as the test part; the rest split into train and `val` (a share of
/// the rest), both stratified, groups whole when `grouped`.
fn fold_rows(
    data: &Dataset,
    fold: usize,
    folds: usize,
    val: f64,
    seed: u64,
    grouped: bool,
) -> Result<[Vec<usize>; 3]> {
    if folds < 2 || fold >= folds || !(0.0..1.0).contains(&val) {
        return Err(QueryError::Invalid(format!(
            "cv: fold {fold} of {folds} with a validation share {val}; need 2+ folds and a share in [0, 1)"
        )));
    }
    let groups = if grouped {
        group_numbers(data)
    } else {
        (0..data.labels.len()).collect()
    };
    let shares = vec![1.0 / folds as f64; folds];
    let parts = assign_parts(&data.labels, &groups, &shares, seed);
    let test = parts[fold].clone();
    let rest: Vec<usize> = (0..folds)
        .filter(|&f| f != fold)
        .flat_map(|f| parts[f].iter().copied())
        .collect();
    let rest_labels: Vec<usize> = rest.iter().map(|&r| data.labels[r]).collect();
    let rest_groups: Vec<usize> = rest.iter().map(|&r| groups[r]).collect();
    // A different stream from the folds', so the validation rows are not the folds' order.
    let inner = assign_parts(&rest_labels, &rest_groups, &[1.0 - val, val], seed ^ 0x5eed);
    let pick = |rows: &[usize]| -> Vec<usize> {
        let mut out: Vec<usize> = rows.iter().map(|&i| rest[i]).collect();
        out.sort_unstable();
        out
    };
    Ok([pick(&inner[0]), pick(&inner[1]), test])
}

/// Each row's group number: rows with the same group value share one; a row without a value
/// is alone in its group.
fn group_numbers(data: &Dataset) -> Vec<usize> {
    let mut numbers: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut next = 0;
    data.split_values
        .iter()
        .map(|value| {
            let key = if value.is_empty() {
                None
            } else {
                Some(value.as_str())
            };
            let number = match key {
                Some(key) => *numbers.entry(key).or_insert(next),
                None => next,
            };
            if number == next {
                next += 1;
            }
            number
        })
        .collect()
}
