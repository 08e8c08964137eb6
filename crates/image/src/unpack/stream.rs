//! The layer's byte stream: decompression, the diff ID over the uncompressed tar, and the
//! bound on its length.
//!
//! Reading goes compressed reader → decoder → [`Hashing`] → a large `BufReader` → the tar
//! parser. The hash sits below the buffer so it sees every uncompressed byte exactly once,
//! including whatever follows the tar's end blocks once the caller drains the stream.

use std::io::{self, BufReader, Read};

use oci::{Compression, Digest, Digester};

/// Buffer between the compressed source and the decoder.
const INPUT_BUFFER: usize = 64 << 10;
/// Buffer between the decoder and the tar parser; the tar parser reads 512-byte headers.
pub(crate) const TAR_BUFFER: usize = 256 << 10;

/// The decoder for one compression.
pub(crate) enum Decoder<R: Read> {
    None(R),
    Gzip(Box<flate2::bufread::MultiGzDecoder<BufReader<R>>>),
    Zstd(Box<zstd::Decoder<'static, BufReader<R>>>),
}

impl<R: Read> Decoder<R> {
    pub(crate) fn new(compressed: R, compression: Compression) -> io::Result<Self> {
        Ok(match compression {
            Compression::None => Decoder::None(compressed),
            Compression::Gzip => {
                let input = BufReader::with_capacity(INPUT_BUFFER, compressed);
                Decoder::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(input)))
            }
            Compression::Zstd => {
                let input = BufReader::with_capacity(INPUT_BUFFER, compressed);
                Decoder::Zstd(Box::new(zstd::Decoder::with_buffer(input)?))
            }
        })
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::None(r) => r.read(buf),
            Decoder::Gzip(r) => r.read(buf),
            Decoder::Zstd(r) => r.read(buf),
        }
    }
}

/// Hashes and counts what passes through, and stops with an error past `limit` bytes.
pub(crate) struct Hashing<R> {
    inner: R,
    digester: Digester,
    limit: u64,
    /// Set when the limit stopped the stream, so the caller can tell it from a read error
    /// after the tar parser has wrapped the error in its own.
    pub(crate) limit_hit: bool,
}

impl<R: Read> Hashing<R> {
    pub(crate) fn new(inner: R, limit: u64) -> Self {
        Hashing {
            inner,
            digester: Digester::new(),
            limit,
            limit_hit: false,
        }
    }

    pub(crate) fn bytes_read(&self) -> u64 {
        self.digester.written()
    }

    pub(crate) fn finish(self) -> Digest {
        self.digester.finish()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digester.update(&buf[..n]);
        if self.digester.written() > self.limit {
            self.limit_hit = true;
            return Err(io::Error::other(
                "uncompressed layer exceeds the size limit",
            ));
        }
        Ok(n)
    }
}

/// The full reader stack handed to the tar parser.
pub(crate) type TarSource<R> = BufReader<Hashing<Decoder<R>>>;

pub(crate) fn tar_source<R: Read>(
    compressed: R,
    compression: Compression,
    limit: u64,
) -> io::Result<TarSource<R>> {
    let decoder = Decoder::new(compressed, compression)?;
    Ok(BufReader::with_capacity(
        TAR_BUFFER,
        Hashing::new(decoder, limit),
    ))
}
