//! medvec-ingest: readers of precomputed embeddings and archives, and ONNX encoders.
