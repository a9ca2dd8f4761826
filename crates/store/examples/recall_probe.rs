use medvec_store::*;
fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path().join("s")).unwrap();
    let schema = Schema {
        vectors: vec![VectorField::parse("image:64:cosine").unwrap()],
        payload: vec![],
    };
    let c = store.create_collection("c", schema).unwrap();
    let mut state = 1u64;
    let mut rnd = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0
    };
    let centres: Vec<Vec<f32>> = (0..40).map(|_| (0..64).map(|_| rnd()).collect()).collect();
    let mut vecs = Vec::new();
    for i in 0..20000 {
        let c = &centres[i % 40];
        vecs.push(c.iter().map(|x| x + 0.35 * rnd()).collect::<Vec<f32>>());
    }
    let recs: Vec<Record> = vecs
        .iter()
        .enumerate()
        .map(|(i, v)| Record::new(format!("{i}")).with_vector("image", v.clone()))
        .collect();
    let t = std::time::Instant::now();
    c.upsert(&recs).unwrap();
    c.flush().unwrap();
    eprintln!("build {:?}", t.elapsed());
    let queries: Vec<Vec<f32>> = (0..200)
        .map(|i| {
            let c = &centres[(i * 7) % 40];
            c.iter().map(|x| x + 0.35 * rnd()).collect()
        })
        .collect();
    let mut ex = SearchParams::top(10);
    ex.exact = true;
    let truth = c.search_batch("image", &queries, &ex).unwrap();
    for ef in [10, 64, 200, 800] {
        let mut p = SearchParams::top(10);
        p.ef = Some(ef);
        let got = c.search_batch("image", &queries, &p).unwrap();
        let mut f = 0;
        for (g, t) in got.iter().zip(&truth) {
            f += t.iter().filter(|h| g.iter().any(|x| x.id == h.id)).count();
        }
        eprintln!("ef {ef} recall {}", f as f64 / 2000.0);
    }
}
