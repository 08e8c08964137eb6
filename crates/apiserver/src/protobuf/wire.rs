//! The protobuf wire format, read without a schema: a message is a run of fields, each a
//! varint key (field number and wire type) and a value. Only what the Kubernetes messages
//! use is read; groups (wire types 3 and 4, unused since proto2) are refused.

/// Why bytes are not a protobuf message; the caller names the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum Malformed {
    #[error("it ends inside a field")]
    Truncated,
    #[error("a varint is longer than 10 bytes")]
    LongVarint,
    #[error("field {0} has wire type {1}, which is not supported")]
    WireType(u32, u8),
    #[error("field {0} has the wrong wire type for its type")]
    WrongType(u32),
    #[error("field {0} is not UTF-8")]
    NotUtf8(u32),
}

/// One field's value.
#[derive(Debug, Clone, Copy)]
pub(super) enum Value<'a> {
    Varint(u64),
    Fixed,
    Bytes(&'a [u8]),
}

/// One field: its number and value.
#[derive(Debug, Clone, Copy)]
pub(super) struct Field<'a> {
    pub number: u32,
    pub value: Value<'a>,
}

impl<'a> Field<'a> {
    /// A length-delimited value: bytes, a string or an embedded message.
    pub fn bytes(&self) -> Result<&'a [u8], Malformed> {
        match self.value {
            Value::Bytes(b) => Ok(b),
            _ => Err(Malformed::WrongType(self.number)),
        }
    }

    pub fn string(&self) -> Result<&'a str, Malformed> {
        std::str::from_utf8(self.bytes()?).map_err(|_| Malformed::NotUtf8(self.number))
    }

    /// An int64, int32 or bool (negative numbers are ten-byte two's complement varints).
    pub fn int(&self) -> Result<i64, Malformed> {
        match self.value {
            Value::Varint(v) => Ok(v as i64),
            _ => Err(Malformed::WrongType(self.number)),
        }
    }

    pub fn bool(&self) -> Result<bool, Malformed> {
        Ok(self.int()? != 0)
    }
}

/// The fields of a message in order, as an iterator that stops at the first error.
pub(super) struct Fields<'a> {
    buf: &'a [u8],
    failed: bool,
}

impl<'a> Fields<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Fields { buf, failed: false }
    }

    fn varint(&mut self) -> Result<u64, Malformed> {
        let mut v = 0u64;
        for i in 0..10 {
            let (&b, rest) = self.buf.split_first().ok_or(Malformed::Truncated)?;
            self.buf = rest;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Malformed::LongVarint)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], Malformed> {
        let n = usize::try_from(n).map_err(|_| Malformed::Truncated)?;
        if n > self.buf.len() {
            return Err(Malformed::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn field(&mut self) -> Result<Field<'a>, Malformed> {
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).unwrap_or(u32::MAX);
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => self.take(8).map(|_| Value::Fixed)?,
            2 => {
                let len = self.varint()?;
                Value::Bytes(self.take(len)?)
            }
            5 => self.take(4).map(|_| Value::Fixed)?,
            other => return Err(Malformed::WireType(number, other as u8)),
        };
        Ok(Field { number, value })
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() || self.failed {
            return None;
        }
        let f = self.field();
        self.failed = f.is_err();
        Some(f)
    }
}
