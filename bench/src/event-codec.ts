import { Packr } from 'msgpackr';

/**
 * The codec of the peers that store bytes (raw-fs, better-sqlite3, classic-level): self-describing
 * MessagePack, the same settings as Cairn's default serializer, so encode/decode costs compare.
 */
const packr = new Packr({ useRecords: false });

export function encodeValue(value: unknown): Buffer {
  return packr.pack(value);
}

export function decodeValue(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}
