//! NumPy `.npy` files (format versions 1.0, 2.0 and 3.0) of float32 or float64 vectors.
//!
//! Reading streams rows through a buffer, so memory stays bounded whatever the file size.
//! See <https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html>.

use crate::error::{ImportError, Result};
use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Longer headers are refused: numpy writes a few hundred bytes, and a bogus length must not
/// make us allocate gigabytes.
pub const MAX_HEADER_BYTES: usize = 1 << 20;

/// Values converted per read, so the scratch buffer stays small for any row width.
const CHUNK_VALUES: usize = 16 * 1024;

/// Nesting allowed in the header literal; deeper input would only exhaust the stack.
const MAX_DEPTH: usize = 32;

/// The element types medvec reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Element {
    F32Le,
    F32Be,
    F64Le,
    F64Be,
}

impl Element {
    fn width(self) -> usize {
        match self {
            Element::F32Le | Element::F32Be => 4,
            Element::F64Le | Element::F64Be => 8,
        }
    }

    /// Parses a numpy dtype string such as `<f4`. `=`, `|` and no prefix mean this machine's
    /// byte order.
    fn parse(descr: &str) -> Option<Element> {
        let (big, code) = match descr.as_bytes().first() {
            Some(b'<') => (false, &descr[1..]),
            Some(b'>') => (true, &descr[1..]),
            Some(b'=' | b'|') => (cfg!(target_endian = "big"), &descr[1..]),
            _ => (cfg!(target_endian = "big"), descr),
        };
        match (code, big) {
            ("f4", false) => Some(Element::F32Le),
            ("f4", true) => Some(Element::F32Be),
            ("f8", false) => Some(Element::F64Le),
            ("f8", true) => Some(Element::F64Be),
            _ => None,
        }
    }

    /// Appends `bytes` decoded as elements of this type, converted to f32.
    fn decode(self, bytes: &[u8], out: &mut Vec<f32>) {
        match self {
            Element::F32Le => extend(out, bytes, f32::from_le_bytes),
            Element::F32Be => extend(out, bytes, f32::from_be_bytes),
            Element::F64Le => extend(out, bytes, |b| f64::from_le_bytes(b) as f32),
            Element::F64Be => extend(out, bytes, |b| f64::from_be_bytes(b) as f32),
        }
    }
}

fn extend<const N: usize>(out: &mut Vec<f32>, bytes: &[u8], convert: impl Fn([u8; N]) -> f32) {
    out.extend(bytes.as_chunks::<N>().0.iter().map(|b| convert(*b)));
}

/// A streaming reader of a 2-D `(rows, dim)` or 1-D `(dim,)` float `.npy` file.
#[derive(Debug)]
pub struct NpyReader {
    path: PathBuf,
    reader: BufReader<File>,
    element: Element,
    rows: usize,
    dim: usize,
    rows_read: usize,
    scratch: Vec<u8>,
}

impl NpyReader {
    /// Opens `path` and checks its header, dtype, layout and size.
    pub fn open(path: impl AsRef<Path>) -> Result<NpyReader> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| ImportError::io(path, e))?;
        let file_len = file.metadata().map_err(|e| ImportError::io(path, e))?.len();
        let mut reader = BufReader::with_capacity(64 * 1024, file);
        let (text, data_offset) = read_header_text(path, &mut reader)?;
        let header = parse_header(&text).map_err(|why| ImportError::file(path, why))?;
        let element = check_layout(path, &header)?;
        let (rows, dim) = rows_and_dim(path, &header.shape)?;
        let available = file_len.saturating_sub(data_offset);
        let needed = rows
            .checked_mul(dim)
            .and_then(|n| n.checked_mul(element.width() as u64));
        if needed.is_none_or(|n| n > available) {
            return Err(truncated(path, rows, dim, available));
        }
        // Both fit in a u64 byte count of a real file, so this fails only on 32-bit machines.
        let too_large = || ImportError::file(path, "array is too large for this machine");
        let rows = usize::try_from(rows).map_err(|_| too_large())?;
        let dim = usize::try_from(dim).map_err(|_| too_large())?;
        Ok(NpyReader {
            path: path.to_path_buf(),
            reader,
            element,
            rows,
            dim,
            rows_read: 0,
            scratch: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of rows (vectors) in the file; a 1-D array is one row.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Length of each row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Appends up to `max_rows` rows to `out` as f32 and returns how many; 0 means the end.
    /// float64 values beyond f32's range become infinite; callers validate finiteness.
    /// On error `out` is left as it was.
    pub fn read_rows(&mut self, max_rows: usize, out: &mut Vec<f32>) -> Result<usize> {
        let rows = (self.rows - self.rows_read).min(max_rows);
        let Some(values) = rows.checked_mul(self.dim) else {
            return Err(ImportError::file(
                &self.path,
                "requested rows do not fit in memory",
            ));
        };
        let start = out.len();
        if let Err(e) = self.read_values(values, out) {
            out.truncate(start);
            return Err(e);
        }
        self.rows_read += rows;
        Ok(rows)
    }

    fn read_values(&mut self, mut values: usize, out: &mut Vec<f32>) -> Result<()> {
        let width = self.element.width();
        out.reserve(values.min(CHUNK_VALUES * 64));
        while values > 0 {
            let chunk = values.min(CHUNK_VALUES);
            self.scratch.resize(chunk * width, 0);
            if let Err(e) = self.reader.read_exact(&mut self.scratch) {
                return Err(match e.kind() {
                    // The file shrank after `open` checked its length.
                    ErrorKind::UnexpectedEof => ImportError::file(
                        &self.path,
                        format!("truncated: file ended inside row {}", self.rows_read + 1),
                    ),
                    _ => ImportError::io(&self.path, e),
                });
            }
            self.element.decode(&self.scratch, out);
            values -= chunk;
        }
        Ok(())
    }
}

fn truncated(path: &Path, rows: u64, dim: u64, bytes: u64) -> ImportError {
    ImportError::Truncated {
        path: path.to_path_buf(),
        rows,
        dim,
        bytes,
    }
}

/// Reads the magic, version and header; returns the header text and the offset of the data.
fn read_header_text(path: &Path, reader: &mut impl Read) -> Result<(String, u64)> {
    let not_npy = |why: &str| ImportError::file(path, format!("not a .npy file: {why}"));
    let mut preamble = [0u8; 8];
    read_exact_or(path, reader, &mut preamble, || {
        not_npy("shorter than the 8-byte preamble")
    })?;
    if &preamble[..6] != MAGIC {
        return Err(not_npy("bad magic (expected \\x93NUMPY)"));
    }
    let (major, minor) = (preamble[6], preamble[7]);
    let (len, prefix) = match major {
        1 => {
            let mut len = [0u8; 2];
            read_exact_or(path, reader, &mut len, || not_npy("preamble truncated"))?;
            (u16::from_le_bytes(len) as u64, 10u64)
        }
        2 | 3 => {
            let mut len = [0u8; 4];
            read_exact_or(path, reader, &mut len, || not_npy("preamble truncated"))?;
            (u32::from_le_bytes(len) as u64, 12u64)
        }
        _ => {
            let why = format!(
                "unsupported .npy format version {major}.{minor} (1.0, 2.0 and 3.0 are read)"
            );
            return Err(ImportError::file(path, why));
        }
    };
    if len > MAX_HEADER_BYTES as u64 {
        let why = format!("header is {len} bytes long; the limit is {MAX_HEADER_BYTES}");
        return Err(ImportError::file(path, why));
    }
    let mut bytes = vec![0u8; len as usize];
    read_exact_or(path, reader, &mut bytes, || {
        ImportError::file(
            path,
            format!("header truncated (it should be {len} bytes long)"),
        )
    })?;
    Ok((decode_header(path, major, bytes)?, prefix + len))
}

fn read_exact_or(
    path: &Path,
    reader: &mut impl Read,
    buf: &mut [u8],
    on_eof: impl FnOnce() -> ImportError,
) -> Result<()> {
    reader.read_exact(buf).map_err(|e| match e.kind() {
        ErrorKind::UnexpectedEof => on_eof(),
        _ => ImportError::io(path, e),
    })
}

/// Versions 1 and 2 store the header as latin-1, version 3 as UTF-8.
fn decode_header(path: &Path, major: u8, bytes: Vec<u8>) -> Result<String> {
    if major < 3 {
        return Ok(bytes.iter().map(|&b| b as char).collect());
    }
    String::from_utf8(bytes).map_err(|_| ImportError::file(path, "header is not valid UTF-8"))
}

/// The three keys of an `.npy` header.
#[derive(Debug)]
struct Header {
    descr: Literal,
    fortran_order: Literal,
    shape: Literal,
}

fn parse_header(text: &str) -> std::result::Result<Header, String> {
    let malformed = |why: String| format!("malformed .npy header: {why}");
    let mut parser = Parser { text, pos: 0 };
    let value = parser.value(0).map_err(malformed)?;
    parser.skip_space();
    if parser.pos != text.len() {
        return Err(malformed(format!("unexpected text at byte {}", parser.pos)));
    }
    let Literal::Dict(items) = value else {
        return Err(malformed("not a dictionary".into()));
    };
    let take = |key: &str| {
        let found = items
            .iter()
            .find(|(k, _)| matches!(k, Literal::Str(s) if s == key));
        found
            .map(|(_, v)| v.clone())
            .ok_or_else(|| malformed(format!("no '{key}' key")))
    };
    Ok(Header {
        descr: take("descr")?,
        fortran_order: take("fortran_order")?,
        shape: take("shape")?,
    })
}

/// Checks dtype and memory order, returning the element type.
fn check_layout(path: &Path, header: &Header) -> Result<Element> {
    let element = match &header.descr {
        Literal::Str(s) => Element::parse(s),
        _ => None,
    };
    let Some(element) = element else {
        let why = format!(
            "dtype {} is not supported; save float32 or float64 (arr.astype(np.float32))",
            header.descr
        );
        return Err(ImportError::file(path, why));
    };
    match header.fortran_order {
        Literal::Bool(false) => Ok(element),
        Literal::Bool(true) => Err(ImportError::file(
            path,
            "array is stored in Fortran (column-major) order; convert with np.ascontiguousarray before np.save",
        )),
        ref other => Err(ImportError::file(
            path,
            format!("malformed .npy header: fortran_order is {other}, not True or False"),
        )),
    }
}

/// Turns the header's shape into `(rows, dim)`; a 1-D array is a single row.
fn rows_and_dim(path: &Path, shape: &Literal) -> Result<(u64, u64)> {
    let bad = |why: String| ImportError::file(path, why);
    let (Literal::Tuple(items) | Literal::List(items)) = shape else {
        return Err(bad(format!(
            "malformed .npy header: shape {shape} is not a tuple"
        )));
    };
    let mut dims = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Literal::Int(n) if *n < 0 => {
                return Err(bad(format!("shape {shape} has a negative dimension")))
            }
            Literal::Int(n) => dims
                .push(u64::try_from(*n).map_err(|_| bad(format!("shape {shape} is too large")))?),
            _ => {
                return Err(bad(format!(
                    "malformed .npy header: shape {shape} holds a non-integer"
                )))
            }
        }
    }
    let (rows, dim) = match dims.as_slice() {
        [dim] => (1, *dim),
        [rows, dim] => (*rows, *dim),
        [] => {
            return Err(bad(
                "array is a 0-d scalar; expected shape (rows, dim) or (dim,)".into(),
            ))
        }
        _ => {
            let why = format!(
                "shape {shape} has {} dimensions; expected (rows, dim) or (dim,)",
                dims.len()
            );
            return Err(bad(why));
        }
    };
    if dim == 0 {
        return Err(bad(format!("shape {shape} holds vectors of dimension 0")));
    }
    Ok((rows, dim))
}

/// The subset of Python literals that appear in `.npy` headers.
#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    Int(i128),
    Bool(bool),
    None,
    Tuple(Vec<Literal>),
    List(Vec<Literal>),
    Dict(Vec<(Literal, Literal)>),
}

impl std::fmt::Display for Literal {
    /// Python-like repr, for error messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let join = |f: &mut std::fmt::Formatter<'_>, items: &[Literal]| {
            for (i, item) in items.iter().enumerate() {
                write!(f, "{}{item}", if i == 0 { "" } else { ", " })?;
            }
            Ok(())
        };
        match self {
            Literal::Str(s) => write!(f, "'{s}'"),
            Literal::Int(n) => write!(f, "{n}"),
            Literal::Bool(b) => f.write_str(if *b { "True" } else { "False" }),
            Literal::None => f.write_str("None"),
            Literal::Tuple(items) => {
                f.write_str("(")?;
                join(f, items)?;
                f.write_str(if items.len() == 1 { ",)" } else { ")" })
            }
            Literal::List(items) => {
                f.write_str("[")?;
                join(f, items)?;
                f.write_str("]")
            }
            Literal::Dict(items) => {
                f.write_str("{")?;
                for (i, (k, v)) in items.iter().enumerate() {
                    write!(f, "{}{k}: {v}", if i == 0 { "" } else { ", " })?;
                }
                f.write_str("}")
            }
        }
    }
}

/// A recursive-descent parser of Python literals over a header string.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

type ParseResult<T> = std::result::Result<T, String>;

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn value(&mut self, depth: usize) -> ParseResult<Literal> {
        if depth > MAX_DEPTH {
            return Err("nested too deeply".into());
        }
        self.skip_space();
        match self.peek() {
            Some('{') => self.dict(depth),
            Some('(') => self.sequence(depth, ')').map(Literal::Tuple),
            Some('[') => self.sequence(depth, ']').map(Literal::List),
            Some(q @ ('\'' | '"')) => self.string(q),
            Some(c) if c == '-' || c.is_ascii_digit() => self.int(),
            Some(c) if c.is_ascii_alphabetic() => self.word(),
            Some(c) => Err(format!(
                "unexpected `{}` at byte {}",
                c.escape_default(),
                self.pos
            )),
            None => Err("unexpected end".into()),
        }
    }

    /// Parses comma-separated items up to `close`, allowing a trailing comma.
    fn items<T>(
        &mut self,
        close: char,
        mut item: impl FnMut(&mut Self) -> ParseResult<T>,
    ) -> ParseResult<Vec<T>> {
        self.bump();
        let mut items = Vec::new();
        loop {
            self.skip_space();
            if self.peek() == Some(close) {
                self.bump();
                return Ok(items);
            }
            items.push(item(self)?);
            self.skip_space();
            match self.bump() {
                Some(',') => {}
                Some(c) if c == close => return Ok(items),
                _ => return Err(format!("expected `,` or `{close}` at byte {}", self.pos)),
            }
        }
    }

    fn sequence(&mut self, depth: usize, close: char) -> ParseResult<Vec<Literal>> {
        self.items(close, |p| p.value(depth + 1))
    }

    fn dict(&mut self, depth: usize) -> ParseResult<Literal> {
        let items = self.items('}', |p| {
            let key = p.value(depth + 1)?;
            p.skip_space();
            if p.bump() != Some(':') {
                return Err(format!("expected `:` at byte {}", p.pos));
            }
            Ok((key, p.value(depth + 1)?))
        })?;
        Ok(Literal::Dict(items))
    }

    fn string(&mut self, quote: char) -> ParseResult<Literal> {
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err("unterminated string".into()),
                Some('\\') => out.push(self.bump().ok_or("unterminated string")?),
                Some(c) if c == quote => return Ok(Literal::Str(out)),
                Some(c) => out.push(c),
            }
        }
    }

    /// An integer, with Python 2's `L` suffix accepted because old files carry it.
    fn int(&mut self) -> ParseResult<Literal> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.bump();
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        let digits = &self.text[start..self.pos];
        if matches!(self.peek(), Some('L' | 'l')) {
            self.bump();
        }
        digits
            .parse::<i128>()
            .map(Literal::Int)
            .map_err(|_| format!("`{digits}` is not an integer that fits"))
    }

    fn word(&mut self) -> ParseResult<Literal> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.bump();
        }
        match &self.text[start..self.pos] {
            "True" => Ok(Literal::Bool(true)),
            "False" => Ok(Literal::Bool(false)),
            "None" => Ok(Literal::None),
            other => Err(format!("unexpected `{other}` at byte {start}")),
        }
    }
}

/// Writes `rows` as a version 1.0, little-endian float32, C-order `.npy` file that `np.load`
/// reads. Rows are streamed; the shape is patched in afterwards. A partly written file is removed.
pub fn write_npy_f32<'a>(
    path: impl AsRef<Path>,
    dim: usize,
    rows: impl IntoIterator<Item = &'a [f32]>,
) -> Result<()> {
    let path = path.as_ref();
    if dim == 0 {
        return Err(ImportError::file(
            path,
            "cannot write vectors of dimension 0",
        ));
    }
    let result = write_rows(path, dim, rows);
    if result.is_err() {
        // Best effort: the write error is what the caller needs to see.
        let _ = std::fs::remove_file(path);
    }
    result
}

fn write_rows<'a>(
    path: &Path,
    dim: usize,
    rows: impl IntoIterator<Item = &'a [f32]>,
) -> Result<()> {
    let io = |e| ImportError::io(path, e);
    let mut out =
        BufWriter::with_capacity(256 * 1024, crate::output::create_private(path).map_err(io)?);
    // Sized for the widest row count, so patching the real count never moves the data.
    let block = header_block(u64::MAX, dim, 0).len();
    out.write_all(&header_block(0, dim, block)).map_err(io)?;
    let mut count = 0u64;
    let mut bytes = Vec::with_capacity(dim * 4);
    for row in rows {
        if row.len() != dim {
            let why = format!("vector has {} values, expected {dim}", row.len());
            return Err(ImportError::row(path, count + 1, why));
        }
        bytes.clear();
        bytes.extend(row.iter().flat_map(|v| v.to_le_bytes()));
        out.write_all(&bytes).map_err(io)?;
        count += 1;
    }
    out.seek(SeekFrom::Start(0)).map_err(io)?;
    out.write_all(&header_block(count, dim, block))
        .map_err(io)?;
    out.flush().map_err(io)
}

/// Preamble plus header dict, padded with spaces and a newline to `min_len` bytes and to a
/// multiple of 64, as numpy pads so the data is aligned.
fn header_block(rows: u64, dim: usize, min_len: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dim}), }}");
    let unpadded = 10 + dict.len() + 1;
    let total = unpadded.max(min_len).div_ceil(64) * 64;
    let mut block = Vec::with_capacity(total);
    block.extend_from_slice(MAGIC);
    block.extend_from_slice(&[1, 0]);
    // At most a few hundred bytes, so it fits the u16 of version 1.0.
    block.extend_from_slice(&((total - 10) as u16).to_le_bytes());
    block.extend_from_slice(dict.as_bytes());
    block.resize(total - 1, b' ');
    block.push(b'\n');
    block
}

#[cfg(test)]
mod tests;
