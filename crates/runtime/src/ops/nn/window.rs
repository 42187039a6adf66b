//! Sliding-window geometry shared by convolutions and pooling, following
//! `GetWindowedOutputSizeVerbose` (tensorflow/core/framework/kernel_shape_util.cc).

use ckpt_graph::Node;

use crate::ops::{node_error, op_bail, OpError};
use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Padding {
    Same,
    Valid,
    /// (before, after) for height and width.
    Explicit([(usize, usize); 2]),
}

/// Strides, dilations and padding of a 2-D NHWC window op.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Window {
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    pub padding: Padding,
}

/// Largest stride, dilation, window or padding accepted from a graph, so that window
/// arithmetic cannot overflow.
const MAX_WINDOW: i64 = 1 << 24;

/// Output size and leading padding along height and width.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Geometry {
    pub out: [usize; 2],
    pub pad_before: [usize; 2],
}

impl Window {
    /// Reads `strides`, `dilations`, `padding`, `explicit_paddings` and `data_format` (NHWC only).
    pub(crate) fn from_node(node: &Node) -> Result<Window, Error> {
        let format = node.attr_string_or("data_format", "NHWC")?;
        if format != "NHWC" {
            return Err(node_error(
                node,
                format!("data_format {format:?} is not supported (only NHWC)"),
            ));
        }
        let strides = spatial(node, "strides", &node.attr_ints("strides")?)?;
        let dilations = spatial(
            node,
            "dilations",
            &node.attr_ints_or("dilations", &[1, 1, 1, 1])?,
        )?;
        let padding = match node.attr_string_or("padding", "")?.as_str() {
            "SAME" => Padding::Same,
            "VALID" => Padding::Valid,
            "EXPLICIT" => {
                let p = node.attr_ints_or("explicit_paddings", &[])?;
                let ok = p.len() == 8
                    && p.iter().all(|&x| (0..=MAX_WINDOW).contains(&x))
                    && p[0] == 0
                    && p[1] == 0
                    && p[6] == 0
                    && p[7] == 0;
                if !ok {
                    return Err(node_error(
                        node,
                        format!("attribute \"explicit_paddings\": invalid {p:?}"),
                    ));
                }
                Padding::Explicit([
                    (p[2] as usize, p[3] as usize),
                    (p[4] as usize, p[5] as usize),
                ])
            }
            other => {
                return Err(node_error(
                    node,
                    format!("attribute \"padding\": unsupported {other:?}"),
                ))
            }
        };
        Ok(Window {
            strides,
            dilations,
            padding,
        })
    }

    /// Geometry for an input of `size` (height, width) and a kernel of `kernel`.
    pub(crate) fn geometry(
        &self,
        size: [usize; 2],
        kernel: [usize; 2],
    ) -> Result<Geometry, OpError> {
        let mut out = [0; 2];
        let mut pad_before = [0; 2];
        for d in 0..2 {
            let (n, k, s, dil) = (
                size[d] as i64,
                kernel[d] as i64,
                self.strides[d] as i64,
                self.dilations[d] as i64,
            );
            let k_eff = (k - 1) * dil + 1;
            let (o, p) = match self.padding {
                Padding::Valid => ((n - k_eff + s) / s, 0),
                Padding::Same => {
                    let o = (n + s - 1) / s;
                    let total = ((o - 1) * s + k_eff - n).max(0);
                    (o, total / 2)
                }
                Padding::Explicit(p) => {
                    let (b, a) = (p[d].0 as i64, p[d].1 as i64);
                    ((n + b + a - k_eff + s) / s, b)
                }
            };
            if o < 0 {
                op_bail!(
                    "computed output size would be negative: input {n}, window {k_eff}, stride {s}"
                );
            }
            out[d] = o as usize;
            pad_before[d] = p as usize;
        }
        Ok(Geometry { out, pad_before })
    }
}

/// The (height, width) entries of a 4-element NHWC list attribute, which must be >= 1 and 1
/// for batch and channels.
fn spatial(node: &Node, name: &str, v: &[i64]) -> Result<[usize; 2], Error> {
    match v {
        [1, h, w, 1] if (1..=MAX_WINDOW).contains(h) && (1..=MAX_WINDOW).contains(w) => {
            Ok([*h as usize, *w as usize])
        }
        _ => Err(node_error(
            node,
            format!("attribute {name:?} must be [1, h, w, 1] with h, w >= 1, got {v:?}"),
        )),
    }
}

/// The (height, width) of a `ksize` attribute.
pub(crate) fn ksize(node: &Node) -> Result<[usize; 2], Error> {
    spatial(node, "ksize", &node.attr_ints("ksize")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(padding: Padding, s: usize, d: usize) -> Window {
        Window {
            strides: [s, s],
            dilations: [d, d],
            padding,
        }
    }

    #[test]
    fn tensorflow_output_sizes() -> Result<(), OpError> {
        // SAME: ceil(in / s), extra padding at the end.
        assert_eq!(
            w(Padding::Same, 1, 1).geometry([28, 28], [5, 5])?,
            Geometry {
                out: [28, 28],
                pad_before: [2, 2]
            }
        );
        assert_eq!(
            w(Padding::Same, 2, 1).geometry([14, 14], [3, 3])?,
            Geometry {
                out: [7, 7],
                pad_before: [0, 0]
            }
        );
        assert_eq!(
            w(Padding::Same, 2, 1).geometry([7, 8], [2, 2])?,
            Geometry {
                out: [4, 4],
                pad_before: [0, 0]
            }
        );
        // VALID: (in - k_eff + s) / s.
        assert_eq!(
            w(Padding::Valid, 2, 1).geometry([28, 27], [2, 2])?.out,
            [14, 13]
        );
        assert_eq!(
            w(Padding::Valid, 1, 2).geometry([7, 7], [3, 3])?.out,
            [3, 3]
        );
        assert_eq!(
            w(Padding::Valid, 1, 1).geometry([2, 2], [4, 4]).err(),
            Some(OpError(
                "computed output size would be negative: input 2, window 4, stride 1".into()
            ))
        );
        // EXPLICIT.
        let e = Padding::Explicit([(1, 2), (0, 0)]);
        assert_eq!(
            w(e, 1, 1).geometry([5, 5], [3, 3])?,
            Geometry {
                out: [6, 3],
                pad_before: [1, 0]
            }
        );
        Ok(())
    }
}
