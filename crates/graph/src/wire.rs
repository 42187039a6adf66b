//! Splitting a serialized protobuf message at one of its top-level fields, so that the nodes
//! of a large GraphDef are decoded one at a time into [`Node`](crate::Node)s instead of all
//! at once. A decoded `NodeDef` costs about a kilobyte (its attribute map's B-tree leaf
//! alone reserves room for eleven entries); holding a million of them beside the graph made
//! a 1-million-node graph take gigabytes.
//!
//! Only the top level is walked here, by the protobuf wire format
//! (<https://protobuf.dev/programming-guides/encoding/>): a field is a varint key
//! `number << 3 | wire_type` followed by a varint (type 0), 8 bytes (type 1), a varint
//! length and that many bytes (type 2) or 4 bytes (type 5). Everything inside a field is
//! left to prost.

/// The payloads of every occurrence of the length-delimited field `number` in `bytes`, in
/// order, and the bytes of all other fields, concatenated in order (a valid encoding of the
/// same message without that field, since protobuf merges fields by concatenation).
///
/// `None` when the walk cannot vouch for the result: malformed framing, the deprecated group
/// wire types, field number 0, or field `number` with a wire type other than
/// length-delimited. The caller then decodes the whole message with prost, which gives
/// prost's own error (or result) for such input.
pub(crate) fn split_field(bytes: &[u8], number: u64) -> Option<(Vec<&[u8]>, Vec<u8>)> {
    let mut found = Vec::new();
    let mut rest = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let start = pos;
        let key = varint(bytes, &mut pos)?;
        let (field, wire_type) = (key >> 3, key & 7);
        if field == 0 {
            return None;
        }
        let payload_start;
        match wire_type {
            0 => {
                varint(bytes, &mut pos)?;
                payload_start = pos;
            }
            1 | 5 => {
                let width = if wire_type == 1 { 8 } else { 4 };
                payload_start = pos;
                pos = pos.checked_add(width).filter(|&end| end <= bytes.len())?;
            }
            2 => {
                let len = usize::try_from(varint(bytes, &mut pos)?).ok()?;
                payload_start = pos;
                pos = pos.checked_add(len).filter(|&end| end <= bytes.len())?;
            }
            _ => return None,
        }
        if field == number {
            if wire_type != 2 {
                return None;
            }
            found.push(&bytes[payload_start..pos]);
        } else {
            rest.extend_from_slice(&bytes[start..pos]);
        }
    }
    Some((found, rest))
}

/// Reads a base-128 varint of at most 10 bytes at `*pos`, advancing it.
fn varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in 0..10 {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << (7 * shift);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use ckpt_proto::attr_value::Value;
    use ckpt_proto::{AttrValue, GraphDef, Message, NodeDef, VersionDef};

    fn graph() -> GraphDef {
        let node = |name: &str| NodeDef {
            name: name.into(),
            op: "Const".into(),
            attr: [(
                "value".to_owned(),
                AttrValue {
                    value: Some(Value::I(-3)),
                },
            )]
            .into(),
            ..NodeDef::default()
        };
        GraphDef {
            node: vec![node("a"), node("b"), node("c")],
            versions: Some(VersionDef {
                producer: 2474,
                min_consumer: 12,
                bad_consumers: vec![],
            }),
            ..GraphDef::default()
        }
    }

    #[test]
    fn splits_nodes_from_the_other_fields() -> Result<(), prost::DecodeError> {
        let def = graph();
        let bytes = def.encode_to_vec();
        let Some((nodes, rest)) = split_field(&bytes, 1) else {
            panic!("split_field refused a valid GraphDef");
        };
        let decoded = nodes
            .iter()
            .map(|b| NodeDef::decode(*b))
            .collect::<Result<Vec<NodeDef>, _>>()?;
        assert_eq!(decoded, def.node);
        let others = GraphDef::decode(rest.as_slice())?;
        assert!(others.node.is_empty());
        assert_eq!(others.versions, def.versions);
        Ok(())
    }

    #[test]
    fn refuses_what_it_cannot_vouch_for() {
        let bytes = graph().encode_to_vec();
        // Truncated anywhere inside the last node: its length runs past the end.
        assert!(split_field(&bytes[..bytes.len() - 1], 1).is_none());
        // Field 1 as a varint, a group start, field number 0, an unterminated varint.
        assert!(split_field(&[0x08, 0x01], 1).is_none());
        assert!(split_field(&[0x0b], 1).is_none());
        assert!(split_field(&[0x00, 0x00], 1).is_none());
        assert!(split_field(&[0x1a, 0xff], 1).is_none());
        assert!(split_field(&[0xff; 11], 1).is_none());
        // A varint length past usize or the end.
        assert!(split_field(&[0x12, 0xff, 0xff, 0xff, 0xff, 0x0f], 1).is_none());
        // Nothing at all is a message with no fields.
        assert_eq!(split_field(&[], 1), Some((vec![], vec![])));
    }
}
