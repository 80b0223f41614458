import { inspect } from 'node:util';

/**
 * JSON.stringify's replacer for decoded messages and states: Cairn's msgpack serializer restores Dates,
 * Maps, Sets, BigInts and typed arrays, which plain JSON would flatten or throw on. They are written as
 * tagged objects ({"$date": ...}, {"$map": [[k, v], ...]}, ...) so machine output stays lossless enough
 * to read back what was stored.
 */
export function jsonReplacer(this: unknown, key: string, value: unknown): unknown {
  // JSON.stringify has already called Date.prototype.toJSON; the holder still has the Date itself.
  const original = (this as Record<string, unknown>)[key];
  if (original instanceof Date)
    return { $date: Number.isNaN(original.getTime()) ? null : original.toISOString() };
  if (typeof value === 'bigint') return { $bigint: value.toString() };
  if (value instanceof Map) return { $map: [...value.entries()] };
  if (value instanceof Set) return { $set: [...value.values()] };
  if (ArrayBuffer.isView(value)) {
    return { $bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  }
  if (value === undefined) return { $undefined: true };
  if (typeof value === 'number' && !Number.isFinite(value)) return { $number: String(value) };
  return value;
}

/** One value as a JSON text for --json output. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, jsonReplacer);
}

/** One value on one line for people: util.inspect, whole depth, no line breaks. */
export function toText(value: unknown): string {
  return inspect(value, {
    depth: null,
    breakLength: Number.POSITIVE_INFINITY,
    maxArrayLength: 50,
    maxStringLength: 500,
  });
}

/** A timestamp (ms since epoch) as ISO 8601, or "-" when there is none. */
export function isoTime(timestamp: number | undefined): string {
  return timestamp === undefined ? '-' : new Date(timestamp).toISOString();
}

/** Bytes for people: 1.5 MiB. */
export function humanBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Left-aligned columns, for `ls` and `stats`. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
