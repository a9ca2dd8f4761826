#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| medvec_ingest::fuzz_entry::image_file(data));
