//! Small named files a collection keeps beside its data: trained classifier heads
//! (`heads/NAME.head`) and the records of the models that produced each vector field
//! (`models/FIELD.model`). Their bodies are opaque to the store (the query and ingest crates
//! define them); the store makes them versioned, checksummed, owned by the collection and
//! replaced atomically, like every other file.

use super::Collection;
use crate::error::{Result, StoreError};
use crate::fileio::{self, FileKind};
use std::path::{Path, PathBuf};

/// The kinds of artifact and where each lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Artifact {
    Head,
    ModelRecord,
}

impl Artifact {
    pub(crate) const ALL: [Artifact; 2] = [Artifact::Head, Artifact::ModelRecord];

    pub(crate) fn dir(self) -> &'static str {
        match self {
            Artifact::Head => "heads",
            Artifact::ModelRecord => "models",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Artifact::Head => ".head",
            Artifact::ModelRecord => ".model",
        }
    }

    fn file_kind(self) -> FileKind {
        match self {
            Artifact::Head => FileKind::Head,
            Artifact::ModelRecord => FileKind::ModelRecord,
        }
    }
}

impl Collection {
    fn artifact_path(&self, kind: Artifact, name: &str) -> Result<PathBuf> {
        crate::schema::validate_name(name)?;
        Ok(self
            .dir
            .join(kind.dir())
            .join(format!("{name}{}", kind.extension())))
    }

    fn save_artifact(&self, kind: Artifact, name: &str, body: &[u8]) -> Result<()> {
        if self.wal.is_none() {
            return Err(StoreError::ReadOnly {
                path: self.dir.clone(),
            });
        }
        let path = self.artifact_path(kind, name)?;
        fileio::create_private_dir(&self.dir.join(kind.dir()))?;
        let uid = self.read().manifest.uid;
        let header = fileio::Header::new(kind.file_kind(), uid, body, [0; 3]);
        fileio::replace_atomically(&path, &header, body)
    }

    /// The body, or `None` when there is no such artifact.
    fn load_artifact(&self, kind: Artifact, name: &str) -> Result<Option<Vec<u8>>> {
        let path = self.artifact_path(kind, name)?;
        if !path.exists() {
            return Ok(None);
        }
        let uid = self.read().manifest.uid;
        Ok(Some(
            fileio::read_checked(&path, kind.file_kind(), Some(uid))?.1,
        ))
    }

    fn list_artifacts(&self, kind: Artifact) -> Vec<String> {
        list(&self.dir, kind)
    }

    /// Checks every artifact's checksum and owner; returns how many files were checked.
    pub(crate) fn verify_artifacts(&self) -> Result<usize> {
        verify_all(&self.dir, self.read().manifest.uid)
    }

    /// Saves a named artifact of the collection (a trained classifier head) as a versioned,
    /// checksummed file, replaced atomically. `body` is opaque to the store.
    pub fn save_head(&self, name: &str, body: &[u8]) -> Result<()> {
        self.save_artifact(Artifact::Head, name, body)
    }

    /// Loads a head saved with [`save_head`](Self::save_head), checking its checksum and owner.
    pub fn load_head(&self, name: &str) -> Result<Vec<u8>> {
        self.load_artifact(Artifact::Head, name)?.ok_or_else(|| {
            StoreError::InvalidQuery(format!("no head named `{name}` in this collection"))
        })
    }

    /// Names of the saved heads, sorted.
    pub fn list_heads(&self) -> Result<Vec<String>> {
        Ok(self.list_artifacts(Artifact::Head))
    }

    /// Records which model produced the vectors of `field` (so queries can be encoded the same
    /// way later). `body` is opaque to the store; the ingest crate defines it.
    ///
    /// ```
    /// # use medvec_store::*;
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = Store::create(dir.path().join("s")).unwrap();
    /// # let schema = Schema { vectors: vec![VectorField::parse("image:2:cosine").unwrap()], payload: vec![] };
    /// let cases = store.create_collection("cases", schema).unwrap();
    /// assert_eq!(cases.load_model_record("image").unwrap(), None);
    /// cases.save_model_record("image", b"{\"model\": \"vit\"}").unwrap();
    /// assert_eq!(cases.load_model_record("image").unwrap().unwrap(), b"{\"model\": \"vit\"}");
    /// assert!(cases.save_model_record("nope", b"x").is_err()); // not a vector field
    /// ```
    pub fn save_model_record(&self, field: &str, body: &[u8]) -> Result<()> {
        self.schema().vector_field(field)?;
        self.save_artifact(Artifact::ModelRecord, field, body)
    }

    /// The body saved by [`save_model_record`](Self::save_model_record) for `field`, if any.
    pub fn load_model_record(&self, field: &str) -> Result<Option<Vec<u8>>> {
        self.schema().vector_field(field)?;
        self.load_artifact(Artifact::ModelRecord, field)
    }
}

/// Names of the artifacts of `kind` in the collection directory `dir`, sorted.
fn list(dir: &Path, kind: Artifact) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir.join(kind.dir())) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(kind.extension())
                .map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

/// Checks the checksum and owner of every artifact file in the collection directory `dir`
/// (also used by repair, which has no open collection); returns how many were checked.
pub(crate) fn verify_all(dir: &Path, uid: u64) -> Result<usize> {
    let mut checked = 0;
    for kind in Artifact::ALL {
        for name in list(dir, kind) {
            let path = dir
                .join(kind.dir())
                .join(format!("{name}{}", kind.extension()));
            fileio::read_checked(&path, kind.file_kind(), Some(uid))?;
            checked += 1;
        }
    }
    Ok(checked)
}
