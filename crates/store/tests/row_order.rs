//! A segment with a graph is written in its graph's breadth-first order, not in the order its
//! rows arrived (`graph::RowOrder`). Every file of the segment must follow the same order: a row
//! whose id, vector, other field's vector, presence, payload or SQ8 code came from another row
//! would be a silent wrong answer, so these tests check each record whole, after a flush, after
//! a merge that extends a graph and after one that rebuilds it.

mod common;

use common::*;
use medvec_store::{Filter, PayloadField, Record, Schema, SearchParams, Value, VectorField};
use std::collections::BTreeMap;
use std::path::Path;

const DIM: usize = 32;

fn schema() -> Schema {
    Schema {
        vectors: vec![
            VectorField::parse(&format!("image:{DIM}:cosine:sq8")).unwrap(),
            VectorField::parse(&format!("text:{DIM}:l2")).unwrap(),
        ],
        payload: vec![
            PayloadField::parse("dx:string").unwrap(),
            PayloadField::parse("age:int").unwrap(),
        ],
    }
}

/// Rows `from..from + n`: every 5th has no text vector and every 7th no age (a get reads it back as null).
fn cases(from: usize, n: usize) -> Vec<Record> {
    let images = clustered(n, DIM, 8, from as u64 + 1);
    let texts = clustered(n, DIM, 5, from as u64 + 2);
    (0..n)
        .map(|i| {
            let row = from + i;
            let mut record = Record::new(format!("case-{row:06}"))
                .with_vector("image", images[i].clone())
                .with_value("dx", Value::String(format!("dx{}", row % 3)));
            if !row.is_multiple_of(5) {
                record = record.with_vector("text", texts[i].iter().map(|x| x * 3.0).collect());
            }
            let age = match row % 7 {
                0 => Value::Null,
                _ => Value::Int(row as i64),
            };
            record.with_value("age", age)
        })
        .collect()
}

/// Each stored row's position in the first segment's `image.f32`, by its vector's bytes.
fn written_positions(root: &Path, records: &[Record]) -> Vec<usize> {
    let collection = root.join("collections/cases");
    let segment = std::fs::read_dir(&collection)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("seg-"))
        .unwrap();
    let bytes = std::fs::read(segment.join("image.f32")).unwrap();
    let rows: BTreeMap<&[u8], usize> = bytes[64..64 + 4 * DIM * records.len()]
        .chunks_exact(4 * DIM)
        .enumerate()
        .map(|(position, row)| (row, position))
        .collect();
    records
        .iter()
        .map(|r| {
            let bytes: Vec<u8> = r.vectors["image"]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect();
            rows[bytes.as_slice()]
        })
        .collect()
}

/// Every expected record reads back whole, deleted ones are gone, each row is its own nearest
/// neighbour on both fields (exactly), and a payload filter selects exactly the rows it names.
fn check_whole(cases: &medvec_store::Collection, expected: &[Record], deleted: &[String]) {
    for record in expected {
        let got = cases.get(&record.id).unwrap();
        assert_eq!(got.as_ref(), Some(record), "{}", record.id);
    }
    for id in deleted {
        assert!(!cases.contains(id).unwrap(), "{id} was deleted");
    }
    for record in expected.iter().step_by(37) {
        for field in ["image", "text"] {
            let Some(vector) = record.vectors.get(field) else {
                continue;
            };
            // Exact: this checks that the column's rows and the ids agree; whether walks find
            // every row is `graph::tests::two_thread_builds_leave_no_row_unfindable`'s job.
            let mut params = SearchParams::top(1);
            params.exact = true;
            let hits = cases.search(field, vector, &params).unwrap();
            assert_eq!(hits[0].id, record.id, "{field} of {}", record.id);
        }
    }
    let mut params = SearchParams::top(20);
    params.filter = Some(Filter::parse(r#"dx = "dx1" AND age >= 100"#).unwrap());
    let query = &expected[3].vectors["image"];
    let hits = cases.search("image", query, &params).unwrap();
    assert_eq!(hits.len(), 20);
    for hit in hits {
        let record = expected.iter().find(|r| r.id == hit.id).unwrap();
        assert_eq!(
            record.payload["dx"],
            Value::String("dx1".into()),
            "{}",
            hit.id
        );
        assert!(matches!(record.payload.get("age"), Some(Value::Int(a)) if *a >= 100));
    }
    cases.verify().unwrap();
}

#[test]
fn every_file_of_a_segment_follows_its_rows_new_order() {
    let (_dir, store) = new_store();
    let cases_ = store.create_collection("cases", schema()).unwrap();
    let first = cases(0, 3000);
    cases_.upsert(&first).unwrap();
    cases_.flush().unwrap();

    // The rows were reordered (else this test would check nothing), and all are whole.
    let positions = written_positions(store.path(), &first);
    let moved = positions
        .iter()
        .enumerate()
        .filter(|(i, p)| i != *p)
        .count();
    assert!(moved > first.len() / 2, "only {moved} rows moved");
    check_whole(&cases_, &first, &[]);

    // A merge that extends the first segment's graph (no row of it deleted), then reorders.
    let second = cases(3000, 2000);
    cases_.upsert(&second).unwrap();
    cases_.compact().unwrap();
    let all: Vec<Record> = first.iter().chain(&second).cloned().collect();
    check_whole(&cases_, &all, &[]);

    // Deletes land on the right rows of a reordered segment, and a merge that rebuilds the graph
    // (deleted rows dropped) keeps the rest whole.
    let deleted: Vec<String> = all.iter().step_by(11).map(|r| r.id.clone()).collect();
    assert_eq!(cases_.delete(&deleted).unwrap(), deleted.len());
    let kept: Vec<Record> = all
        .iter()
        .filter(|r| !deleted.contains(&r.id))
        .cloned()
        .collect();
    check_whole(&cases_, &kept, &deleted);
    cases_.compact().unwrap();
    check_whole(&cases_, &kept, &deleted);
    drop(cases_);
    drop(store);
}
