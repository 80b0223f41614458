import { addExtension, Packr } from 'msgpackr';

/**
 * Turns messages and states into bytes and back. The `id` is stored beside every record and snapshot,
 * so a reader decodes with the serializer that wrote the data, whatever the current default is.
 * Ids 0-99 are reserved for Cairn; pick 100 or above for your own.
 */
export interface Serializer {
  readonly id: number;
  readonly name: string;
  encode(value: unknown): Uint8Array;
  decode(bytes: Uint8Array): unknown;
  /**
   * Optional: decodes `bytes[start, end)` exactly as `decode(bytes.subarray(start, end))` would (and
   * throws where it would), without the view. Journals read events in pages of one buffer; a serializer
   * that decodes in place spares a view (and whatever it caches per source buffer) per event.
   */
  decodeRange?(bytes: Uint8Array, start: number, end: number): unknown;
}

/** Stand-ins for the two values MessagePack cannot tell apart on its own (Map vs object, -0 vs 0). */
class TaggedMap {
  constructor(readonly entries: unknown[]) {}
}
class NegativeZero {}
/** An object with an own "__proto__" key, which assignment while unpacking would turn into its prototype. */
class TaggedObject {
  constructor(readonly entries: unknown[]) {}
}

// Extensions on these private classes only, so other users of msgpackr in the process are unaffected.
addExtension({
  Class: TaggedMap,
  type: 0x4d,
  write: (m: TaggedMap) => m.entries,
  read: (entries: unknown[]) => new Map(entries as [unknown, unknown][]),
});
addExtension({
  Class: TaggedObject,
  type: 0x4f,
  write: (o: TaggedObject) => o.entries,
  read: (entries: unknown[]) => {
    const out: Record<string, unknown> = {};
    for (const [key, value] of entries as [string, unknown][]) {
      Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
    }
    return out;
  },
});
addExtension({
  Class: NegativeZero,
  type: 0x5a,
  write: () => 0,
  read: () => -0,
});

/** A value that cannot round-trip; `path` is filled in as the error unwinds, so the happy path builds no strings. */
class UnserializableValueError extends TypeError {
  readonly path: string[] = [];
  constructor(readonly kind: string) {
    super(kind);
  }
}

function inspectChild(child: unknown, step: string): boolean {
  try {
    return inspect(child);
  } catch (e) {
    if (e instanceof UnserializableValueError) e.path.unshift(step);
    throw e;
  }
}

/**
 * Walks the whole value: throws for what cannot round-trip (functions, symbols, promises, weak collections)
 * instead of letting it be stored as undefined or {}; returns true when it holds a Map or -0, which need
 * tagging before packing.
 */
function inspect(value: unknown): boolean {
  switch (typeof value) {
    case 'number':
      return Object.is(value, -0);
    case 'function':
    case 'symbol':
      throw new UnserializableValueError(`a ${typeof value}`);
    case 'object':
      break;
    default:
      return false;
  }
  if (value === null || ArrayBuffer.isView(value) || value instanceof Date || value instanceof RegExp)
    return false;
  if (value instanceof Promise || value instanceof WeakMap || value instanceof WeakSet) {
    throw new UnserializableValueError(`a ${value.constructor.name}`);
  }
  let tagged = value instanceof Map;
  if (value instanceof Map) {
    for (const [k, v] of value) {
      inspectChild(k, '<map key>');
      inspectChild(v, `.get(${String(k)})`);
    }
  } else if (value instanceof Set) {
    for (const v of value) tagged = inspectChild(v, '<set member>') || tagged;
  } else if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) tagged = inspectChild(value[i], `[${i}]`) || tagged;
  } else if (!(value instanceof Error)) {
    if (Object.hasOwn(value, '__proto__')) tagged = true;
    for (const key in value)
      tagged = inspectChild((value as Record<string, unknown>)[key], `.${key}`) || tagged;
  }
  return tagged;
}

function inspectRoot(value: unknown): boolean {
  try {
    return inspect(value);
  } catch (e) {
    if (!(e instanceof UnserializableValueError)) throw e;
    throw new TypeError(`value${e.path.join('')} is ${e.kind}, which cannot be serialized`);
  }
}

function tag(value: unknown): unknown {
  if (typeof value === 'number') return Object.is(value, -0) ? new NegativeZero() : value;
  if (typeof value !== 'object' || value === null) return value;
  if (value instanceof Map) {
    const entries: unknown[] = [];
    for (const [k, v] of value) entries.push([tag(k), tag(v)]);
    return new TaggedMap(entries);
  }
  if (Array.isArray(value)) return value.map(tag);
  if (value instanceof Set) return new Set([...value].map(tag));
  if (
    ArrayBuffer.isView(value) ||
    value instanceof Date ||
    value instanceof RegExp ||
    value instanceof Error
  ) {
    return value;
  }
  if (Object.hasOwn(value, '__proto__')) {
    return new TaggedObject(
      Object.keys(value).map((key) => [key, tag((value as Record<string, unknown>)[key])]),
    );
  }
  const out: Record<string, unknown> = {};
  for (const key in value) out[key] = tag((value as Record<string, unknown>)[key]);
  return out;
}

/**
 * MessagePack via msgpackr, the default (id 1). Round-trips plain objects and arrays, strings, numbers
 * (including -0, NaN and Infinity), booleans, null, undefined (also inside arrays), Date, Map, Set, BigInt,
 * typed arrays, RegExp and Error. Functions, symbols, promises and weak collections throw a TypeError rather
 * than being stored as something else; cyclic values are not supported. Every encoded value is
 * self-describing (no shared record structures), so any process can decode it.
 */
export class MsgpackSerializer implements Serializer {
  readonly id = 1;
  readonly name = 'msgpack';
  // copyBuffers: binary values come back as copies, not views into the bytes decoded. Journals decode from
  // their read buffers (the file journal's 256 KiB chunks, the LMDB journal's payload arenas): a view would
  // keep the whole buffer alive for as long as the application keeps the message.
  private readonly packr = new Packr({
    useRecords: false,
    moreTypes: true,
    int64AsType: 'bigint',
    copyBuffers: true,
  });

  encode(value: unknown): Uint8Array {
    return this.packr.pack(inspectRoot(value) ? tag(value) : value);
  }

  decode(bytes: Uint8Array): unknown {
    return this.packr.unpack(bytes);
  }

  decodeRange(bytes: Uint8Array, start: number, end: number): unknown {
    // msgpackr reads `end || length`: an empty range must not become the rest of the buffer. Its DataView
    // is cached on `bytes`, once for a whole page. It throws when the value does not end exactly at `end`.
    if (end <= start) return this.packr.unpack(bytes.subarray(start, end));
    this.range.start = start;
    this.range.end = end;
    return this.packr.unpack(bytes, this.range);
  }

  /** Reused: unpack reads it before decoding anything, so a nested decode cannot see another's range. */
  private readonly range = { start: 0, end: 0 };
}

/** JSON (id 2): readable by anything, but Dates come back as strings and Map/Set/BigInt are not supported. */
export class JsonSerializer implements Serializer {
  readonly id = 2;
  readonly name = 'json';

  encode(value: unknown): Uint8Array {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`the JSON serializer cannot encode ${typeof value}`);
    return Buffer.from(text, 'utf8');
  }

  decode(bytes: Uint8Array): unknown {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  }
}

export const msgpackSerializer: Serializer = new MsgpackSerializer();
export const jsonSerializer: Serializer = new JsonSerializer();

/** Serializers known by id, for decoding data written by any of them. */
export class SerializerRegistry {
  private readonly byId = new Map<number, Serializer>();
  private readonly byName = new Map<string, Serializer>();

  constructor(serializers: readonly Serializer[] = [msgpackSerializer, jsonSerializer]) {
    for (const s of serializers) this.register(s);
  }

  register(serializer: Serializer): void {
    if (!Number.isInteger(serializer.id) || serializer.id < 0 || serializer.id > 0xffff) {
      throw new RangeError(`serializer id must be an integer in 0..65535, got ${serializer.id}`);
    }
    const existing = this.byId.get(serializer.id);
    if (existing && existing !== serializer) {
      throw new RangeError(`serializer id ${serializer.id} is taken by "${existing.name}"`);
    }
    this.byId.set(serializer.id, serializer);
    this.byName.set(serializer.name, serializer);
  }

  get(id: number): Serializer | undefined {
    return this.byId.get(id);
  }

  byNameOrId(nameOrId: string | number): Serializer | undefined {
    return typeof nameOrId === 'number' ? this.byId.get(nameOrId) : this.byName.get(nameOrId);
  }
}

export const defaultSerializers = new SerializerRegistry();

/** Resolves a serializer option: an instance, or the name/id of a registered one. Default msgpack. */
export function resolveSerializer(option: Serializer | string | number | undefined): Serializer {
  if (option === undefined) return msgpackSerializer;
  if (typeof option === 'object') {
    defaultSerializers.register(option);
    return option;
  }
  const found = defaultSerializers.byNameOrId(option);
  if (!found) throw new RangeError(`unknown serializer ${JSON.stringify(option)}; use "msgpack" or "json"`);
  return found;
}
