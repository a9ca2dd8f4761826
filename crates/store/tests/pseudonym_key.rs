//! The store's pseudonym key: created once by a writer, owner-only, the same on every open,
//! checked like every other file (a flipped byte or another store's key is an error naming it).

use medvec_store::{Store, StoreError};
use std::os::unix::fs::PermissionsExt;

#[test]
fn the_key_is_made_once_private_and_stable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clinic");
    let key = {
        let store = Store::create(&path).unwrap();
        assert_eq!(
            Store::open_read_only(&path)
                .unwrap()
                .pseudonym_key()
                .unwrap(),
            None,
            "a reader never creates the key"
        );
        store.pseudonym_key().unwrap().unwrap()
    };
    assert_ne!(key, [0u8; 32]);
    let file = path.join("pseudonym.key");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        Store::open(&path).unwrap().pseudonym_key().unwrap(),
        Some(key)
    );
    let reader = Store::open_read_only(&path).unwrap();
    assert_eq!(reader.pseudonym_key().unwrap(), Some(key));
    reader.verify().unwrap();

    let other = Store::create(dir.path().join("other")).unwrap();
    assert_ne!(
        other.pseudonym_key().unwrap(),
        Some(key),
        "each store has its own"
    );
}

#[test]
fn a_damaged_or_foreign_key_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    Store::create(&a).unwrap().pseudonym_key().unwrap();
    Store::create(&b).unwrap().pseudonym_key().unwrap();
    let file = a.join("pseudonym.key");
    let good = std::fs::read(&file).unwrap();
    for at in [0, 20, 63, 64, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 0x40;
        std::fs::write(&file, &bad).unwrap();
        for err in [
            Store::open(&a).unwrap().pseudonym_key().unwrap_err(),
            Store::open_read_only(&a).unwrap().verify().unwrap_err(),
        ] {
            assert!(
                matches!(err, StoreError::Corrupt { .. }),
                "byte {at}: {err}"
            );
            assert!(err.to_string().contains("pseudonym.key"), "{err}");
        }
    }
    std::fs::copy(b.join("pseudonym.key"), &file).unwrap();
    let err = Store::open(&a).unwrap().pseudonym_key().unwrap_err();
    assert!(
        err.to_string().contains("another collection or store"),
        "{err}"
    );
    std::fs::write(&file, &good[..40]).unwrap();
    assert!(Store::open(&a).unwrap().pseudonym_key().is_err());
}
