//! `Range(start, limit, delta)`: a 1-D sequence, in the dtype of its inputs.

use ckpt_graph::Node;

use crate::ops::{kernel, op_bail, take_inputs, BuildCtx, Built, FnKernel, OpError};
use crate::value::{dispatch_numbers, Num, TensorBuf};
use crate::{DType, Error, Value};

pub(crate) fn build(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(FnKernel(|inputs| {
        let [start, limit, delta] = take_inputs(inputs)?;
        let unsupported = || {
            OpError(format!(
                "start, limit and delta must share a numeric dtype, got {}, {} and {}",
                start.dtype(),
                limit.dtype(),
                delta.dtype()
            ))
        };
        // TensorFlow's Range has no uint8 kernel.
        if start.dtype() == DType::UInt8 {
            return Err(unsupported());
        }
        let values = (&start, &limit, &delta);
        let out = dispatch_numbers!(values, |s, l, d| Value::from(range(s, l, d)?), else {
            _ => return Err(unsupported()),
        });
        Ok(vec![out])
    }))
}

/// Above this many elements a range is refused (its size comes from the inputs alone).
const MAX_RANGE: usize = 1 << 28;

fn range<T: Num>(
    start: &TensorBuf<T>,
    limit: &TensorBuf<T>,
    delta: &TensorBuf<T>,
) -> Result<TensorBuf<T>, OpError> {
    let (&[s], &[l], &[d]) = (start.data(), limit.data(), delta.data()) else {
        op_bail!("start, limit and delta must be scalars");
    };
    if d == T::ZERO {
        op_bail!("requires delta != 0");
    }
    let (sf, lf, df) = (s.as_f64(), l.as_f64(), d.as_f64());
    if (df > 0.0 && sf > lf) || (df < 0.0 && sf < lf) {
        op_bail!(
            "requires start <= limit when delta > 0 (and >= when delta < 0): {sf}, {lf}, {df}"
        );
    }
    let size = if T::IS_FLOAT {
        ((lf - sf) / df).abs().ceil()
    } else {
        ((lf - sf).abs() + df.abs() - 1.0).div_euclid(df.abs())
    };
    if !(0.0..=MAX_RANGE as f64).contains(&size) {
        op_bail!("range of {size} elements is too large");
    }
    let n = size as usize;
    let mut data = Vec::with_capacity(n);
    let mut v = s;
    for _ in 0..n {
        data.push(v);
        v = v + d;
    }
    Ok(TensorBuf::from_parts(vec![n], data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t<T>(x: T) -> TensorBuf<T> {
        TensorBuf::from_parts(vec![], vec![x])
    }

    #[test]
    fn ranges() -> Result<(), OpError> {
        assert_eq!(range(&t(0i32), &t(5), &t(2))?.data(), &[0, 2, 4]);
        assert_eq!(range(&t(5i64), &t(0), &t(-2))?.data(), &[5, 3, 1]);
        assert_eq!(
            range(&t(0.0f32), &t(1.0), &t(0.25))?.data(),
            &[0.0, 0.25, 0.5, 0.75]
        );
        assert_eq!(range(&t(3i32), &t(3), &t(1))?.len(), 0);
        assert_eq!(
            range(&t(0i32), &t(5), &t(0)).err(),
            Some(OpError("requires delta != 0".into()))
        );
        assert_eq!(
            range(&t(5i32), &t(0), &t(1)).err(),
            Some(OpError(
                "requires start <= limit when delta > 0 (and >= when delta < 0): 5, 0, 1".into()
            ))
        );
        assert_eq!(
            range(&t(0i64), &t(i64::MAX), &t(1)).err(),
            Some(OpError(
                "range of 9223372036854776000 elements is too large".into()
            ))
        );
        Ok(())
    }
}
