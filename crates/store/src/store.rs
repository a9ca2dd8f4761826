//! A store: a directory of independent collections, with one writer at a time.

use crate::collection::{Collection, CollectionOptions, CollectionStats, VerifyReport};
use crate::error::{corrupt, IoContext, Result, StoreError};
use crate::fileio::{self, FileKind, Header};
use crate::lock::WriteLock;
use crate::schema::{validate_name, Schema};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const MARKER: &str = "medvec.store";
const COLLECTIONS: &str = "collections";
const PSEUDONYM_KEY: &str = "pseudonym.key";
/// Bytes of the pseudonym key: HMAC-SHA-256's block-size-independent recommended key length.
pub const PSEUDONYM_KEY_LEN: usize = 32;

/// An open store. A writer holds the store's lock; readers take none and see the last commit.
///
/// ```
/// use medvec_store::{Store, Schema, VectorField, PayloadField, Record, Value, SearchParams, Filter};
/// let dir = tempfile::tempdir().unwrap();
/// let store = Store::create(dir.path().join("clinic")).unwrap();
/// let schema = Schema {
///     vectors: vec![VectorField::parse("image:3:cosine").unwrap()],
///     payload: vec![PayloadField::parse("dx:string").unwrap(), PayloadField::parse("age:int").unwrap()],
/// };
/// let cases = store.create_collection("ham10000", schema).unwrap();
/// cases.upsert(&[
///     Record::new("a").with_vector("image", vec![1.0, 0.0, 0.0]).with_value("dx", Value::String("mel".into())).with_value("age", Value::Int(70)),
///     Record::new("b").with_vector("image", vec![0.0, 1.0, 0.0]).with_value("dx", Value::String("nv".into())).with_value("age", Value::Int(30)),
/// ]).unwrap();
/// let mut params = SearchParams::top(1);
/// params.filter = Some(Filter::parse("age >= 50").unwrap());
/// let hits = cases.search("image", &[0.1, 1.0, 0.0], &params).unwrap();
/// assert_eq!(hits[0].id, "a");
/// cases.delete(&["a".to_string()]).unwrap();
/// assert!(cases.get("a").unwrap().is_none());
/// cases.compact().unwrap();
/// assert_eq!(store.list_collections().unwrap(), vec!["ham10000"]);
/// ```
pub struct Store {
    root: PathBuf,
    lock: Option<WriteLock>,
    options: CollectionOptions,
    open: Mutex<BTreeMap<String, Arc<Collection>>>,
}

impl Store {
    /// Creates a new, empty store at `path` (the directory may exist but must be empty) and opens
    /// it for writing.
    pub fn create(path: impl AsRef<Path>) -> Result<Store> {
        Self::create_with(path, CollectionOptions::default())
    }

    /// [`create`](Self::create) with `options` for its collections.
    pub fn create_with(path: impl AsRef<Path>, options: CollectionOptions) -> Result<Store> {
        let root = path.as_ref().to_path_buf();
        if root.join(MARKER).exists() {
            return Err(StoreError::InvalidSchema(format!(
                "{}: a store already exists here",
                root.display()
            )));
        }
        fileio::create_private_dir(&root.join(COLLECTIONS))?;
        let body = format!("{{\"format\": {}}}\n", fileio::FORMAT_VERSION).into_bytes();
        let header = Header::new(FileKind::StoreMarker, fileio::new_uid(), &body, [0; 3]);
        fileio::replace_atomically(&root.join(MARKER), &header, &body)?;
        Self::open_with(root, options)
    }

    /// Opens an existing store for writing, taking its lock.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Self::open_with(path, CollectionOptions::default())
    }

    /// Opens for writing with non-default flush and segment sizes.
    pub fn open_with(path: impl AsRef<Path>, options: CollectionOptions) -> Result<Store> {
        let root = path.as_ref().to_path_buf();
        check_marker(&root)?;
        let lock = WriteLock::acquire(&root)?;
        Ok(Store {
            root,
            lock: Some(lock),
            options,
            open: Mutex::new(BTreeMap::new()),
        })
    }

    /// Opens the store if it exists, or creates it.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Store> {
        Self::open_or_create_with(path, CollectionOptions::default())
    }

    /// [`open_or_create`](Self::open_or_create) with `options` for its collections, e.g.
    /// [`CollectionOptions::bulk`] for a load.
    pub fn open_or_create_with(
        path: impl AsRef<Path>,
        options: CollectionOptions,
    ) -> Result<Store> {
        if path.as_ref().join(MARKER).exists() {
            Self::open_with(path, options)
        } else {
            Self::create_with(path, options)
        }
    }

    /// Opens for reading only: no lock, works while another process writes, and on read-only media.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Store> {
        let root = path.as_ref().to_path_buf();
        check_marker(&root)?;
        Ok(Store {
            root,
            lock: None,
            options: CollectionOptions::default(),
            open: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn is_writer(&self) -> bool {
        self.lock.is_some()
    }

    fn collection_dir(&self, name: &str) -> PathBuf {
        self.root.join(COLLECTIONS).join(name)
    }

    fn require_writer(&self) -> Result<()> {
        if self.is_writer() {
            Ok(())
        } else {
            Err(StoreError::ReadOnly {
                path: self.root.clone(),
            })
        }
    }

    /// Creates a collection with a fixed schema.
    pub fn create_collection(&self, name: &str, schema: Schema) -> Result<Arc<Collection>> {
        self.require_writer()?;
        validate_name(name)?;
        let dir = self.collection_dir(name);
        if dir.exists() {
            return Err(StoreError::CollectionExists(name.to_string()));
        }
        Collection::create(&dir, name, schema)?;
        self.collection(name)
    }

    /// Opens (once, then cached) a collection by name.
    pub fn collection(&self, name: &str) -> Result<Arc<Collection>> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(collection) = open.get(name) {
            return Ok(collection.clone());
        }
        validate_name(name).map_err(|_| StoreError::NoSuchCollection(name.to_string()))?;
        let dir = self.collection_dir(name);
        if !dir.join(crate::manifest::FILE_NAME).exists() {
            return Err(StoreError::NoSuchCollection(name.to_string()));
        }
        let collection = Arc::new(if self.is_writer() {
            Collection::open_writer(&dir, self.options)?
        } else {
            Collection::open_reader(&dir)?
        });
        open.insert(name.to_string(), collection.clone());
        Ok(collection)
    }

    /// Names of all collections, sorted.
    pub fn list_collections(&self) -> Result<Vec<String>> {
        let dir = self.root.join(COLLECTIONS);
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).at(&dir)? {
            let entry = entry.at(&dir)?;
            let name = entry.file_name().to_string_lossy().to_string();
            if validate_name(&name).is_ok()
                && entry.path().join(crate::manifest::FILE_NAME).exists()
            {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Deletes a collection and all its files.
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        self.require_writer()?;
        let dir = self.release_collection(name)?;
        // Rename first so that a crash mid-delete leaves no half collection under its name.
        let trash = fileio::temp_sibling(&dir);
        std::fs::rename(&dir, &trash).at(&dir)?;
        fileio::sync_dir(&self.root.join(COLLECTIONS))?;
        std::fs::remove_dir_all(&trash).at(&trash)
    }

    /// Rebuilds the damaged HNSW graphs of collection `name` from their columns (see
    /// [`RepairReport`](crate::RepairReport)). Opens the collection in a mode that tolerates bad
    /// graphs, so it works when a normal open fails. If any other file is damaged it returns
    /// [`StoreError::NotRepairable`] naming that file, and nothing is modified.
    pub fn repair(&self, name: &str) -> Result<crate::RepairReport> {
        self.require_writer()?;
        validate_name(name).map_err(|_| StoreError::NoSuchCollection(name.to_string()))?;
        // A cached handle may map the damaged graph; the next `collection` call reopens.
        let dir = self.release_collection(name)?;
        crate::repair::repair(&dir)
    }

    /// The directory of the existing collection `name`, after dropping this store's cached
    /// handle to it (the caller is about to change its files underneath).
    fn release_collection(&self, name: &str) -> Result<PathBuf> {
        let dir = self.collection_dir(name);
        if !dir.join(crate::manifest::FILE_NAME).exists() {
            return Err(StoreError::NoSuchCollection(name.to_string()));
        }
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        Ok(dir)
    }

    /// The store's pseudonym key: a random secret that ingest uses to turn identifiers (a DICOM
    /// PatientID, a StudyInstanceUID) into keyed hashes, so that a patient's cases can be grouped
    /// without the store holding who the patient is. Created at first use by a writer (owner-only,
    /// from the OS's random source) and never printed; a reader of a store without one gets
    /// `Ok(None)`. Collections of one store share it, so a patient's key is the same in all of
    /// them; another store has another key.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = medvec_store::Store::create(dir.path().join("clinic"))?;
    /// let key = store.pseudonym_key()?.unwrap();
    /// assert_eq!(store.pseudonym_key()?.unwrap(), key); // the same key from then on
    /// # Ok::<(), medvec_store::StoreError>(())
    /// ```
    pub fn pseudonym_key(&self) -> Result<Option<[u8; PSEUDONYM_KEY_LEN]>> {
        if let Some(key) = self.existing_pseudonym_key()? {
            return Ok(Some(key));
        }
        if !self.is_writer() {
            return Ok(None);
        }
        let path = self.root.join(PSEUDONYM_KEY);
        let uid = marker_uid(&self.root)?;
        let mut key = [0u8; PSEUDONYM_KEY_LEN];
        getrandom::fill(&mut key)
            .map_err(|e| corrupt(&path, format!("no random source for a new key: {e}")))?;
        let header = Header::new(FileKind::PseudonymKey, uid, &key, [0; 3]);
        fileio::replace_atomically(&path, &header, &key)?;
        Ok(Some(key))
    }

    /// The pseudonym key if the store has one, checked.
    fn existing_pseudonym_key(&self) -> Result<Option<[u8; PSEUDONYM_KEY_LEN]>> {
        let path = self.root.join(PSEUDONYM_KEY);
        if !path.exists() {
            return Ok(None);
        }
        let uid = marker_uid(&self.root)?;
        let (_, body) = fileio::read_checked(&path, FileKind::PseudonymKey, Some(uid))?;
        let key = <[u8; PSEUDONYM_KEY_LEN]>::try_from(body.as_slice())
            .map_err(|_| corrupt(&path, format!("a key of {} bytes", body.len())))?;
        Ok(Some(key))
    }

    /// Verifies every collection (and the pseudonym key, when there is one); the first damaged
    /// file is returned as an error naming it.
    pub fn verify(&self) -> Result<Vec<(String, VerifyReport)>> {
        check_marker(&self.root)?;
        self.existing_pseudonym_key()?;
        self.list_collections()?
            .into_iter()
            .map(|name| {
                let collection = self.collection(&name)?;
                Ok((name, collection.verify()?))
            })
            .collect()
    }

    pub fn stats(&self) -> Result<Vec<CollectionStats>> {
        self.list_collections()?
            .into_iter()
            .map(|name| Ok(self.collection(&name)?.stats()))
            .collect()
    }

    /// Flushes every open collection's tail into segments.
    pub fn flush(&self) -> Result<()> {
        self.require_writer()?;
        let open: Vec<_> = self
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        open.iter().try_for_each(|c| c.flush())
    }

    /// Flushes and releases the lock. Dropping a writer without `close` loses nothing either:
    /// the log holds every acknowledged write and the next open replays it.
    pub fn close(self) -> Result<()> {
        if self.is_writer() {
            self.flush()?;
        }
        Ok(())
    }
}

/// The store's uid, from its marker's header: the owner of store-level files.
fn marker_uid(root: &Path) -> Result<u64> {
    let (header, _) = fileio::read_checked(&root.join(MARKER), FileKind::StoreMarker, None)?;
    Ok(header.owner_uid)
}

fn check_marker(root: &Path) -> Result<()> {
    let path = root.join(MARKER);
    if !path.exists() {
        return Err(StoreError::NotAStore {
            path: root.to_path_buf(),
        });
    }
    let (_, body) = fileio::read_checked(&path, FileKind::StoreMarker, None)?;
    let parsed: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| corrupt(&path, e.to_string()))?;
    match parsed.get("format").and_then(|v| v.as_u64()) {
        Some(v) if v as u32 <= fileio::FORMAT_VERSION => Ok(()),
        Some(v) => Err(StoreError::NewerFormat {
            path,
            found: v as u32,
            supported: fileio::FORMAT_VERSION,
        }),
        None => Err(corrupt(&path, "no format version")),
    }
}
