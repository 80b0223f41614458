import { createRequire } from 'node:module';
import * as zlib from 'node:zlib';

// The crc package ships ESM types; its CommonJS build of the bare calculator takes any Uint8Array.
const crcCalculator = createRequire(__filename)('crc/calculators/crc32') as (
  data: Uint8Array,
  previous?: number,
) => number;

/** CRC-32 (ISO-HDLC, the zlib/PNG polynomial) computed by the `crc` package, in JavaScript. */
export function crc32Portable(data: Uint8Array, initial = 0): number {
  // zlib treats 0 as "start"; the crc package wants undefined for that.
  return crcCalculator(data, initial === 0 ? undefined : initial) >>> 0;
}

type ZlibCrc32 = (data: Uint8Array | string, value?: number) => number;
const zlibCrc32 = (zlib as unknown as { crc32?: ZlibCrc32 }).crc32;

/** CRC-32 computed natively by zlib (Node >= 20.15 / 22.2), or undefined where Node lacks it. */
export const crc32Native: ((data: Uint8Array, initial?: number) => number) | undefined = zlibCrc32
  ? // An empty view may have no backing store, and zlib's crc32 answers a NULL buffer with 0 (its
    // "initial value") instead of the running CRC: the CRC of nothing more is `initial` itself.
    (data, initial = 0) => (data.byteLength === 0 ? initial >>> 0 : zlibCrc32(data, initial) >>> 0)
  : undefined;

/**
 * The one CRC-32 every Cairn backend uses for records and snapshot envelopes: zlib's native one where
 * Node has it, the portable one otherwise. Both give the same value; `initial` continues a running CRC.
 */
export const crc32: (data: Uint8Array, initial?: number) => number = crc32Native ?? crc32Portable;

/** Slice-by-16 tables for crc32Range: table k maps a byte to its CRC contribution k bytes further on. */
const TABLES = (() => {
  const t = new Int32Array(256 * 16);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 16; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
})();

/** Below this many bytes crc32Range computes in JavaScript: cheaper than a view plus a native call. */
const RANGE_NATIVE_FROM = 1024;
/** Below this many bytes a byte at a time, which spares the shared DataView (keys, headers). */
const RANGE_WORDS_FROM = 64;

let viewed: ArrayBufferLike | undefined;
let view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));

/**
 * The CRC-32 of `bytes[start, end)`, equal to `crc32(bytes.subarray(start, end), initial)`, without
 * making the view. Reads check a CRC per record (a few hundred bytes each); for those, creating a
 * subarray and crossing into zlib costs more than the arithmetic (measured: 190 bytes, ~270 ns against
 * ~190 ns), so short ranges are computed here and long ones natively.
 */
export function crc32Range(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  if (end - start >= RANGE_NATIVE_FROM) return crc32(bytes.subarray(start, end), initial);
  if (end - start < RANGE_WORDS_FROM) {
    let c = ~initial;
    for (let i = start; i < end; i++) c = TABLES[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
    return ~c >>> 0;
  }
  // Whole words through a DataView (faster than four byte loads each), kept while reads go through
  // the same buffer: a replay checks thousands of records in one chunk.
  if (bytes.buffer !== viewed) {
    viewed = bytes.buffer;
    view = new DataView(bytes.buffer);
  }
  const v = view;
  const t = TABLES;
  let c = ~initial;
  let i = bytes.byteOffset + start;
  const stop = bytes.byteOffset + end;
  for (; i + 16 <= stop; i += 16) {
    const a = v.getInt32(i, true) ^ c;
    const b = v.getInt32(i + 4, true);
    const d = v.getInt32(i + 8, true);
    const e = v.getInt32(i + 12, true);
    c =
      t[3840 + (a & 0xff)]! ^
      t[3584 + ((a >>> 8) & 0xff)]! ^
      t[3328 + ((a >>> 16) & 0xff)]! ^
      t[3072 + (a >>> 24)]! ^
      t[2816 + (b & 0xff)]! ^
      t[2560 + ((b >>> 8) & 0xff)]! ^
      t[2304 + ((b >>> 16) & 0xff)]! ^
      t[2048 + (b >>> 24)]! ^
      t[1792 + (d & 0xff)]! ^
      t[1536 + ((d >>> 8) & 0xff)]! ^
      t[1280 + ((d >>> 16) & 0xff)]! ^
      t[1024 + (d >>> 24)]! ^
      t[768 + (e & 0xff)]! ^
      t[512 + ((e >>> 8) & 0xff)]! ^
      t[256 + ((e >>> 16) & 0xff)]! ^
      t[e >>> 24]!;
  }
  for (; i < stop; i++) c = t[(c ^ v.getUint8(i)) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
