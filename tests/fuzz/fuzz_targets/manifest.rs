#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| medvec_store::fuzz_entry::manifest(data));
