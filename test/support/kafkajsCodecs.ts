/**
 * kafkajs ships gzip only; this registers snappy, lz4 and zstd codecs (over
 * our compression module) the way its codec plugins do. Import for effect.
 */
import { CompressionCodecs, CompressionTypes } from "kafkajs"
import { compress, decompress } from "../../src/protocol/compression.js"

const codec = (id: number) => () => ({
  compress: async (encoder: { buffer: Buffer }) => compress(id, encoder.buffer),
  decompress: async (buffer: Buffer) => decompress(id, buffer)
})

CompressionCodecs[CompressionTypes.Snappy] = codec(2)
CompressionCodecs[CompressionTypes.LZ4] = codec(3)
CompressionCodecs[CompressionTypes.ZSTD] = codec(4)
