use super::*;

/// Builds an `.npy` file from a header dict and raw data, as numpy would lay it out.
fn npy_bytes(version: u8, dict: &str, data: &[u8]) -> Vec<u8> {
    let prefix = if version == 1 { 10 } else { 12 };
    let total = (prefix + dict.len() + 1).div_ceil(64) * 64;
    let mut header = dict.as_bytes().to_vec();
    header.resize(total - prefix - 1, b' ');
    header.push(b'\n');
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&[version, 0]);
    if version == 1 {
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(data);
    bytes
}

fn dict(descr: &str, fortran: bool, shape: &str) -> String {
    let order = if fortran { "True" } else { "False" };
    format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}")
}

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn read_all(reader: &mut NpyReader) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    while reader.read_rows(2, &mut out)? > 0 {}
    Ok(out)
}

fn open_err(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "bad.npy", bytes);
    let err = NpyReader::open(&path).unwrap_err().to_string();
    assert!(err.contains("bad.npy"), "{err}");
    assert!(!err.contains('\n'), "{err}");
    err
}

#[test]
fn round_trips_f32() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.npy");
    let rows: Vec<Vec<f32>> = (0..5).map(|i| vec![i as f32, -0.5, f32::MAX]).collect();
    write_npy_f32(&path, 3, rows.iter().map(Vec::as_slice)).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let data_start = bytes.len() - 5 * 3 * 4;
    assert_eq!(data_start % 64, 0);
    assert!(String::from_utf8_lossy(&bytes[..data_start]).contains("'shape': (5, 3), "));
    let mut reader = NpyReader::open(&path).unwrap();
    assert_eq!((reader.rows(), reader.dim()), (5, 3));
    assert_eq!(read_all(&mut reader).unwrap(), rows.concat());
    assert_eq!(reader.read_rows(10, &mut Vec::new()).unwrap(), 0);
}

#[test]
fn writes_empty_file_and_rejects_wrong_row_length() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.npy");
    write_npy_f32(&path, 4, std::iter::empty()).unwrap();
    let reader = NpyReader::open(&path).unwrap();
    assert_eq!((reader.rows(), reader.dim()), (0, 4));
    let rows = [vec![1.0f32; 4], vec![1.0f32; 3]];
    let err = write_npy_f32(&path, 4, rows.iter().map(Vec::as_slice)).unwrap_err();
    assert!(err.to_string().contains("row 2"), "{err}");
    assert!(!path.exists());
}

#[test]
fn reads_f64_and_big_endian() {
    let dir = tempfile::tempdir().unwrap();
    let values = [1.5f64, -2.25, 1e300, 0.1];
    let le: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let path = write(
        &dir,
        "le.npy",
        &npy_bytes(1, &dict("<f8", false, "(2, 2)"), &le),
    );
    let got = read_all(&mut NpyReader::open(&path).unwrap()).unwrap();
    assert_eq!(got, vec![1.5, -2.25, f32::INFINITY, 0.1f64 as f32]);

    let be: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    let path = write(
        &dir,
        "be8.npy",
        &npy_bytes(2, &dict(">f8", false, "(2, 2)"), &be),
    );
    assert_eq!(read_all(&mut NpyReader::open(&path).unwrap()).unwrap(), got);

    let be4: Vec<u8> = [1.0f32, 2.0, 3.0]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let path = write(
        &dir,
        "be4.npy",
        &npy_bytes(3, &dict(">f4", false, "(1, 3)"), &be4),
    );
    assert_eq!(
        read_all(&mut NpyReader::open(&path).unwrap()).unwrap(),
        vec![1.0, 2.0, 3.0]
    );
}

#[test]
fn reads_one_dimensional_array_as_one_row() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let path = write(
        &dir,
        "one.npy",
        &npy_bytes(1, &dict("<f4", false, "(2,)"), &data),
    );
    let mut reader = NpyReader::open(&path).unwrap();
    assert_eq!((reader.rows(), reader.dim()), (1, 2));
    assert_eq!(read_all(&mut reader).unwrap(), vec![1.0, 2.0]);
}

#[test]
fn streams_in_bounded_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.npy");
    let rows: Vec<Vec<f32>> = (0..3)
        .map(|r| (0..40_000).map(|c| (r * c) as f32).collect())
        .collect();
    write_npy_f32(&path, 40_000, rows.iter().map(Vec::as_slice)).unwrap();
    let mut reader = NpyReader::open(&path).unwrap();
    let mut out = Vec::new();
    assert_eq!(reader.read_rows(1, &mut out).unwrap(), 1);
    assert_eq!(out, rows[0]);
    assert_eq!(reader.read_rows(5, &mut out).unwrap(), 2);
    assert_eq!(out, rows.concat());
}

#[test]
fn rejects_truncated_file() {
    let data = vec![0u8; 4 * 5];
    let err = open_err(&npy_bytes(1, &dict("<f4", false, "(2, 3)"), &data));
    assert!(err.contains("truncated: header says 2 rows of 3"), "{err}");
    assert!(err.contains("holds only 20 bytes"), "{err}");
}

#[test]
fn rejects_overflowing_shape() {
    let err = open_err(&npy_bytes(
        1,
        &dict("<f4", false, "(4611686018427387904, 4611686018427387904)"),
        &[],
    ));
    assert!(
        err.contains("truncated: header says 4611686018427387904 rows"),
        "{err}"
    );
    let err = open_err(&npy_bytes(1, &dict("<f4", false, "(-1, 3)"), &[]));
    assert!(err.contains("negative"), "{err}");
    let err = open_err(&npy_bytes(
        1,
        &dict("<f4", false, "(10000000000000000000000, 3)"),
        &[],
    ));
    assert!(err.contains("too large"), "{err}");
}

#[test]
fn rejects_fortran_order() {
    let err = open_err(&npy_bytes(1, &dict("<f4", true, "(2, 2)"), &[0; 16]));
    assert!(err.contains("np.ascontiguousarray"), "{err}");
}

#[test]
fn rejects_bad_magic_and_versions() {
    let mut bytes = npy_bytes(1, &dict("<f4", false, "(1, 1)"), &[0; 4]);
    bytes[1] = b'X';
    assert!(open_err(&bytes).contains("bad magic"));
    bytes[1] = b'N';
    bytes[6] = 4;
    assert!(open_err(&bytes).contains("version 4.0"));
    assert!(open_err(b"").contains("not a .npy file"));
}

#[test]
fn rejects_other_shapes_dtypes_and_headers() {
    let err = open_err(&npy_bytes(1, &dict("<f4", false, "(2, 2, 2)"), &[0; 32]));
    assert!(err.contains("3 dimensions"), "{err}");
    let err = open_err(&npy_bytes(1, &dict("<i8", false, "(2, 2)"), &[0; 32]));
    assert!(err.contains("dtype '<i8' is not supported"), "{err}");
    let structured = "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }";
    let err = open_err(&npy_bytes(1, structured, &[0; 4]));
    assert!(err.contains("dtype [('a', '<f4')]"), "{err}");
    assert!(open_err(&npy_bytes(1, &dict("<f4", false, "()"), &[0; 4])).contains("0-d"));
    assert!(open_err(&npy_bytes(1, &dict("<f4", false, "(3, 0)"), &[])).contains("dimension 0"));
    assert!(
        open_err(&npy_bytes(1, "{'descr': '<f4', 'shape': (1,)}", &[0; 4]))
            .contains("no 'fortran_order' key")
    );
    assert!(open_err(&npy_bytes(1, "{'descr': '<f4'", &[])).contains("malformed"));
    let deep = format!("{}{}", "(".repeat(100_000), ")".repeat(100_000));
    assert!(open_err(&npy_bytes(2, &deep, &[])).contains("nested too deeply"));
}

#[test]
fn rejects_huge_header() {
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&[2, 0]);
    bytes.extend_from_slice(&(2u32 << 20).to_le_bytes());
    assert!(open_err(&bytes).contains("limit is 1048576"));
}

#[test]
fn accepts_python2_headers_and_native_order() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_ne_bytes()).collect();
    let header = "{'descr': 'f4', \"fortran_order\": False, 'shape': (1L, 2L)}";
    let path = write(&dir, "py2.npy", &npy_bytes(1, header, &data));
    assert_eq!(
        read_all(&mut NpyReader::open(&path).unwrap()).unwrap(),
        vec![1.0, 2.0]
    );
}

/// Tiny xorshift generator, so the fuzz test needs no dependency and is reproducible.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mutate(rng: &mut XorShift, valid: &[u8]) -> Vec<u8> {
    let mut bytes = valid.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(4) {
            0 => bytes.truncate(rng.below(valid.len() + 1)),
            1 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] = rng.next() as u8;
            }
            2 if !bytes.is_empty() => {
                // Digits and punctuation stress the header parser more than noise does.
                let i = rng.below(bytes.len());
                let alphabet = b"0123456789(),'-: {}[]TrueFals<>f48";
                bytes[i] = alphabet[rng.below(alphabet.len())];
            }
            _ => {
                let i = rng.below(bytes.len() + 1);
                bytes.insert(i, rng.next() as u8);
            }
        }
    }
    bytes
}

#[test]
fn never_panics_on_random_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.npy");
    let rows: Vec<Vec<f32>> = (0..3).map(|i| vec![i as f32; 5]).collect();
    write_npy_f32(&path, 5, rows.iter().map(Vec::as_slice)).unwrap();
    let valid = std::fs::read(&path).unwrap();
    let f64_valid = npy_bytes(2, &dict(">f8", false, "(2, 3)"), &[7; 48]);
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for i in 0..4_000 {
        let bytes = match i % 4 {
            0 => (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
            1 => [
                &valid[..8],
                &(0..rng.below(200))
                    .map(|_| rng.next() as u8)
                    .collect::<Vec<_>>(),
            ]
            .concat(),
            2 => mutate(&mut rng, &valid),
            _ => mutate(&mut rng, &f64_valid),
        };
        // A fresh name each time: rewriting one file makes ext4 flush on every truncate.
        let path = dir.path().join(format!("fuzz{i}.npy"));
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(mut reader) = NpyReader::open(&path) {
            let _ = read_all(&mut reader);
        }
    }
}
