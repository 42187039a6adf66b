//! Encodings checked against bytes TensorFlow 2.21 wrote (docs/format.md §2.10, §3.4, §3.8).

use ckpt_proto::{
    tensor_shape_proto::Dim, tensor_slice_proto::extent::HasLength, tensor_slice_proto::Extent,
    BundleEntryProto, DataType, Message, TensorShapeProto, TensorSliceProto,
};

fn shape(dims: &[i64]) -> Option<TensorShapeProto> {
    Some(TensorShapeProto {
        dim: dims
            .iter()
            .map(|&size| Dim {
                size,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    })
}

#[test]
fn entry_for_float_matrix_matches_tensorflow() {
    // The entry of `W` (float [4,3]) in the docs/format.md §2.10 example.
    let entry = BundleEntryProto {
        dtype: DataType::DtFloat as i32,
        shape: shape(&[4, 3]),
        size: 48,
        crc32c: 0x8d6a_c468,
        ..Default::default()
    };
    let expected = [
        0x08, 0x01, 0x12, 0x08, 0x12, 0x02, 0x08, 0x04, 0x12, 0x02, 0x08, 0x03, 0x28, 0x30, 0x35,
        0x68, 0xc4, 0x6a, 0x8d,
    ];
    assert_eq!(entry.encode_to_vec(), expected);
    assert_eq!(BundleEntryProto::decode(&expected[..]).ok(), Some(entry));
}

#[test]
fn scalar_shape_is_present_but_empty() {
    // `step`: int64 scalar at offset 70, 8 bytes.
    let entry = BundleEntryProto {
        dtype: DataType::DtInt64 as i32,
        shape: shape(&[]),
        offset: 70,
        size: 8,
        crc32c: 0x119f_d7bb,
        ..Default::default()
    };
    let expected = [
        0x08, 0x09, 0x12, 0x00, 0x20, 0x46, 0x28, 0x08, 0x35, 0xbb, 0xd7, 0x9f, 0x11,
    ];
    assert_eq!(entry.encode_to_vec(), expected);
}

#[test]
fn zero_dimension_is_an_empty_dim_message() {
    let encoded = shape(&[0, 3]).unwrap_or_default().encode_to_vec();
    assert_eq!(encoded, [0x12, 0x00, 0x12, 0x02, 0x08, 0x03]);
}

#[test]
fn slice_with_full_extent_leaves_fields_out() {
    // Rows 2..4 of a [6,2] variable with the column dimension full.
    let slice = TensorSliceProto {
        extent: vec![
            Extent {
                start: 2,
                has_length: Some(HasLength::Length(2)),
            },
            Extent {
                start: 0,
                has_length: None,
            },
        ],
    };
    assert_eq!(
        slice.encode_to_vec(),
        [0x0a, 0x04, 0x08, 0x02, 0x10, 0x02, 0x0a, 0x00]
    );
}

#[test]
fn unknown_dimension_is_a_ten_byte_varint() {
    let encoded = shape(&[-1]).unwrap_or_default().encode_to_vec();
    assert_eq!(
        encoded,
        [0x12, 0x0b, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
    );
}
