//! Lazily checked files (FORMAT.md §3.1): a damaged block of a column or of the id index is an
//! error naming the file as soon as a read uses it, reads that use only intact blocks still
//! answer, and `verify` finds the damage wherever it is.

mod common;

use common::*;
use medvec_store::{SearchParams, Store};
use std::path::{Path, PathBuf};

const ROWS: usize = 6000;
const DIM: usize = 128;
/// Blocks are 4 KiB pages: a 128-d row is 512 bytes, so 8 rows a block.
const BLOCK: usize = 1 << 12;
const ROWS_PER_BLOCK: usize = BLOCK / (4 * DIM);

/// One segment of 6000 rows (its columns span 3 blocks, its graph is walked) and the vectors.
fn build_store() -> (tempfile::TempDir, PathBuf, Vec<Vec<f32>>) {
    let (dir, store) = new_store();
    let cases = store.create_collection("cases", schema(DIM)).unwrap();
    let vectors = clustered(ROWS, DIM, 12, 3);
    cases.upsert(&records(&vectors, 0)).unwrap();
    cases.flush().unwrap();
    (dir, dir_path(&store), vectors)
}

fn dir_path(store: &Store) -> PathBuf {
    store.path().to_path_buf()
}

fn segment_file(root: &Path, name: &str) -> PathBuf {
    root.join("collections/cases/seg-00000001").join(name)
}

fn flip(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

/// Where each of `vectors` was written in `column` (a segment writes its rows in its graph's
/// breadth-first order, not in the order they were upserted): found by their bytes.
fn positions_in(column: &Path, vectors: &[Vec<f32>]) -> Vec<usize> {
    let bytes = std::fs::read(column).unwrap();
    let rows: std::collections::HashMap<&[u8], usize> = bytes[64..64 + 4 * DIM * vectors.len()]
        .chunks_exact(4 * DIM)
        .enumerate()
        .map(|(position, row)| (row, position))
        .collect();
    vectors
        .iter()
        .map(|v| {
            let row: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            rows[row.as_slice()]
        })
        .collect()
}

fn id(row: usize) -> String {
    format!("case-{row:06}")
}

#[test]
fn a_damaged_column_block_fails_the_reads_that_use_it_and_only_those() {
    let (_dir, root, vectors) = build_store();
    let column = segment_file(&root, "image.f32");
    // A byte of row 3000's vector (the reciprocal norms, which every read of a row uses, are
    // in blocks of their own after the vectors).
    let row = 3000;
    let positions = positions_in(&column, &vectors);
    let at = 4 * DIM * positions[row] + 7;
    flip(&column, 64 + at);
    let store = Store::open_read_only(&root).unwrap();
    let cases = store.collection("cases").unwrap();

    // Rows in intact blocks read, the ones written just before and after the damaged block
    // included; the damaged row is an error naming the file and the block.
    let written_at = |position: usize| id(positions.iter().position(|&p| p == position).unwrap());
    assert!(cases.get(&written_at(10)).unwrap().is_some());
    assert!(cases
        .get(&written_at(positions[row] - ROWS_PER_BLOCK))
        .unwrap()
        .is_some());
    assert!(cases
        .get(&written_at(positions[row] + ROWS_PER_BLOCK))
        .unwrap()
        .is_some());
    let err = cases.get(&id(row)).unwrap_err().to_string();
    let block = format!("block {} ", at / BLOCK);
    assert!(err.contains("image.f32") && err.contains(&block), "{err}");

    // A search that scores the damaged row fails before answering, exactly or on the graph.
    let mut exact = SearchParams::top(10);
    exact.exact = true;
    let err = cases.search("image", &vectors[row], &exact).unwrap_err();
    assert!(err.to_string().contains("image.f32"), "{err}");
    let err = cases
        .search("image", &vectors[row], &SearchParams::top(10))
        .unwrap_err();
    assert!(err.to_string().contains("image.f32"), "{err}");
    // The other field's column is intact.
    assert_eq!(cases.search("text", &vectors[0], &exact).unwrap().len(), 10);

    let err = store.verify().unwrap_err().to_string();
    assert!(err.contains("image.f32"), "{err}");
}

#[test]
fn a_damaged_id_index_block_fails_the_lookups_that_touch_it() {
    let (_dir, root, _) = build_store();
    let index = segment_file(&root, "ids.idx");
    let len = std::fs::metadata(&index).unwrap().len() as usize;
    // The last id's last byte sits just before the block table (4 bytes per block).
    let data_len = len - 64 - 4 * (len - 64).div_ceil(BLOCK + 4);
    // The rows are written in the graph's order: the id is read from the file.
    let bytes = std::fs::read(&index).unwrap();
    let last = &bytes[64 + data_len - id(0).len()..64 + data_len];
    let last = String::from_utf8(last.to_vec()).unwrap();
    assert!(last.starts_with("case-"), "{last}");
    flip(&index, 64 + data_len - 1);
    let store = Store::open_read_only(&root).unwrap();
    let cases = store.collection("cases").unwrap();
    let err = cases.contains(&last).unwrap_err().to_string();
    assert!(err.contains("ids.idx") && err.contains("checksum"), "{err}");
    assert!(cases.get(&last).is_err());
    let err = store.verify().unwrap_err().to_string();
    assert!(err.contains("ids.idx"), "{err}");
}

#[test]
fn lookups_find_every_id_and_nothing_else() {
    let (_dir, root, _) = build_store();
    let store = Store::open_read_only(&root).unwrap();
    let cases = store.collection("cases").unwrap();
    for row in (0..ROWS).step_by(7).chain([ROWS - 1]) {
        let record = cases.get(&id(row)).unwrap().unwrap();
        assert_eq!(record.id, id(row));
    }
    for missing in [
        "",
        "case-",
        "case-0060000",
        "case-006000",
        "zzz",
        "case-00000",
    ] {
        assert!(!cases.contains(missing).unwrap(), "{missing}");
    }
}

#[test]
fn a_damaged_graph_fails_the_searches_that_walk_it_not_the_reads_that_do_not() {
    let (_dir, root, vectors) = build_store();
    let graph = segment_file(&root, "image.hnsw");
    // A byte in every block of layer 0 (6,000 lists of 33 words): any walk meets one.
    let layer0_end = 64 + 4 * (4 + ROWS * 33);
    let mut bytes = std::fs::read(&graph).unwrap();
    for at in (64 + 4 * 4 + 40..layer0_end).step_by(BLOCK) {
        bytes[at] ^= 0x40;
    }
    std::fs::write(&graph, bytes).unwrap();
    let store = Store::open_read_only(&root).unwrap();
    let cases = store.collection("cases").unwrap();
    assert!(cases.get(&id(17)).unwrap().is_some());
    let mut exact = SearchParams::top(10);
    exact.exact = true;
    assert_eq!(
        cases.search("image", &vectors[17], &exact).unwrap().len(),
        10
    );
    let err = cases
        .search("image", &vectors[17], &SearchParams::top(10))
        .unwrap_err()
        .to_string();
    assert!(err.contains("image.hnsw"), "{err}");
    let err = store.verify().unwrap_err().to_string();
    assert!(
        err.contains("image.hnsw") && err.contains("--repair"),
        "{err}"
    );
}

/// Damage that leaves every list well-formed (a first neighbour id swapped for the next row's,
/// counts and ids all in range) is found only by the blocks' checksums, which a walk checks for
/// the lists it expanded when it ends: the search must still fail, naming the file. The first
/// block (the header words) and the block the upper layers start in are left intact, since the
/// first walk checks those before it starts.
#[test]
fn damage_only_a_checksum_can_see_fails_the_walk_that_read_it() {
    let (_dir, root, vectors) = build_store();
    let graph = segment_file(&root, "image.hnsw");
    let mut bytes = std::fs::read(&graph).unwrap();
    let layer0_end = 4 * (4 + ROWS * 33);
    let mut altered = 0;
    for node in 0..ROWS {
        let slot = 4 * (4 + node * 33);
        let spared = slot < BLOCK || slot + 4 * 33 > layer0_end / BLOCK * BLOCK;
        let word = |at: usize| u32::from_le_bytes(bytes[64 + at..64 + at + 4].try_into().unwrap());
        let (count, first) = (word(slot), word(slot + 4) as usize);
        if !spared && count > 0 && first + 1 < ROWS {
            bytes[64 + slot + 4] ^= 0x01;
            altered += 1;
        }
    }
    assert!(altered > ROWS / 2);
    std::fs::write(&graph, bytes).unwrap();
    let store = Store::open_read_only(&root).unwrap();
    let cases = store.collection("cases").unwrap();
    let err = cases
        .search("image", &vectors[17], &SearchParams::top(10))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("image.hnsw")
            && err.contains("checksum mismatch")
            && !err.contains("block 0 "),
        "{err}"
    );
}

#[test]
fn a_write_that_would_read_a_damaged_block_is_refused_before_it_is_logged() {
    let (_dir, root, vectors) = build_store();
    let column = segment_file(&root, "image.f32");
    let row = 3000;
    let position = positions_in(&column, &vectors)[row];
    flip(&column, 64 + 4 * DIM * position + 7);
    let batch = records(&vectors[..1], 90_000)
        .into_iter()
        .chain(records(&vectors[row..row + 1], row))
        .collect::<Vec<_>>();
    {
        let store = Store::open(&root).unwrap();
        let cases = store.collection("cases").unwrap();
        let err = cases.upsert(&batch).unwrap_err().to_string();
        assert!(err.contains("image.f32"), "{err}");
        let err = cases.delete(&[id(row)]).unwrap_err().to_string();
        assert!(err.contains("image.f32"), "{err}");
        assert!(
            !cases.contains(&id(90_000)).unwrap(),
            "half a batch was applied"
        );
        assert_eq!(cases.len(), ROWS);
    }
    // Nothing was logged either: a new writer replays no part of the batch.
    let store = Store::open(&root).unwrap();
    let cases = store.collection("cases").unwrap();
    assert!(!cases.contains(&id(90_000)).unwrap());
    assert_eq!(cases.len(), ROWS);
    assert!(cases
        .verify()
        .unwrap_err()
        .to_string()
        .contains("image.f32"));
}
