//! `Einsum` with one or two operands, the forms BERT-family models and Keras attention and
//! `EinsumDense` layers emit: `abc,cde->abde`, `aecd,abcd->acbe`, `acbe,aecd->abcd`,
//! `BTNH,BFNH->BNFT`, `...b,bc->...c`, `ij->ji`, `ij->j`.
//!
//! The equation is parsed when the plan is built (an equation it cannot parse, a repeated
//! label within one operand (a diagonal), an output label no input has, or more than two
//! operands is an error then). A run sums away labels only one operand has, lays each
//! operand out as `[batch, free, contracted]` (or its transpose, whichever needs no copy),
//! multiplies with the batched GEMM `BatchMatMul` uses, and permutes the product into the
//! output's order. Ellipsis dimensions broadcast as numpy's do.

use std::collections::HashMap;

use ckpt_graph::Node;

use crate::ops::array::transpose::transpose;
use crate::ops::math::batch_matmul::BatchMatMul;
use crate::ops::math::reduce::{reduce, Reduction};
use crate::ops::{fmt_shape, kernel, node_error, op_bail, BuildCtx, Built, Kernel, OpError};
use crate::value::dispatch_numbers;
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let equation = node.attr_string("equation")?;
    let parsed = Equation::parse(&equation).map_err(|e| node_error(node, e))?;
    if let Ok(n) = node.attr_i64("N") {
        if n != parsed.inputs.len() as i64 {
            return Err(node_error(
                node,
                format!(
                    "equation {equation:?} has {} operands, the node has N = {n}",
                    parsed.inputs.len()
                ),
            ));
        }
    }
    kernel(Einsum { equation: parsed })
}

/// A subscript: a letter, or the ellipsis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Sub {
    Letter(char),
    Ellipsis,
}

/// A parsed equation.
#[derive(Debug, Clone, PartialEq)]
struct Equation {
    text: String,
    inputs: Vec<Vec<Sub>>,
    output: Vec<Sub>,
}

impl Equation {
    fn parse(text: &str) -> Result<Equation, String> {
        let bad = |why: &str| format!("cannot parse einsum equation {text:?}: {why}");
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let (lhs, rhs) = match compact.split_once("->") {
            Some((l, r)) => (l, Some(r)),
            None => (compact.as_str(), None),
        };
        let parse_side = |s: &str| -> Result<Vec<Sub>, String> {
            let mut subs = Vec::new();
            let mut rest = s;
            while let Some(c) = rest.chars().next() {
                if let Some(after) = rest.strip_prefix("...") {
                    if subs.contains(&Sub::Ellipsis) {
                        return Err(bad("more than one ellipsis in an operand"));
                    }
                    subs.push(Sub::Ellipsis);
                    rest = after;
                } else if c.is_ascii_alphabetic() {
                    subs.push(Sub::Letter(c));
                    rest = &rest[1..];
                } else {
                    return Err(bad(&format!("unexpected character {c:?}")));
                }
            }
            Ok(subs)
        };
        let inputs: Vec<Vec<Sub>> = lhs.split(',').map(parse_side).collect::<Result<_, _>>()?;
        if inputs.len() > 2 {
            return Err(bad("more than two operands are not supported"));
        }
        for subs in &inputs {
            let letters: Vec<char> = subs
                .iter()
                .filter_map(|s| match s {
                    Sub::Letter(c) => Some(*c),
                    Sub::Ellipsis => None,
                })
                .collect();
            for (i, c) in letters.iter().enumerate() {
                if letters[..i].contains(c) {
                    return Err(bad(&format!(
                        "label {c:?} repeats within an operand (diagonals are not supported)"
                    )));
                }
            }
        }
        let output = match rhs {
            Some(r) => parse_side(r)?,
            None => {
                // Implicit output: the labels that appear once, sorted, after any ellipsis.
                let mut counts: HashMap<char, usize> = HashMap::new();
                for s in inputs.iter().flatten() {
                    if let Sub::Letter(c) = s {
                        *counts.entry(*c).or_default() += 1;
                    }
                }
                let mut once: Vec<char> = counts
                    .into_iter()
                    .filter(|&(_, n)| n == 1)
                    .map(|(c, _)| c)
                    .collect();
                once.sort_unstable();
                let ellipsis = inputs.iter().flatten().any(|s| *s == Sub::Ellipsis);
                ellipsis
                    .then_some(Sub::Ellipsis)
                    .into_iter()
                    .chain(once.into_iter().map(Sub::Letter))
                    .collect()
            }
        };
        for (i, s) in output.iter().enumerate() {
            if output[..i].contains(s) {
                return Err(bad("an output label repeats"));
            }
            if !inputs.iter().flatten().any(|t| t == s) {
                let name = match s {
                    Sub::Letter(c) => format!("{c:?}"),
                    Sub::Ellipsis => "...".to_string(),
                };
                return Err(bad(&format!("output label {name} is in no input")));
            }
        }
        Ok(Equation {
            text: text.to_string(),
            inputs,
            output,
        })
    }
}

#[derive(Debug)]
struct Einsum {
    equation: Equation,
}

/// A dimension's label once ellipses are expanded: a letter, or the `k`th ellipsis
/// dimension counted from the right.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Label {
    Letter(char),
    Broadcast(usize),
}

impl Einsum {
    /// Each operand's labels, one per dimension, and the output's.
    fn expand(&self, shapes: &[&[usize]]) -> Result<(Vec<Vec<Label>>, Vec<Label>), OpError> {
        let eq = &self.equation;
        let mut ellipsis_rank = 0;
        let mut labels = Vec::new();
        for (i, (subs, shape)) in eq.inputs.iter().zip(shapes).enumerate() {
            let letters = subs.iter().filter(|s| **s != Sub::Ellipsis).count();
            let has_ellipsis = subs.contains(&Sub::Ellipsis);
            let fits = if has_ellipsis {
                shape.len() >= letters
            } else {
                shape.len() == letters
            };
            if !fits {
                op_bail!(
                    "einsum {:?}: input {i} has shape {} but its subscripts name {letters} dimensions",
                    eq.text,
                    fmt_shape(shape)
                );
            }
            let k = shape.len() - letters;
            ellipsis_rank = ellipsis_rank.max(k);
            labels.push(expand_subs(subs, k));
        }
        let output = expand_subs(&eq.output, ellipsis_rank);
        if ellipsis_rank > 0 && !eq.output.contains(&Sub::Ellipsis) {
            op_bail!(
                "einsum {:?}: the ellipsis stands for {ellipsis_rank} dimensions but the output has no ellipsis",
                eq.text
            );
        }
        Ok((labels, output))
    }
}

fn expand_subs(subs: &[Sub], ellipsis_rank: usize) -> Vec<Label> {
    let mut out = Vec::new();
    for s in subs {
        match s {
            Sub::Letter(c) => out.push(Label::Letter(*c)),
            Sub::Ellipsis => out.extend((0..ellipsis_rank).rev().map(Label::Broadcast)),
        }
    }
    out
}

impl Kernel for Einsum {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let shapes: Vec<&[usize]> = inputs.iter().map(Value::shape).collect();
        let (labels, output) = self.expand(&shapes)?;
        // Every label's size; letters must agree, ellipsis dimensions broadcast.
        let mut sizes: HashMap<Label, (usize, usize)> = HashMap::new();
        for (i, (ls, shape)) in labels.iter().zip(&shapes).enumerate() {
            for (&l, &d) in ls.iter().zip(shape.iter()) {
                match sizes.get(&l).copied() {
                    None => {
                        sizes.insert(l, (d, i));
                    }
                    Some((s, j)) if s != d => {
                        let broadcast = matches!(l, Label::Broadcast(_)) && (s == 1 || d == 1);
                        if !broadcast {
                            op_bail!(
                                "einsum {:?}: {} has size {s} in input {j} {} and {d} in input {i} {}",
                                self.equation.text,
                                label_name(l),
                                fmt_shape(shapes[j]),
                                fmt_shape(shape)
                            );
                        }
                        if s == 1 {
                            sizes.insert(l, (d, i));
                        }
                    }
                    Some(_) => {}
                }
            }
        }
        let mut it = inputs.into_iter();
        let out = match (it.next(), it.next()) {
            (Some(a), None) => unary(a, &labels[0], &output)?,
            (Some(a), Some(b)) => binary(a, &labels[0], b, &labels[1], &output)?,
            _ => op_bail!("einsum needs one or two inputs"),
        };
        Ok(vec![out])
    }
}

fn label_name(l: Label) -> String {
    match l {
        Label::Letter(c) => format!("label {c:?}"),
        Label::Broadcast(k) => format!("ellipsis dimension {k} (from the right)"),
    }
}

/// Sums `x` over the labels `keep` lacks, returning the remaining labels.
fn sum_away(
    x: Value,
    labels: &[Label],
    keep: impl Fn(Label) -> bool,
) -> Result<(Value, Vec<Label>), OpError> {
    let axes: Vec<i64> = (0..labels.len())
        .filter(|&d| !keep(labels[d]))
        .map(|d| d as i64)
        .collect();
    let kept: Vec<Label> = labels.iter().copied().filter(|&l| keep(l)).collect();
    if axes.is_empty() {
        return Ok((x, kept));
    }
    let summed = dispatch_numbers!(x, |t| Value::from(reduce(&t, &axes, false, Reduction::Sum)?), else {
        other => op_bail!("einsum: unsupported dtype {}", other.dtype()),
    });
    Ok((summed, kept))
}

/// `x` with its dimensions, labelled `from`, put in the order `to`.
fn permute(x: Value, from: &[Label], to: &[Label]) -> Result<Value, OpError> {
    let perm: Vec<i64> = to
        .iter()
        .map(|l| from.iter().position(|f| f == l).map(|p| p as i64))
        .collect::<Option<_>>()
        .ok_or_else(|| OpError("einsum: internal label mismatch".into()))?;
    if perm.iter().enumerate().all(|(i, &p)| p == i as i64) {
        return Ok(x);
    }
    Ok(
        dispatch_numbers!(x, |t| Value::from(transpose(&t, &perm)?), else {
            Value::Bool(t) => Value::Bool(transpose(&t, &perm)?),
            other => op_bail!("einsum: unsupported dtype {}", other.dtype()),
        }),
    )
}

fn unary(x: Value, labels: &[Label], output: &[Label]) -> Result<Value, OpError> {
    let (x, kept) = sum_away(x, labels, |l| output.contains(&l))?;
    permute(x, &kept, output)
}

fn binary(
    a: Value,
    la: &[Label],
    b: Value,
    lb: &[Label],
    output: &[Label],
) -> Result<Value, OpError> {
    // Labels only one operand has and the output lacks are summed first.
    let (a, la) = sum_away(a, la, |l| output.contains(&l) || lb.contains(&l))?;
    let (b, lb) = sum_away(b, lb, |l| output.contains(&l) || la.contains(&l))?;
    let size = |x: &Value, labels: &[Label], l: Label| {
        labels
            .iter()
            .position(|&o| o == l)
            .map_or(1, |p| x.shape()[p])
    };
    let pick = |f: &dyn Fn(&Label) -> bool| -> Vec<Label> {
        output.iter().copied().filter(|l| f(l)).collect()
    };
    let batch = pick(&|l| la.contains(l) && lb.contains(l));
    let free_a = pick(&|l| la.contains(l) && !lb.contains(l));
    let free_b = pick(&|l| lb.contains(l) && !la.contains(l));
    let contracted: Vec<Label> = la.iter().copied().filter(|l| !output.contains(l)).collect();

    // Each operand as [batch, free, contracted] or [batch, contracted, free], whichever is
    // already its layout (an adjoint flag instead of a copy).
    let a_plain = [&batch[..], &free_a, &contracted].concat();
    let a_adj = [&batch[..], &contracted, &free_a].concat();
    let adj_x = la != a_plain && la == a_adj;
    let b_plain = [&batch[..], &contracted, &free_b].concat();
    let b_adj = [&batch[..], &free_b, &contracted].concat();
    let adj_y = lb != b_plain && lb == b_adj;

    let product_of = |x: &Value, labels: &[Label], group: &[Label]| -> usize {
        group.iter().map(|&l| size(x, labels, l)).product()
    };
    let (m, k) = (
        product_of(&a, &la, &free_a),
        product_of(&a, &la, &contracted),
    );
    let n = product_of(&b, &lb, &free_b);
    let batch_a: Vec<usize> = batch.iter().map(|&l| size(&a, &la, l)).collect();
    let batch_b: Vec<usize> = batch.iter().map(|&l| size(&b, &lb, l)).collect();
    let mut out_shape: Vec<usize> = batch_a
        .iter()
        .zip(&batch_b)
        .map(|(&x, &y)| x.max(y))
        .collect();
    out_shape.extend(free_a.iter().map(|&l| size(&a, &la, l)));
    out_shape.extend(free_b.iter().map(|&l| size(&b, &lb, l)));

    let with = |batch: &[usize], r: usize, c: usize| [batch, &[r, c]].concat();
    let a = permute(a, &la, if adj_x { &a_adj } else { &a_plain })?.reshape(if adj_x {
        with(&batch_a, k, m)
    } else {
        with(&batch_a, m, k)
    })?;
    let b = permute(b, &lb, if adj_y { &b_adj } else { &b_plain })?.reshape(if adj_y {
        with(&batch_b, n, k)
    } else {
        with(&batch_b, k, n)
    })?;
    let product = BatchMatMul {
        adj_x,
        adj_y,
        broadcast: true,
        folded: Default::default(),
    }
    .run(vec![a, b])?
    .pop()
    .ok_or_else(|| OpError("einsum: no product".into()))?;
    // [batch, m, n] back to the labelled dimensions, then into the output's order.
    let product = product.reshape(out_shape)?;
    let labels = [&batch[..], &free_a, &free_b].concat();
    permute(product, &labels, output)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        (0..n)
            .map(|i| ((i as u64 * 2654435761 + seed * 97) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    /// Reference: loop over every assignment of every label, numpy's broadcasting for the
    /// ellipsis dimensions.
    fn reference(
        eq: &Equation,
        shapes: &[Vec<usize>],
        data: &[Vec<f32>],
    ) -> (Vec<usize>, Vec<f64>) {
        let k = Einsum {
            equation: eq.clone(),
        };
        let refs: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
        let (labels, output) = k.expand(&refs).unwrap_or_default();
        let mut size: HashMap<Label, usize> = HashMap::new();
        for (ls, s) in labels.iter().zip(shapes) {
            for (&l, &d) in ls.iter().zip(s) {
                let e = size.entry(l).or_insert(d);
                *e = (*e).max(d);
            }
        }
        let mut all: Vec<Label> = output.clone();
        for ls in &labels {
            for &l in ls {
                if !all.contains(&l) {
                    all.push(l);
                }
            }
        }
        let out_shape: Vec<usize> = output.iter().map(|l| size[l]).collect();
        let n_out: usize = out_shape.iter().product();
        let mut out = vec![0.0f64; n_out];
        let total: usize = all.iter().map(|l| size[l]).product();
        for flat in 0..total {
            let mut value: HashMap<Label, usize> = HashMap::new();
            let mut rem = flat;
            for l in all.iter().rev() {
                value.insert(*l, rem % size[l]);
                rem /= size[l];
            }
            let mut term = 1.0f64;
            for ((ls, s), d) in labels.iter().zip(shapes).zip(data) {
                let idx = ls.iter().zip(s).fold(0, |acc, (l, &dim)| {
                    acc * dim + if dim == 1 { 0 } else { value[l] }
                });
                term *= f64::from(d[idx]);
            }
            let o = output.iter().fold(0, |acc, l| acc * size[l] + value[l]);
            out[o] += term;
        }
        (out_shape, out)
    }

    #[test]
    fn matches_reference_on_attention_and_dense_equations() -> Result<(), OpError> {
        let cases: &[(&str, &[&[usize]])] = &[
            ("abc,cde->abde", &[&[2, 7, 6], &[6, 3, 4]]),
            ("abcd,cde->abe", &[&[2, 5, 3, 4], &[3, 4, 6]]),
            ("aecd,abcd->acbe", &[&[2, 7, 3, 4], &[2, 5, 3, 4]]),
            ("acbe,aecd->abcd", &[&[2, 3, 5, 7], &[2, 7, 3, 4]]),
            ("BTNH,BFNH->BNFT", &[&[2, 5, 3, 4], &[2, 6, 3, 4]]),
            ("abc,cd->abd", &[&[3, 17, 1], &[1, 7]]),
            ("...b,bc->...c", &[&[2, 3, 5], &[5, 4]]),
            ("...ij,...jk->...ik", &[&[2, 1, 3, 4], &[5, 4, 6]]),
            ("ij->ji", &[&[3, 5]]),
            ("ij->j", &[&[3, 5]]),
            ("ijk->", &[&[2, 3, 4]]),
            ("ij,ij->ij", &[&[3, 4], &[3, 4]]),
            ("i,j->ij", &[&[3], &[4]]),
            ("ij,jk", &[&[3, 4], &[4, 5]]),
            ("bij,bjk->bik", &[&[0, 3, 4], &[0, 4, 2]]),
            ("bij,bjk->bik", &[&[2, 3, 0], &[2, 0, 2]]),
            ("abc,abd->cd", &[&[2, 3, 4], &[2, 3, 5]]),
            ("ab,cb->ac", &[&[17, 33], &[9, 33]]),
            ("ab,bc->ca", &[&[4, 6], &[6, 5]]),
        ];
        for &(text, shapes) in cases {
            let eq = Equation::parse(text).map_err(OpError)?;
            let shapes: Vec<Vec<usize>> = shapes.iter().map(|s| s.to_vec()).collect();
            let data: Vec<Vec<f32>> = shapes
                .iter()
                .enumerate()
                .map(|(i, s)| values(s.iter().product(), i as u64))
                .collect();
            let inputs = shapes
                .iter()
                .zip(&data)
                .map(|(s, d)| Value::new(s.clone(), d.clone()))
                .collect::<Result<Vec<_>, _>>()?;
            let out = Einsum {
                equation: eq.clone(),
            }
            .run(inputs)?;
            let (want_shape, want) = reference(&eq, &shapes, &data);
            assert_eq!(out[0].shape(), want_shape.as_slice(), "{text}");
            let got = out[0].as_f32().ok_or(OpError("dtype".into()))?;
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (f64::from(*g) - w).abs() <= 1e-5 * (1.0 + w.abs()),
                    "{text}: {g} vs {w}"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn bad_equations_fail_at_plan_time() {
        for (text, why) in [
            ("ab,bc->a?", "unexpected character '?'"),
            ("ab,bc,cd->ad", "more than two operands are not supported"),
            (
                "aab->b",
                "label 'a' repeats within an operand (diagonals are not supported)",
            ),
            ("ab->c", "output label 'c' is in no input"),
            ("ab->aa", "an output label repeats"),
            ("a......b->ab", "more than one ellipsis in an operand"),
        ] {
            assert_eq!(
                Equation::parse(text).err(),
                Some(format!("cannot parse einsum equation {text:?}: {why}")),
            );
        }
    }

    #[test]
    fn shapes_that_do_not_fit_name_the_equation_and_both_shapes() -> Result<(), OpError> {
        let k = |text: &str| -> Result<Einsum, OpError> {
            Ok(Einsum {
                equation: Equation::parse(text).map_err(OpError)?,
            })
        };
        let x = Value::new(vec![2, 3, 4], vec![0.0f32; 24])?;
        let w = Value::new(vec![5, 6], vec![0.0f32; 30])?;
        assert_eq!(
            k("abc,cd->abd")?.run(vec![x.clone(), w]).err(),
            Some(OpError(
                "einsum \"abc,cd->abd\": label 'c' has size 4 in input 0 [2,3,4] and 5 in input 1 [5,6]"
                    .into()
            ))
        );
        assert_eq!(
            k("ab,bc->ac")?.run(vec![x.clone(), x.clone()]).err(),
            Some(OpError(
                "einsum \"ab,bc->ac\": input 0 has shape [2,3,4] but its subscripts name 2 dimensions"
                    .into()
            ))
        );
        assert_eq!(
            k("...b,bc->c")?.run(vec![x, Value::new(vec![4, 2], vec![0.0f32; 8])?]).err(),
            Some(OpError(
                "einsum \"...b,bc->c\": the ellipsis stands for 2 dimensions but the output has no ellipsis"
                    .into()
            ))
        );
        Ok(())
    }
}
