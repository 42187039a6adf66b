//! Sliding-window geometry shared by convolutions and pooling, following
//! `GetWindowedOutputSizeVerbose` (tensorflow/core/framework/kernel_shape_util.cc).

use ckpt_graph::Node;

use crate::ops::array::transpose::transpose;
use crate::ops::{fmt_shape, node_error, op_bail, OpError};
use crate::value::{Datum, TensorBuf};
use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Padding {
    Same,
    Valid,
    /// (before, after) for height and width.
    Explicit([(usize, usize); 2]),
}

/// Where the channels of a 4-D image tensor are: last (`NHWC`, TensorFlow's default and the
/// layout the kernels compute in) or second (`NCHW`, as GPU-trained graphs are often written).
/// An `NCHW` op's input is transposed to `NHWC`, computed, and its output transposed back, so
/// the output has the layout the graph declares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Layout {
    #[default]
    Nhwc,
    Nchw,
}

impl Layout {
    /// The node's `data_format` attribute (`NHWC` when absent); other formats are refused.
    pub(crate) fn from_node(node: &Node) -> Result<Layout, Error> {
        match node.attr_string_or("data_format", "NHWC")?.as_str() {
            "NHWC" => Ok(Layout::Nhwc),
            "NCHW" => Ok(Layout::Nchw),
            other => Err(node_error(
                node,
                format!("data_format {other:?} is not supported (NHWC or NCHW)"),
            )),
        }
    }

    /// `x`, a rank-4 tensor in this layout, in NHWC.
    pub(crate) fn to_nhwc<T: Datum + Default>(
        self,
        x: TensorBuf<T>,
        what: &str,
    ) -> Result<TensorBuf<T>, OpError> {
        match self {
            Layout::Nhwc => Ok(x),
            Layout::Nchw => {
                if x.rank() != 4 {
                    op_bail!("{what} must be NCHW (rank 4), got {}", fmt_shape(x.shape()));
                }
                transpose(&x, &[0, 2, 3, 1])
            }
        }
    }

    /// `y`, computed in NHWC, in this layout.
    pub(crate) fn nhwc_to_layout<T: Datum + Default>(
        self,
        y: TensorBuf<T>,
    ) -> Result<TensorBuf<T>, OpError> {
        match self {
            Layout::Nhwc => Ok(y),
            Layout::Nchw => transpose(&y, &[0, 3, 1, 2]),
        }
    }

    /// The (height, width) positions of a 4-element attribute in this layout.
    fn spatial_axes(self) -> [usize; 2] {
        match self {
            Layout::Nhwc => [1, 2],
            Layout::Nchw => [2, 3],
        }
    }
}

/// Strides, dilations and padding of a 2-D window op, as they apply to its input in NHWC.
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
    /// Reads `strides`, `dilations`, `padding` and `explicit_paddings`, whose entries are in
    /// the order of `layout` (the node's `data_format`).
    pub(crate) fn from_node(node: &Node, layout: Layout) -> Result<Window, Error> {
        let strides = spatial(node, "strides", &node.attr_ints("strides")?, layout)?;
        let dilations = spatial(
            node,
            "dilations",
            &node.attr_ints_or("dilations", &[1, 1, 1, 1])?,
            layout,
        )?;
        let padding = match node.attr_string_or("padding", "")?.as_str() {
            "SAME" => Padding::Same,
            "VALID" => Padding::Valid,
            "EXPLICIT" => {
                // (before, after) per dimension, in the layout's order; batch and channels
                // take none.
                let p = node.attr_ints_or("explicit_paddings", &[])?;
                let [hy, wx] = layout.spatial_axes();
                let ok = p.len() == 8
                    && p.iter().all(|&x| (0..=MAX_WINDOW).contains(&x))
                    && (0..4)
                        .filter(|d| *d != hy && *d != wx)
                        .all(|d| p[2 * d] == 0 && p[2 * d + 1] == 0);
                if !ok {
                    return Err(node_error(
                        node,
                        format!("attribute \"explicit_paddings\": invalid {p:?}"),
                    ));
                }
                Padding::Explicit([
                    (p[2 * hy] as usize, p[2 * hy + 1] as usize),
                    (p[2 * wx] as usize, p[2 * wx + 1] as usize),
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

/// The (height, width) entries of a 4-element list attribute in `layout`'s order, which must
/// be >= 1, and 1 for batch and channels.
fn spatial(node: &Node, name: &str, v: &[i64], layout: Layout) -> Result<[usize; 2], Error> {
    let in_range = |x: &i64| (1..=MAX_WINDOW).contains(x);
    match (layout, v) {
        (Layout::Nhwc, [1, h, w, 1]) | (Layout::Nchw, [1, 1, h, w])
            if in_range(h) && in_range(w) =>
        {
            Ok([*h as usize, *w as usize])
        }
        _ => {
            let form = match layout {
                Layout::Nhwc => "[1, h, w, 1]",
                Layout::Nchw => "[1, 1, h, w] (data_format NCHW)",
            };
            Err(node_error(
                node,
                format!("attribute {name:?} must be {form} with h, w >= 1, got {v:?}"),
            ))
        }
    }
}

/// The (height, width) of a `ksize` attribute in `layout`'s order.
pub(crate) fn ksize(node: &Node, layout: Layout) -> Result<[usize; 2], Error> {
    spatial(node, "ksize", &node.attr_ints("ksize")?, layout)
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
