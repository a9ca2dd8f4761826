//! The few ONNX protobuf messages a head graph needs, written by hand: a protobuf message is a
//! sequence of (field number, wire type, value) records, and a head needs only varints, packed
//! floats, strings and nested messages. Field numbers are those of `onnx.proto` (ONNX 1.x).

/// One protobuf message being written.
#[derive(Default)]
pub struct Message(Vec<u8>);

const VARINT: u64 = 0;
const LENGTH_DELIMITED: u64 = 2;

impl Message {
    pub fn new() -> Message {
        Message::default()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.0.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    fn key(&mut self, field: u64, wire: u64) {
        self.varint(field << 3 | wire);
    }

    /// An integer field (int32, int64, enum); negative values as ten-byte varints.
    pub fn int(mut self, field: u64, value: i64) -> Message {
        self.key(field, VARINT);
        self.varint(value as u64);
        self
    }

    pub fn bytes(mut self, field: u64, bytes: &[u8]) -> Message {
        self.key(field, LENGTH_DELIMITED);
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
        self
    }

    pub fn string(self, field: u64, text: &str) -> Message {
        self.bytes(field, text.as_bytes())
    }

    pub fn message(self, field: u64, inner: Message) -> Message {
        self.bytes(field, &inner.0)
    }

    /// A packed repeated int64 field.
    pub fn ints(self, field: u64, values: &[i64]) -> Message {
        let mut packed = Message::new();
        for &v in values {
            packed.varint(v as u64);
        }
        self.bytes(field, &packed.0)
    }
}

// Field numbers of onnx.proto.
pub mod field {
    pub const MODEL_IR_VERSION: u64 = 1;
    pub const MODEL_PRODUCER_NAME: u64 = 2;
    pub const MODEL_PRODUCER_VERSION: u64 = 3;
    pub const MODEL_GRAPH: u64 = 7;
    pub const MODEL_OPSET_IMPORT: u64 = 8;
    pub const MODEL_METADATA_PROPS: u64 = 14;
    pub const OPSET_DOMAIN: u64 = 1;
    pub const OPSET_VERSION: u64 = 2;
    pub const ENTRY_KEY: u64 = 1;
    pub const ENTRY_VALUE: u64 = 2;
    pub const GRAPH_NODE: u64 = 1;
    pub const GRAPH_NAME: u64 = 2;
    pub const GRAPH_INITIALIZER: u64 = 5;
    pub const GRAPH_INPUT: u64 = 11;
    pub const GRAPH_OUTPUT: u64 = 12;
    pub const NODE_INPUT: u64 = 1;
    pub const NODE_OUTPUT: u64 = 2;
    pub const NODE_NAME: u64 = 3;
    pub const NODE_OP_TYPE: u64 = 4;
    pub const NODE_ATTRIBUTE: u64 = 5;
    pub const ATTRIBUTE_NAME: u64 = 1;
    pub const ATTRIBUTE_I: u64 = 3;
    pub const ATTRIBUTE_INTS: u64 = 8;
    pub const ATTRIBUTE_TYPE: u64 = 20;
    pub const TENSOR_DIMS: u64 = 1;
    pub const TENSOR_DATA_TYPE: u64 = 2;
    pub const TENSOR_NAME: u64 = 8;
    pub const TENSOR_RAW_DATA: u64 = 9;
    pub const VALUE_INFO_NAME: u64 = 1;
    pub const VALUE_INFO_TYPE: u64 = 2;
    pub const TYPE_TENSOR: u64 = 1;
    pub const TENSOR_TYPE_ELEM_TYPE: u64 = 1;
    pub const TENSOR_TYPE_SHAPE: u64 = 2;
    pub const SHAPE_DIM: u64 = 1;
    pub const DIM_VALUE: u64 = 1;
    pub const DIM_PARAM: u64 = 2;
}

/// `TensorProto.DataType.FLOAT`.
pub const FLOAT: i64 = 1;
/// `AttributeProto.AttributeType.INT` and `INTS`.
pub const ATTRIBUTE_INT: i64 = 2;
pub const ATTRIBUTE_INTS: i64 = 7;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_fields_follow_the_wire_format() {
        // The protobuf documentation's examples: field 1 = 150 is 08 96 01.
        assert_eq!(Message::new().int(1, 150).into_bytes(), [0x08, 0x96, 0x01]);
        assert_eq!(
            Message::new().string(2, "testing").into_bytes(),
            [0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g']
        );
        assert_eq!(Message::new().int(1, -1).into_bytes().len(), 11);
        assert_eq!(
            Message::new().ints(4, &[3, 270]).into_bytes(),
            [0x22, 0x03, 0x03, 0x8E, 0x02]
        );
    }
}
