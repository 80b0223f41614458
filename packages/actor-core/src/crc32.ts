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
  ? (data, initial = 0) => zlibCrc32(data, initial) >>> 0
  : undefined;

/**
 * The one CRC-32 every Cairn backend uses for records and snapshot envelopes: zlib's native one where
 * Node has it, the portable one otherwise. Both give the same value; `initial` continues a running CRC.
 */
export const crc32: (data: Uint8Array, initial?: number) => number = crc32Native ?? crc32Portable;
