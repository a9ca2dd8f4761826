//! Round trips, bad input, locking, compaction and format versioning.

mod common;

use common::*;
use medvec_store::{CollectionOptions, Record, SearchParams, Store, StoreError, Value};

#[test]
fn records_survive_reopen_with_and_without_flush() {
    let (dir, store) = new_store();
    let cases = store.create_collection("cases", schema(8)).unwrap();
    let vectors = clustered(300, 8, 4, 1);
    cases.upsert(&records(&vectors[..200], 0)).unwrap();
    cases.flush().unwrap();
    cases.upsert(&records(&vectors[200..], 200)).unwrap();
    drop(cases);
    drop(store);
    let store = Store::open(dir.path().join("store")).unwrap();
    let cases = store.collection("cases").unwrap();
    assert_eq!(cases.len(), 300);
    let got = cases.get("case-000250").unwrap().unwrap();
    assert_eq!(got.vectors["image"], vectors[250]);
    assert_eq!(got.payload["age"], Value::Int(250 % 90));
    let hits = cases
        .search("image", &vectors[10], &SearchParams::top(3))
        .unwrap();
    assert_eq!(hits[0].id, "case-000010");
    assert!((hits[0].score - 1.0).abs() < 1e-5);
}

#[test]
fn upsert_replaces_and_delete_hides() {
    let (_dir, store) = new_store();
    let cases = store.create_collection("cases", schema(4)).unwrap();
    let vectors = clustered(10, 4, 2, 2);
    cases.upsert(&records(&vectors, 0)).unwrap();
    cases.flush().unwrap();
    let replacement = Record::new("case-000003")
        .with_vector("image", vec![0.0, 0.0, 0.0, 1.0])
        .with_value("dx", Value::String("df".into()));
    cases.upsert(&[replacement]).unwrap();
    assert_eq!(cases.len(), 10);
    let got = cases.get("case-000003").unwrap().unwrap();
    assert_eq!(got.payload["dx"], Value::String("df".into()));
    assert!(
        !got.vectors.contains_key("text"),
        "an upsert replaces the whole record"
    );
    assert_eq!(
        cases
            .delete(&["case-000004".into(), "nope".into()])
            .unwrap(),
        1
    );
    assert!(cases.get("case-000004").unwrap().is_none());
    let hits = cases
        .search("image", &vectors[4], &SearchParams::top(10))
        .unwrap();
    assert!(hits.iter().all(|h| h.id != "case-000004"));
    assert_eq!(hits.len(), 9);
}

#[test]
fn bad_batches_are_rejected_whole() {
    let (_dir, store) = new_store();
    let cases = store.create_collection("cases", schema(4)).unwrap();
    let good = records(&clustered(3, 4, 1, 3), 0);
    let cases_of = |mutate: &dyn Fn(&mut Vec<Record>)| {
        let mut batch = good.clone();
        mutate(&mut batch);
        batch
    };
    let bad_batches: Vec<(Vec<Record>, &str)> = vec![
        (
            cases_of(&|b| {
                b[1].vectors.insert("image".into(), vec![1.0; 5]);
            }),
            "dimension 5",
        ),
        (
            cases_of(&|b| {
                b[2].vectors.get_mut("image").unwrap()[0] = f32::NAN;
            }),
            "non-finite",
        ),
        (
            cases_of(&|b| {
                b[2].vectors.get_mut("text").unwrap()[1] = f32::INFINITY;
            }),
            "non-finite",
        ),
        (cases_of(&|b| b[2].id = b[0].id.clone()), "twice"),
        (
            cases_of(&|b| {
                b[1].vectors.insert("audio".into(), vec![1.0; 4]);
            }),
            "unknown vector field `audio`",
        ),
        (
            cases_of(&|b| {
                b[1].payload.insert("weight".into(), Value::Int(1));
            }),
            "unknown payload field `weight`",
        ),
        (
            cases_of(&|b| {
                b[1].payload
                    .insert("age".into(), Value::String("old".into()));
            }),
            "field `age` is int",
        ),
        (cases_of(&|b| b[0].id = String::new()), "id is empty"),
        (
            cases_of(&|b| b[0].id = "a\u{7}b".into()),
            "control character",
        ),
    ];
    for (batch, expected) in bad_batches {
        let err = cases.upsert(&batch).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "`{err}` should mention `{expected}`"
        );
        assert_eq!(
            cases.len(),
            0,
            "nothing of a rejected batch may be stored ({expected})"
        );
    }
    cases.upsert(&good).unwrap();
    assert_eq!(cases.len(), 3);
}

#[test]
fn a_second_writer_is_refused_but_readers_are_not() {
    let (dir, store) = new_store();
    store
        .create_collection("cases", schema(4))
        .unwrap()
        .upsert(&records(&clustered(5, 4, 1, 4), 0))
        .unwrap();
    let err = Store::open(dir.path().join("store"))
        .err()
        .expect("second writer must fail");
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(err.to_string().contains(&std::process::id().to_string()));
    let reader = Store::open_read_only(dir.path().join("store")).unwrap();
    assert_eq!(
        reader.collection("cases").unwrap().len(),
        5,
        "readers see acknowledged, unflushed writes"
    );
    assert!(reader.create_collection("x", schema(4)).is_err());
    drop(store);
    Store::open(dir.path().join("store")).expect("the lock is released with the writer");
}

#[test]
fn compaction_reclaims_space_of_deleted_rows() {
    let dir = tempfile::tempdir().unwrap();
    let options = CollectionOptions {
        flush_rows: 500,
        segment_rows: 10_000,
        ..CollectionOptions::default()
    };
    Store::create(dir.path().join("s")).unwrap();
    let store = Store::open_with(dir.path().join("s"), options).unwrap();
    let cases = store.create_collection("cases", schema(32)).unwrap();
    let vectors = clustered(2000, 32, 8, 5);
    cases.upsert(&records(&vectors, 0)).unwrap();
    cases.flush().unwrap();
    let ids: Vec<String> = (0..1500).map(|n| format!("case-{n:06}")).collect();
    cases.delete(&ids).unwrap();
    cases.flush().unwrap();
    let before = cases.stats();
    assert_eq!(before.deleted_rows, 1500);
    cases.compact().unwrap();
    let after = cases.stats();
    assert_eq!(after.count, 500);
    assert_eq!(after.deleted_rows, 0);
    assert_eq!(after.segments, 1);
    assert!(
        after.disk_bytes * 2 < before.disk_bytes,
        "{} → {} bytes",
        before.disk_bytes,
        after.disk_bytes
    );
    let hits = cases
        .search("image", &vectors[1999], &SearchParams::top(1))
        .unwrap();
    assert_eq!(hits[0].id, "case-001999");
    drop(cases);
    drop(store);
    let store = Store::open(dir.path().join("s")).unwrap();
    assert_eq!(store.collection("cases").unwrap().len(), 500);
    store.verify().unwrap();
}

#[test]
fn collections_are_listed_and_dropped() {
    let (_dir, store) = new_store();
    store.create_collection("b", schema(2)).unwrap();
    store.create_collection("a", schema(2)).unwrap();
    assert!(matches!(
        store.create_collection("a", schema(2)),
        Err(StoreError::CollectionExists(_))
    ));
    assert!(store.create_collection("../evil", schema(2)).is_err());
    assert_eq!(store.list_collections().unwrap(), vec!["a", "b"]);
    store.drop_collection("a").unwrap();
    assert_eq!(store.list_collections().unwrap(), vec!["b"]);
    assert!(matches!(
        store.collection("a"),
        Err(StoreError::NoSuchCollection(_))
    ));
}

#[test]
fn a_store_from_a_newer_version_is_refused() {
    let (dir, store) = new_store();
    drop(store);
    let marker = dir.path().join("store/medvec.store");
    let mut bytes = std::fs::read(&marker).unwrap();
    let body = String::from_utf8(bytes[64..].to_vec()).unwrap().replace(
        &format!("\"format\": {}", medvec_store::FORMAT_VERSION),
        "\"format\": 9",
    );
    bytes.truncate(64);
    // Re-seal the header so only the version differs, as a genuine newer file would.
    let crc = crc32(body.as_bytes());
    bytes[24..32].copy_from_slice(&(body.len() as u64).to_le_bytes());
    bytes[32..36].copy_from_slice(&crc.to_le_bytes());
    let header_crc = crc32(&bytes[..60]);
    bytes[60..64].copy_from_slice(&header_crc.to_le_bytes());
    bytes.extend_from_slice(body.as_bytes());
    std::fs::write(&marker, bytes).unwrap();
    let err = Store::open(dir.path().join("store")).err().unwrap();
    assert!(
        matches!(err, StoreError::NewerFormat { found: 9, .. }),
        "{err}"
    );
}

fn crc32(bytes: &[u8]) -> u32 {
    // Bitwise CRC-32 (IEEE), independent of the crate under test.
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn running_sums_match_a_brute_force_centroid_through_every_write() {
    let dir = tempfile::tempdir().unwrap();
    Store::create(dir.path().join("s")).unwrap();
    let options = CollectionOptions {
        flush_rows: 70,
        segment_rows: 1000,
        ..CollectionOptions::default()
    };
    let store = Store::open_with(dir.path().join("s"), options).unwrap();
    let cases = store.create_collection("cases", schema(6)).unwrap();
    let vectors = clustered(300, 6, 3, 9);
    cases.upsert(&records(&vectors[..200], 0)).unwrap();
    // Replace some, delete some, in segments and in the tail.
    cases.upsert(&records(&vectors[200..], 150)).unwrap();
    let doomed: Vec<String> = (0..250)
        .step_by(7)
        .map(|n| format!("case-{n:06}"))
        .collect();
    cases.delete(&doomed).unwrap();
    let check = |cases: &medvec_store::Collection, when: &str| {
        let mut expected = [0f64; 6];
        let mut count = 0;
        cases
            .scan(|r| {
                let v = &r.vectors["image"];
                let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
                expected
                    .iter_mut()
                    .zip(v)
                    .for_each(|(e, x)| *e += f64::from(*x) / norm);
                count += 1;
                Ok(())
            })
            .unwrap();
        let sum = cases.field_sum("image").unwrap();
        assert_eq!(sum.count, count, "{when}");
        for (got, want) in sum.sum.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{when}: {got} vs {want}");
        }
    };
    check(&cases, "after writes");
    cases.compact().unwrap();
    check(&cases, "after compaction");
    drop(cases);
    drop(store);
    let store = Store::open(dir.path().join("s")).unwrap();
    check(&store.collection("cases").unwrap(), "after reopen");
}
