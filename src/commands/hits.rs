//! Text output of search hits: rank, id, score and payload fields in aligned columns, so a
//! person sees who each hit is, not only an id (`search` without `--json`, and the demo).

use anyhow::{bail, Result};
use medvec_store::{Collection, Hit};

/// The payload columns to show: `--show a,b,c` in that order, or every payload field of the
/// schema but the reserved ones (`_path`, a file name, not who the case is). Names are checked
/// against the schema, so a typo is an error, not an empty column.
pub fn payload_columns(collection: &Collection, show: Option<&str>) -> Result<Vec<String>> {
    let known: Vec<String> = collection
        .schema()
        .payload
        .iter()
        .map(|f| f.name.clone())
        .collect();
    let Some(show) = show else {
        return Ok(known.into_iter().filter(|n| !n.starts_with('_')).collect());
    };
    let mut columns = Vec::new();
    for name in show.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !known.iter().any(|k| k == name) {
            bail!(
                "--show: `{name}` is not a payload field of `{}` (fields: {})",
                collection.name(),
                known.join(", ")
            );
        }
        columns.push(name.to_string());
    }
    Ok(columns)
}

/// The hits as aligned text lines, a header first, each line indented by two spaces. A hit's
/// payload is read from the first of `collections` (the shards of a search) that holds it; a
/// missing value shows as `-`.
pub fn table_lines(
    collections: &[&Collection],
    hits: &[Hit],
    columns: &[String],
) -> anyhow::Result<Vec<String>> {
    let mut header = vec!["rank".to_string(), "id".into(), "score".into()];
    header.extend(columns.iter().cloned());
    let mut rows = vec![header];
    for (rank, hit) in hits.iter().enumerate() {
        let record = find_record(collections, &hit.id)?;
        let mut row = vec![
            format!("{}.", rank + 1),
            hit.id.clone(),
            format!("{:.4}", hit.score),
        ];
        row.extend(columns.iter().map(|c| {
            record
                .as_ref()
                .and_then(|r| r.payload.get(c))
                .map(|v| v.to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "-".into())
        }));
        rows.push(row);
    }
    Ok(align(&rows))
}

/// The record with this id in the first of `collections` (shards) that holds it.
pub fn find_record(
    collections: &[&Collection],
    id: &str,
) -> Result<Option<medvec_store::Record>, medvec_store::StoreError> {
    for collection in collections {
        if let Some(record) = collection.get(id)? {
            return Ok(Some(record));
        }
    }
    Ok(None)
}

/// Pads every column to its widest cell; the rank and score columns are right-aligned.
fn align(rows: &[Vec<String>]) -> Vec<String> {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(c, (cell, &w))| match c {
                    0 | 2 => format!("{cell:>w$}"),
                    _ => format!("{cell:<w$}"),
                })
                .collect();
            format!("  {}", cells.join("  ").trim_end())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::align;

    #[test]
    fn columns_line_up_whatever_the_cell_widths() {
        let rows: Vec<Vec<String>> = [
            ["rank", "id", "score", "dx"],
            ["1.", "ISIC_0024334", "1.0000", "nv"],
            ["10.", "x", "0.5000", "mel"],
        ]
        .iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect();
        let lines = align(&rows);
        assert_eq!(lines[0], "  rank  id             score  dx");
        assert_eq!(lines[1], "    1.  ISIC_0024334  1.0000  nv");
        assert_eq!(lines[2], "   10.  x             0.5000  mel");
    }
}
