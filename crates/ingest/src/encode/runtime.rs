//! Finding and loading the ONNX Runtime shared library (the `ort` crate's `load-dynamic` mode).
//!
//! ONNX Runtime allows one library and one environment per process, so the loaded [`Runtime`] is
//! kept in a process-wide slot: later [`Runtime::load`] calls for the same library get a clone,
//! a different library is refused with [`EncodeError::RuntimeConflict`].

use super::error::{EncodeError, Result};
use ort::environment::Environment;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// Where to load ONNX Runtime from.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// The library file. `None` looks at `ORT_DYLIB_PATH`, then at the copy that
    /// `tools/setup.sh` puts in the workspace's `third_party/onnxruntime/`.
    pub library: Option<PathBuf>,
}

/// A loaded ONNX Runtime: the shared library plus its environment. Cheap to clone.
///
/// ```no_run
/// use medvec_ingest::encode::{Runtime, RuntimeOptions};
/// let runtime = Runtime::load(&RuntimeOptions::default())?;
/// println!("ONNX Runtime from {}", runtime.library().display());
/// # Ok::<(), medvec_ingest::encode::EncodeError>(())
/// ```
#[derive(Clone)]
pub struct Runtime {
    env: Environment,
    library: PathBuf,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("library", &self.library)
            .finish()
    }
}

/// The process-wide state: which library `ort` has loaded (once set it never changes, even if
/// building the environment then failed) and the environment built on it.
struct Loaded {
    library: Option<PathBuf>,
    runtime: Option<Runtime>,
}

static LOADED: Mutex<Loaded> = Mutex::new(Loaded {
    library: None,
    runtime: None,
});

const ENV_VAR: &str = "ORT_DYLIB_PATH";

impl Runtime {
    /// Loads ONNX Runtime (once per process) and creates its environment.
    ///
    /// Errors: [`EncodeError::RuntimeNotFound`] when no library is found (the message says to run
    /// `bash tools/setup.sh` or set `ORT_DYLIB_PATH`), [`EncodeError::RuntimeLoad`] when it does
    /// not load, [`EncodeError::RuntimeConflict`] when another library is already loaded.
    pub fn load(options: &RuntimeOptions) -> Result<Runtime> {
        let found = find_library(options.library.as_deref())?;
        // Compare real files, so `libonnxruntime.so` and the versioned name it links to agree.
        let library = std::fs::canonicalize(&found).unwrap_or(found);
        let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(previous) = &loaded.library {
            if *previous != library {
                return Err(EncodeError::RuntimeConflict {
                    loaded: previous.clone(),
                    requested: library,
                });
            }
        }
        if let Some(runtime) = &loaded.runtime {
            return Ok(runtime.clone());
        }
        let builder = ort::init_from(&library).map_err(|e| EncodeError::RuntimeLoad {
            path: library.clone(),
            detail: e.to_string(),
        })?;
        loaded.library = Some(library.clone());
        let env = builder
            .with_name("medvec")
            .with_telemetry(false)
            .build()
            .map_err(|e| EncodeError::RuntimeLoad {
                path: library.clone(),
                detail: e.to_string(),
            })?;
        let runtime = Runtime { env, library };
        loaded.runtime = Some(runtime.clone());
        Ok(runtime)
    }

    /// The library file in use.
    pub fn library(&self) -> &Path {
        &self.library
    }

    pub(crate) fn env(&self) -> &Environment {
        &self.env
    }
}

/// Where [`Runtime::load`] would load ONNX Runtime from, without loading it.
///
/// Order: `explicit`; else `ORT_DYLIB_PATH` (when set and not empty); else
/// `<workspace>/third_party/onnxruntime/libonnxruntime.so` (the workspace this crate was built
/// in) and `./third_party/onnxruntime/libonnxruntime.so`. An explicit path or `ORT_DYLIB_PATH`
/// that does not exist is an error rather than a reason to look elsewhere: silently loading a
/// different library than the one asked for hides mistakes.
pub fn find_library(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return existing(path, || format!("{} (given explicitly)", path.display()));
    }
    if let Some(value) = std::env::var_os(ENV_VAR).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(value);
        return existing(&path, || format!("{ENV_VAR}={}", path.display()));
    }
    let candidates = default_candidates();
    for path in &candidates {
        if path.is_file() {
            return Ok(path.clone());
        }
    }
    let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(EncodeError::RuntimeNotFound {
        looked: format!("{ENV_VAR} (not set), {}", looked.join(", ")),
    })
}

fn existing(path: &Path, describe: impl Fn() -> String) -> Result<PathBuf> {
    if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        Err(EncodeError::RuntimeNotFound { looked: describe() })
    }
}

fn default_candidates() -> Vec<PathBuf> {
    let name = format!(
        "{}onnxruntime{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let workspace = std::fs::canonicalize(&workspace).unwrap_or(workspace);
    vec![
        workspace.join("third_party/onnxruntime").join(&name),
        Path::new("third_party/onnxruntime").join(&name),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_missing_library_is_a_clear_error() {
        let err = find_library(Some(Path::new("/nonexistent/libonnxruntime.so"))).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, EncodeError::RuntimeNotFound { .. }), "{text}");
        assert!(text.contains("bash tools/setup.sh"), "{text}");
        assert!(text.contains("ORT_DYLIB_PATH"), "{text}");
        assert!(text.contains("/nonexistent/libonnxruntime.so"), "{text}");
    }
}
