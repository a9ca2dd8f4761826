#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| medvec_ingest::dicom::fuzz::dicom(data));
