//! Replays the committed seeds of the `graph_load` fuzz target (`fuzz/seeds/graph_load`)
//! through the same code the target runs, so that `cargo test` catches a panic on any of them
//! without a nightly toolchain; and checks that the text seeds are graphs the importer reads.

#[path = "../../../fuzz/fuzz_targets/common/graph.rs"]
mod graph_target;

use std::path::Path;

use ckpt_graph::Model;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn seeds() -> Result<Vec<std::path::PathBuf>, std::io::Error> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/graph_load");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[test]
fn every_committed_seed_runs_without_panicking() -> TestResult {
    let files = seeds()?;
    assert!(files.len() > 600, "only {} seeds found", files.len());
    for path in &files {
        let data = std::fs::read(path)?;
        graph_target::run(&data);
    }
    Ok(())
}

#[test]
fn text_seeds_are_graphs_that_import() -> TestResult {
    let mut found = 0;
    for path in seeds()? {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !name.starts_with("text_") {
            continue;
        }
        found += 1;
        let model = Model::load(&path).map_err(|e| format!("{name}: {e}"))?;
        let (nodes, producer, saver) = match name {
            "text_estimator_head.pbtxt" => (15, 2474, false),
            "text_tf0_dropout.pbtxt" => (9, 17, false),
            "text_meta_graph.pbtxt" => (5, 2474, true),
            other => return Err(format!("unexpected text seed {other}").into()),
        };
        assert_eq!(model.graph.len(), nodes, "{name}");
        assert_eq!(model.producer, producer, "{name}");
        assert_eq!(model.saver.is_some(), saver, "{name}");
    }
    assert_eq!(found, 3);
    Ok(())
}
