//! medvec-query: the alignment shift, retrieval and fusion heads over a store (see issue 4).
