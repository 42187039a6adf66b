//! The graphs real TensorFlow 2.21 wrote (fixtures/, made by fixtures/make_fixtures.py).
//! Expected values come from the fixtures' own case.json / expected.json, which the script
//! recorded with TensorFlow.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ckpt_graph::ckpt_proto::{DataType, Message, MetaGraphDef};
use ckpt_graph::{Graph, Model, Output, ARG_OP};
use common::TestResult;
use serde_json::Value as Json;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn json(path: &Path) -> Res<Json> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

fn metas(dir: &str) -> Res<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(fixtures().join(dir))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "meta") {
            found.push(path);
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(format!("no .meta in fixtures/{dir}").into());
    }
    Ok(found)
}

/// Every checkpoint key the fixture's checkpoints hold, from expected.json.
fn checkpoint_keys(dir: &str) -> Res<BTreeSet<String>> {
    let expected = json(&fixtures().join(dir).join("expected.json"))?;
    let mut keys = BTreeSet::new();
    for ckpt in expected["checkpoints"].as_array().ok_or("no checkpoints")? {
        for var in ckpt["variables"].as_array().ok_or("no variables")? {
            keys.insert(var["name"].as_str().ok_or("no name")?.to_owned());
        }
    }
    Ok(keys)
}

fn dtype_name(t: DataType) -> &'static str {
    match t {
        DataType::DtFloat => "float32",
        DataType::DtInt64 => "int64",
        DataType::DtInt32 => "int32",
        DataType::DtBool => "bool",
        _ => "other",
    }
}

fn tensor(graph: &Graph, entry: &Json) -> Res<Output> {
    let name = entry["tensor"].as_str().ok_or("no tensor")?;
    Ok(graph.parse_output(name)?)
}

/// A graph, its case.json (if any) and checkpoint keys agree.
fn check_fixture(dir: &str) -> TestResult {
    let keys = checkpoint_keys(dir)?;
    for meta in metas(dir)? {
        let model = Model::load(&meta)?;
        let graph = &model.graph;
        assert!(model.saver.is_some(), "{}", meta.display());
        assert!(
            model.function_errors.is_empty(),
            "{:?}",
            model.function_errors
        );
        // Every variable maps to a key the checkpoint holds, and every key is restored.
        let mapped: BTreeSet<String> = model.variables.values().cloned().collect();
        assert_eq!(mapped, keys, "{}", meta.display());
        graph.topological_order()?;

        let case_path = fixtures().join(dir).join("case.json");
        if !case_path.exists() {
            continue;
        }
        let case = json(&case_path)?;
        for var in case["variables"].as_array().ok_or("no variables")? {
            let name = var["node"].as_str().ok_or("no node")?;
            let node = graph.node(graph.node_by_name(name)?);
            assert_eq!(Some(node.op.as_str()), var["op"].as_str(), "{name}");
            assert_eq!(
                Some(dtype_name(node.attr_dtype("dtype")?)),
                var["dtype"].as_str()
            );
            let shape: Vec<i64> = var["shape"]
                .as_array()
                .ok_or("no shape")?
                .iter()
                .map(|d| d.as_i64().unwrap_or(-1))
                .collect();
            assert_eq!(node.attr_shape("shape")?, Some(shape), "{name}");
        }
        let mut feeds = Vec::new();
        let placeholders: Vec<&str> = model
            .placeholders()
            .into_iter()
            .map(|id| graph.node(id).name.as_str())
            .collect();
        for feed in case["feeds"].as_array().ok_or("no feeds")? {
            let out = tensor(graph, feed)?;
            assert!(placeholders.contains(&graph.node(out.node).name.as_str()));
            feeds.push(out);
        }
        let mut fetches = Vec::new();
        for fetch in case["fetches"].as_array().ok_or("no fetches")? {
            let out = tensor(graph, fetch)?;
            assert_eq!(Some(graph.node(out.node).op.as_str()), fetch["op"].as_str());
            fetches.push(out);
        }
        // What the runtime will do: prune to the fetches with the feeds cut off.
        let order = graph.prune(&fetches, &feeds)?;
        for f in &fetches {
            assert!(order.contains(&f.node));
        }
        // No training or saving op is needed for inference.
        for &id in &order {
            let n = graph.node(id);
            assert!(
                !n.name.starts_with("gradients/") && !n.name.starts_with("save/"),
                "{}",
                n.name
            );
        }
        let likely: Vec<&str> = model
            .likely_outputs()
            .into_iter()
            .map(|id| graph.node(id).name.as_str())
            .collect();
        assert!(likely.contains(&"pred"), "{likely:?}");
    }
    Ok(())
}

#[test]
fn mlp_ref_variables_and_keep_prob_dropout() -> TestResult {
    check_fixture("mlp")
}

#[test]
fn lenet_resource_variables() -> TestResult {
    check_fixture("lenet")
}

#[test]
fn mobilenet_block() -> TestResult {
    check_fixture("mobilenet")
}

#[test]
fn partitioned_variables_map_parts_to_one_key_with_slices() -> TestResult {
    check_fixture("partitioned")?;
    let model = Model::load(&metas("partitioned")?[0])?;
    let g = &model.graph;
    let slice = |name: &str| -> Res<String> {
        let id = g.node_by_name(name)?;
        Ok(model.variable_slices.get(&id).cloned().unwrap_or_default())
    };
    assert_eq!(
        model.variable_key(g.node_by_name("part/pv/part_1")?),
        Some("part/pv")
    );
    assert_eq!(slice("part/pv/part_1")?, "6 2 2,2:0,2");
    assert_eq!(slice("part/embedding/part_1")?, "7 3 4,3:0,3");
    assert_eq!(slice("part/grid/part_1_2")?, "4 6 2,2:4,2");
    assert_eq!(slice("plain")?, "");
    Ok(())
}

#[test]
fn sharded_saver_with_ref_and_resource_variables() -> TestResult {
    check_fixture("sharded")
}

#[test]
fn tf1_saver_keeps_several_steps() -> TestResult {
    check_fixture("tf1_saver")
}

#[test]
fn layers_v1_cond_is_switch_and_merge() -> TestResult {
    check_fixture("layers_v1")?;
    let model = Model::load(&metas("layers_v1")?[0])?;
    let ops: BTreeSet<&str> = model.graph.nodes.iter().map(|n| n.op.as_str()).collect();
    assert!(ops.contains("Switch") && ops.contains("Merge"));
    assert!(model.functions.is_empty());
    assert_eq!(
        model.variable_key(model.graph.node_by_name("dense/kernel")?),
        Some("dense/kernel")
    );
    Ok(())
}

#[test]
fn layers_v2_if_branches_are_library_functions() -> TestResult {
    check_fixture("layers_v2")?;
    let model = Model::load(&metas("layers_v2")?[0])?;
    let g = &model.graph;
    let ifs: Vec<_> = g
        .nodes
        .iter()
        .filter(|n| (n.op == "If" || n.op == "StatelessIf") && !n.name.starts_with("gradients"))
        .collect();
    // The forward cond (a training graph also has its gradient's If, under gradients/).
    assert_eq!(ifs.len(), 1);
    let node = ifs[0];
    let tout = node.attr_dtypes("Tout")?;
    let tin = node.attr_dtypes("Tin")?;
    assert_eq!(tout.first(), Some(&DataType::DtFloat));
    for branch in ["then_branch", "else_branch"] {
        let f = model.function(&node.attr_func(branch)?.name)?;
        assert_eq!(f.outputs.len(), tout.len(), "{}", f.name);
        assert_eq!(f.arg_names.len(), tin.len(), "{}", f.name);
        for (i, t) in tin.iter().enumerate() {
            let arg = f.body.node(i);
            assert_eq!(arg.op, ARG_OP);
            assert_eq!(arg.attr_dtype("T")?, *t);
        }
        let order = f.body.prune(&f.outputs, &[])?;
        assert!(order.len() >= f.outputs.len());
    }
    // The true branch applies dropout: its first output is the SelectV2 of the rate form,
    // reached through `node:output_arg:index` inputs.
    let then = model.function(&node.attr_func("then_branch")?.name)?;
    let out0 = then.body.node(then.outputs[0].node);
    assert_eq!(out0.op, "SelectV2");
    assert_eq!(then.outputs[0].index, 0);
    let else_ = model.function(&node.attr_func("else_branch")?.name)?;
    assert_eq!(else_.body.node(else_.outputs[0].node).op, "Identity");
    Ok(())
}

#[test]
fn frozen_graph_def_loads_without_saver() -> TestResult {
    let dir = fixtures().join("frozen");
    let case = json(&dir.join("case.json"))?;
    let pb = dir.join(case["graph"].as_str().ok_or("no graph")?);
    let model = Model::load(&pb)?;
    assert!(model.saver.is_none());
    assert!(model.variables.is_empty());
    let g = &model.graph;
    let feeds = case["feeds"]
        .as_array()
        .ok_or("no feeds")?
        .iter()
        .map(|f| tensor(g, f))
        .collect::<Res<Vec<_>>>()?;
    let fetches = case["fetches"]
        .as_array()
        .ok_or("no fetches")?
        .iter()
        .map(|f| tensor(g, f))
        .collect::<Res<Vec<_>>>()?;
    let order = g.prune(&fetches, &feeds)?;
    assert!(order.iter().all(|&id| g.node(id).op != "VariableV2"));
    // The same bytes also load when named like a meta graph.
    let tmp = tempfile::tempdir()?;
    let renamed = tmp.path().join("frozen.meta");
    std::fs::copy(&pb, &renamed)?;
    assert_eq!(Model::load(&renamed)?.graph.len(), g.len());
    Ok(())
}

/// Proves the keys come from the saver's restore op, not from node names: renaming the
/// keys in the real graph's `save/RestoreV2/tensor_names` renames the mapped keys.
#[test]
fn keys_follow_the_restore_op_of_real_graphs() -> TestResult {
    for dir in ["mlp", "layers_v2", "sharded"] {
        let path = &metas(dir)?[0];
        let mut meta = MetaGraphDef::decode(std::fs::read(path)?.as_slice())?;
        let graph_def = meta.graph_def.as_mut().ok_or("no graph")?;
        let mut renamed = 0;
        for node in &mut graph_def.node {
            if node.op == "Const"
                && node.name.ends_with("/tensor_names")
                && node.name.starts_with("save")
            {
                if let Some(ckpt_graph::ckpt_proto::attr_value::Value::Tensor(t)) =
                    node.attr.get_mut("value").and_then(|v| v.value.as_mut())
                {
                    for s in &mut t.string_val {
                        s.splice(0..0, b"renamed/".iter().copied());
                        renamed += 1;
                    }
                }
            }
        }
        assert!(renamed > 0, "{dir}");
        let model = Model::from_meta_graph_def(&meta)?;
        let expected: BTreeSet<String> = checkpoint_keys(dir)?
            .into_iter()
            .map(|k| format!("renamed/{k}"))
            .collect();
        let mapped: BTreeSet<String> = model.variables.values().cloned().collect();
        assert_eq!(mapped, expected, "{dir}");
    }
    Ok(())
}

#[test]
fn ops_fixture_prunes_every_output() -> TestResult {
    let model = Model::load(&metas("ops")?[0])?;
    let g = &model.graph;
    let outputs = model.likely_outputs();
    assert!(outputs.len() > 50);
    let fetches: Vec<Output> = outputs.iter().map(|&id| Output::new(id, 0)).collect();
    let order = g.prune(&fetches, &[])?;
    assert!(order.len() >= fetches.len());
    Ok(())
}
