//! Neural-network ops: activations, softmax, convolutions, pooling, batch norm, arg-max.

pub(crate) mod activation;
pub(crate) mod arg_minmax;
pub(crate) mod batch_norm;
pub(crate) mod conv2d;
pub(crate) mod conv_direct;
pub(crate) mod depthwise;
pub(crate) mod fold_batch_norm;
pub(crate) mod layer_norm;
pub(crate) mod pool;
pub(crate) mod softmax;
pub(crate) mod top_k;
pub(crate) mod vmath;
pub(crate) mod window;
