//! GraphDef import, name resolution, pruning and ordering.

mod common;

use ckpt_graph::ckpt_proto::GraphDef;
use ckpt_graph::{Error, Graph, Node, Output};
use common::*;

fn graph(nodes: Vec<ckpt_graph::ckpt_proto::NodeDef>) -> Result<Graph, Error> {
    Graph::from_graph_def(&GraphDef {
        node: nodes,
        ..Default::default()
    })
}

fn names(g: &Graph, ids: &[usize]) -> Vec<String> {
    ids.iter().map(|&id| g.node(id).name.clone()).collect()
}

/// Every node comes after all the nodes it reads (data and control).
fn assert_topological(g: &Graph, order: &[usize]) {
    let mut position = vec![usize::MAX; g.len()];
    for (i, &id) in order.iter().enumerate() {
        position[id] = i;
    }
    for &id in order {
        let n = g.node(id);
        for src in n
            .inputs
            .iter()
            .map(|o| o.node)
            .chain(n.control_inputs.iter().copied())
        {
            assert!(
                position[src] < position[id],
                "{} before {}",
                g.node(src).name,
                n.name
            );
        }
    }
}

#[test]
fn inputs_parse_plain_indexed_and_control_forms() -> TestResult {
    let g = graph(vec![
        node("a", "Placeholder", &[]),
        node("s", "Switch", &["a", "a"]),
        node("m", "Merge", &["s:1", "s:0", "^a"]),
        node("later", "Identity", &["m:1", "^s", "^m"]),
    ])?;
    let (a, s, m) = (
        g.node_by_name("a")?,
        g.node_by_name("s")?,
        g.node_by_name("m")?,
    );
    let merge = g.node(m);
    assert_eq!(merge.inputs, [Output::new(s, 1), Output::new(s, 0)]);
    assert_eq!(merge.control_inputs, [a]);
    let later = g.node(g.node_by_name("later")?);
    assert_eq!(later.inputs, [Output::new(m, 1)]);
    assert_eq!(later.control_inputs, [s, m]);
    assert_eq!(g.parse_output("s:1")?, Output::new(s, 1));
    assert_eq!(g.parse_output("s")?, Output::new(s, 0));
    assert_eq!(g.tensor_name(Output::new(s, 1)), "s:1");
    assert_eq!(g.consumers()[s], [m, m, g.node_by_name("later")?]);
    Ok(())
}

#[test]
fn malformed_inputs_are_errors_naming_the_node() -> TestResult {
    for bad in ["a:", "a:x", ":0", "^", "^a:0", "", "a:-1"] {
        let err = expect_err(graph(vec![
            node("a", "Const", &[]),
            node("b", "Identity", &[bad]),
        ]))?;
        match &err {
            Error::MalformedInput { node, input, .. } => {
                assert_eq!((node.as_str(), input.as_str()), ("b", bad));
            }
            other => panic!("{bad:?}: unexpected {other}"),
        }
    }
    Ok(())
}

#[test]
fn duplicate_dangling_and_empty_names_are_errors() -> TestResult {
    let err = expect_err(graph(vec![
        node("a", "Const", &[]),
        node("a", "Const", &[]),
    ]))?;
    assert_eq!(err.to_string(), "duplicate node name \"a\"");

    let err = expect_err(graph(vec![
        node("dense/kernel", "Const", &[]),
        node("y", "Identity", &["dense/kernal:0"]),
    ]))?;
    assert_eq!(
        err.to_string(),
        "node \"y\": input \"dense/kernal:0\" names no node in the graph; did you mean \"dense/kernel\"?"
    );

    let err = expect_err(graph(vec![node("y", "Identity", &["^gone"])]))?;
    assert!(matches!(err, Error::DanglingInput { ref input, .. } if input == "^gone"));

    let err = expect_err(graph(vec![node("", "Const", &[])]))?;
    assert!(matches!(err, Error::EmptyNodeName { index: 0, .. }));
    let err = expect_err(graph(vec![node("x", "", &[])]))?;
    assert_eq!(err.to_string(), "node \"x\" has an empty op");
    Ok(())
}

#[test]
fn unknown_fetch_names_suggest_close_names() -> TestResult {
    let g = graph(vec![
        node("x", "Placeholder", &[]),
        node("dense_2/logits", "BiasAdd", &["x"]),
        node("pred", "ArgMax", &["dense_2/logits"]),
    ])?;
    let err = expect_err(g.parse_output("logits"))?;
    assert_eq!(
        err.to_string(),
        "no node named \"logits\"; did you mean \"dense_2/logits\"?"
    );
    let err = expect_err(g.parse_output("prd:0"))?;
    assert_eq!(
        err.to_string(),
        "no node named \"prd\"; did you mean \"pred\"?"
    );
    let err = expect_err(g.parse_output("pred:x"))?;
    assert!(matches!(err, Error::MalformedTensorName { .. }));
    Ok(())
}

#[test]
fn prune_keeps_only_what_fetches_need_in_order() -> TestResult {
    let g = graph(vec![
        node("out", "Identity", &["add"]),
        node("add", "AddV2", &["a", "b"]),
        node("a", "Const", &[]),
        node("b", "Identity", &["c", "^init"]),
        node("c", "Const", &[]),
        node("init", "NoOp", &[]),
        node("unused", "Neg", &["a"]),
    ])?;
    let out = g.parse_output("out")?;
    let order = g.prune(&[out], &[])?;
    assert_eq!(names(&g, &order), ["a", "c", "init", "b", "add", "out"]);
    assert_topological(&g, &order);

    let full = g.topological_order()?;
    assert_eq!(full.len(), g.len());
    assert_topological(&g, &full);
    Ok(())
}

#[test]
fn feeds_cut_off_inputs() -> TestResult {
    // keep_prob is fed: the RandomUniform behind it must not be computed.
    let g = graph(vec![
        node("x", "Placeholder", &[]),
        node("rand", "RandomUniform", &["x"]),
        node("keep", "PlaceholderWithDefault", &["rand"]),
        node("split", "Split", &["x"]),
        node("y", "Mul", &["x", "keep"]),
        node("z", "AddV2", &["split:0", "split:1"]),
    ])?;
    let y = g.parse_output("y")?;
    let keep = g.parse_output("keep")?;
    let x = g.parse_output("x")?;
    let order = g.prune(&[y], &[x, keep])?;
    assert_eq!(names(&g, &order), ["y"]);

    // Feeding one output of a two-output node still computes the node for the other.
    let z = g.parse_output("z")?;
    let split0 = g.parse_output("split:0")?;
    let order = g.prune(&[z], &[split0])?;
    assert_eq!(names(&g, &order), ["x", "split", "z"]);
    let split1 = g.parse_output("split:1")?;
    let order = g.prune(&[z], &[split0, split1])?;
    assert_eq!(names(&g, &order), ["z"]);

    // A fetch that is fed needs nothing.
    assert!(g.prune(&[keep], &[keep])?.is_empty());
    Ok(())
}

#[test]
fn control_edges_from_fed_placeholders_are_satisfied() -> TestResult {
    let g = graph(vec![
        node("p", "Placeholder", &[]),
        node("q", "Identity", &["p"]),
        node("c", "Const", &["^p"]),
        node("d", "Const", &["^q"]),
    ])?;
    let p = g.parse_output("p")?;
    let q = g.parse_output("q")?;
    let c = g.parse_output("c")?;
    let d = g.parse_output("d")?;
    assert_eq!(names(&g, &g.prune(&[c], &[p])?), ["c"]);
    // q is not a Placeholder: its control edge still needs it, and it needs p, which is fed.
    assert_eq!(names(&g, &g.prune(&[d], &[p, q])?), ["q", "d"]);
    Ok(())
}

#[test]
fn while_loop_back_edges_are_not_cycles() -> TestResult {
    let g = graph(vec![
        node("start", "Const", &[]),
        node("enter", "Enter", &["start"]),
        node("merge", "Merge", &["enter", "next"]),
        node("body", "AddV2", &["merge", "start"]),
        node("next", "NextIteration", &["body"]),
        node("exit", "Exit", &["merge"]),
    ])?;
    assert!(g.is_back_edge(4, 2));
    assert!(!g.is_back_edge(3, 4) && !g.is_back_edge(1, 2));
    // What the loop's result needs includes the body behind the back edge, after the Merge.
    let exit = g.parse_output("exit")?;
    assert_eq!(
        names(&g, &g.prune(&[exit], &[])?),
        ["start", "enter", "merge", "exit", "body", "next"]
    );
    let order = g.topological_order()?;
    let at = |name: &str| order.iter().position(|&id| g.node(id).name == name);
    assert!(at("merge") < at("body") && at("body") < at("next"));
    Ok(())
}

#[test]
fn cycles_are_errors_naming_a_node_on_the_cycle() -> TestResult {
    // The same loop with the NextIteration replaced: no longer a while loop.
    let g = graph(vec![
        node("start", "Const", &[]),
        node("enter", "Enter", &["start"]),
        node("merge", "Merge", &["enter", "next"]),
        node("body", "AddV2", &["merge", "start"]),
        node("next", "Identity", &["body"]),
        node("exit", "Exit", &["merge"]),
    ])?;
    let exit = g.parse_output("exit")?;
    match expect_err(g.prune(&[exit], &[]))? {
        Error::Cycle { node } => {
            assert!(["merge", "body", "next"].contains(&node.as_str()), "{node}")
        }
        other => return Err(format!("unexpected {other}").into()),
    }
    assert!(matches!(g.topological_order(), Err(Error::Cycle { .. })));
    // A NextIteration feeding something else than a Merge is no back edge either.
    let g = graph(vec![
        node("a", "AddV2", &["n", "n"]),
        node("n", "NextIteration", &["a"]),
    ])?;
    assert!(matches!(g.topological_order(), Err(Error::Cycle { .. })));

    // A control-edge cycle, and a self loop.
    let g = graph(vec![node("a", "NoOp", &["^b"]), node("b", "NoOp", &["^a"])])?;
    let err = expect_err(g.topological_order())?;
    assert!(
        err.to_string()
            .starts_with("the graph has a cycle through node"),
        "{err}"
    );
    let g = graph(vec![node("s", "Identity", &["s"])])?;
    assert_eq!(
        expect_err(g.topological_order())?.to_string(),
        "the graph has a cycle through node \"s\" that is not a while loop (a loop's only back edge runs from a NextIteration into a Merge)"
    );

    // A cycle outside what the fetch needs does not matter to prune.
    let g = graph(vec![
        node("ok", "Const", &[]),
        node("a", "Identity", &["b"]),
        node("b", "Identity", &["a"]),
    ])?;
    let ok = g.parse_output("ok")?;
    assert_eq!(g.prune(&[ok], &[])?, [0]);
    Ok(())
}

#[test]
fn a_100k_node_chain_prunes_and_orders_without_recursion() -> TestResult {
    const N: usize = 100_000;
    // Run on a deliberately small stack: any recursion over the chain would overflow it.
    let result = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| -> Result<(), String> {
            let mut nodes = Vec::with_capacity(N);
            nodes.push(node("n0", "Placeholder", &[]));
            // Built in reverse so that a naive "inputs come first in the file" order fails.
            for i in 1..N {
                let prev = format!("n{}", i - 1);
                let control = format!("^n{}", i / 2);
                nodes.push(node(&format!("n{i}"), "Identity", &[&prev, &control]));
            }
            nodes.reverse();
            let g = graph(nodes).map_err(|e| e.to_string())?;
            let last = g
                .parse_output(&format!("n{}", N - 1))
                .map_err(|e| e.to_string())?;
            let order = g.prune(&[last], &[]).map_err(|e| e.to_string())?;
            if order.len() != N {
                return Err(format!("pruned to {} nodes", order.len()));
            }
            for (i, &id) in order.iter().enumerate() {
                if g.node(id).name != format!("n{i}") {
                    return Err(format!("position {i} holds {}", g.node(id).name));
                }
            }
            // Feeding the middle cuts the chain in half.
            let mid = g
                .parse_output(&format!("n{}", N / 2))
                .map_err(|e| e.to_string())?;
            let half = g.prune(&[last], &[mid]).map_err(|e| e.to_string())?;
            // Control edges n(i) <- ^n(i/2) still reach below the cut, so only the fed node
            // itself (used by nothing else) drops out.
            if half.len() != N - 1 || half.contains(&mid.node) {
                return Err(format!("feeding the middle kept {} nodes", half.len()));
            }
            let order = g.topological_order().map_err(|e| e.to_string())?;
            if order.len() != N {
                return Err(format!("ordered {} nodes", order.len()));
            }
            Ok(())
        })?
        .join()
        .map_err(|_| "the chain test panicked")?;
    result.map_err(Into::into)
}

#[test]
fn a_100k_chain_fed_in_the_middle_stops_there() -> TestResult {
    const N: usize = 100_000;
    let nodes: Vec<_> = (0..N)
        .map(|i| {
            if i == 0 {
                node("n0", "Placeholder", &[])
            } else {
                node(&format!("n{i}"), "Identity", &[&format!("n{}", i - 1)])
            }
        })
        .collect();
    let g = graph(nodes)?;
    let last = g.parse_output(&format!("n{}", N - 1))?;
    let mid = g.parse_output(&format!("n{}", N / 2))?;
    let order = g.prune(&[last], &[mid])?;
    assert_eq!(order.len(), N - N / 2 - 1);
    assert_eq!(g.node(order[0]).name, format!("n{}", N / 2 + 1));
    Ok(())
}

#[test]
fn graphs_built_by_hand_are_checked() -> TestResult {
    let mut a = Node::new("a", "Const");
    a.inputs.push(Output::new(5, 0));
    let err = expect_err(Graph::new(vec![a]))?;
    assert_eq!(
        err.to_string(),
        "node id 5 is out of range (the graph has 1 nodes)"
    );
    let err = expect_err(Graph::new(vec![
        Node::new("a", "Const"),
        Node::new("a", "Const"),
    ]))?;
    assert!(matches!(err, Error::DuplicateNode { .. }));
    let g = Graph::default();
    let err = expect_err(g.prune(&[Output::new(0, 0)], &[]))?;
    assert!(matches!(err, Error::NodeIdOutOfRange { id: 0, len: 0 }));
    Ok(())
}
