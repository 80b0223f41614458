import { addExtension, Packr } from 'msgpackr';
import { DELETION_MARKER_SERIALIZER_ID } from './deletion';

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

/** An instance of a registered class on its way to bytes: the class's registered name and its data. */
class TaggedInstance {
  constructor(
    readonly name: string,
    readonly data: unknown,
  ) {}
}

/**
 * The classes of the serializer decoding right now. msgpackr's extensions are process-wide, so the one
 * extension below stays neutral and asks whoever is decoding (unpack is synchronous: exactly one at a time).
 */
let decodingClasses: ClassRegistry | undefined;

addExtension({
  Class: TaggedInstance,
  type: 0x43,
  write: (t: TaggedInstance) => [t.name, t.data],
  read: ([name, data]: [string, unknown]) => {
    if (!decodingClasses) throw new TypeError(`an instance of class "${name}" outside a Cairn serializer`);
    return decodingClasses.revive(name, data);
  },
});

/**
 * A class the msgpack serializer stores and restores as itself. By default its own enumerable
 * properties are stored, and restoring creates an object with the class's prototype (the constructor is
 * not called) holding them; `write`/`read` replace both when a class needs more (private fields, say).
 */
export interface SerializableClass<T = object> {
  readonly class: abstract new (...args: never[]) => T;
  /** Stored with every instance; must stay the same for as long as data written with it exists. Default: the class's name. */
  readonly name?: string;
  /** What to store for an instance (any serializable value). Default: its own enumerable properties. */
  readonly write?: (instance: T) => unknown;
  /** Rebuilds an instance from what `write` stored. */
  readonly read?: (data: unknown) => T;
}

/** A serializer's registered classes, by constructor (to write) and by name (to read). */
class ClassRegistry {
  private readonly byClass = new Map<
    unknown,
    Required<Pick<SerializableClass, 'name'>> & SerializableClass
  >();
  private readonly byName = new Map<string, SerializableClass & { name: string }>();

  constructor(classes: ReadonlyArray<SerializableClass | (abstract new (...args: never[]) => object)>) {
    for (const entry of classes) {
      const spec: SerializableClass =
        typeof entry === 'function' ? { class: entry as SerializableClass['class'] } : entry;
      if (typeof spec?.class !== 'function') {
        throw new TypeError('every entry of classes must be a class or { class, name?, write?, read? }');
      }
      const name = spec.name ?? spec.class.name;
      if (!name) throw new TypeError('an anonymous class needs a name: { class, name }');
      if (this.byName.has(name)) throw new TypeError(`two classes are registered under the name "${name}"`);
      if ((spec.write === undefined) !== (spec.read === undefined)) {
        throw new TypeError(`class "${name}": give both write and read, or neither`);
      }
      const full = { ...spec, name };
      this.byClass.set(spec.class, full);
      this.byName.set(name, full);
    }
  }

  get size(): number {
    return this.byClass.size;
  }

  /** The registration of `value`'s exact class, if any. */
  of(value: object): (SerializableClass & { name: string }) | undefined {
    return this.byClass.get(value.constructor);
  }

  tag(
    value: object,
    entry: SerializableClass & { name: string },
    tagData: (v: unknown) => unknown,
  ): TaggedInstance {
    const data = entry.write ? entry.write(value) : { ...value };
    return new TaggedInstance(entry.name, tagData(data));
  }

  revive(name: string, data: unknown): unknown {
    const entry = this.byName.get(name);
    if (!entry) {
      throw new TypeError(
        `the data holds an instance of class "${name}", which is not registered with this serializer ` +
          '(new MsgpackSerializer({ classes: [...] }))',
      );
    }
    if (entry.read) return entry.read(data);
    return Object.assign(Object.create(entry.class.prototype), data);
  }
}

const NO_CLASSES = new ClassRegistry([]);

/** A value that cannot round-trip; `path` is filled in as the error unwinds, so the happy path builds no strings. */
class UnserializableValueError extends TypeError {
  readonly path: string[] = [];
  constructor(readonly kind: string) {
    super(kind);
  }
}

function inspectChild(child: unknown, step: string, classes: ClassRegistry): boolean {
  try {
    return inspect(child, classes);
  } catch (e) {
    if (e instanceof UnserializableValueError) e.path.unshift(step);
    throw e;
  }
}

/** Prototypes whose instances msgpackr itself restores as they were. */
function isBuiltInObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return (
    proto === Object.prototype ||
    proto === null ||
    Array.isArray(value) ||
    value instanceof Map ||
    value instanceof Set ||
    value instanceof Date ||
    value instanceof RegExp ||
    ArrayBuffer.isView(value) ||
    // Error subclasses come back as the Error class msgpackr knows; their type is the message's concern.
    value instanceof Error
  );
}

/**
 * Walks the whole value: throws for what cannot round-trip (functions, symbols, promises, weak collections,
 * instances of classes not registered with the serializer) instead of letting it be stored as undefined,
 * {} or a plain object; returns true when it holds a Map, -0, or a registered class's instance, which need
 * tagging before packing.
 */
function inspect(value: unknown, classes: ClassRegistry): boolean {
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
  if (!isBuiltInObject(value)) {
    const entry = classes.of(value);
    if (!entry) {
      const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
      throw new UnserializableValueError(
        `an instance of class ${typeof name === 'string' && name ? name : '(anonymous)'}, which this ` +
          'serializer would restore as a plain object; register the class (new MsgpackSerializer({ classes: [...] })) ' +
          'or store plain data',
      );
    }
    if (!entry.write) {
      for (const key in value) inspectChild((value as Record<string, unknown>)[key], `.${key}`, classes);
    }
    return true;
  }
  let tagged = value instanceof Map;
  if (value instanceof Map) {
    for (const [k, v] of value) {
      inspectChild(k, '<map key>', classes);
      inspectChild(v, `.get(${String(k)})`, classes);
    }
  } else if (value instanceof Set) {
    for (const v of value) tagged = inspectChild(v, '<set member>', classes) || tagged;
  } else if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) tagged = inspectChild(value[i], `[${i}]`, classes) || tagged;
  } else if (!(value instanceof Error)) {
    if (Object.hasOwn(value, '__proto__')) tagged = true;
    for (const key in value)
      tagged = inspectChild((value as Record<string, unknown>)[key], `.${key}`, classes) || tagged;
  }
  return tagged;
}

function inspectRoot(value: unknown, classes: ClassRegistry): boolean {
  try {
    return inspect(value, classes);
  } catch (e) {
    if (!(e instanceof UnserializableValueError)) throw e;
    throw new TypeError(`value${e.path.join('')} is ${e.kind}, which cannot be serialized`);
  }
}

function tag(value: unknown, classes: ClassRegistry): unknown {
  if (typeof value === 'number') return Object.is(value, -0) ? new NegativeZero() : value;
  if (typeof value !== 'object' || value === null) return value;
  const again = (v: unknown) => tag(v, classes);
  if (value instanceof Map) {
    const entries: unknown[] = [];
    for (const [k, v] of value) entries.push([again(k), again(v)]);
    return new TaggedMap(entries);
  }
  if (Array.isArray(value)) return value.map(again);
  if (value instanceof Set) return new Set([...value].map(again));
  if (
    ArrayBuffer.isView(value) ||
    value instanceof Date ||
    value instanceof RegExp ||
    value instanceof Error
  ) {
    return value;
  }
  const entry = isBuiltInObject(value) ? undefined : classes.of(value);
  if (entry) return classes.tag(value, entry, again);
  if (Object.hasOwn(value, '__proto__')) {
    return new TaggedObject(
      Object.keys(value).map((key) => [key, again((value as Record<string, unknown>)[key])]),
    );
  }
  const out: Record<string, unknown> = {};
  for (const key in value) out[key] = again((value as Record<string, unknown>)[key]);
  return out;
}

/** Options of `new MsgpackSerializer(...)`. */
export interface MsgpackSerializerOptions {
  /**
   * Classes whose instances are stored and restored as themselves (see SerializableClass). Instances of
   * any other class are refused (a TypeError; the journal rejects the write with WriteRejectedError)
   * rather than coming back as plain objects. Default none. Every process reading the data must
   * register the same classes under the same names.
   */
  readonly classes?: ReadonlyArray<SerializableClass | (abstract new (...args: never[]) => object)>;
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
  private readonly classes: ClassRegistry;

  constructor(options: MsgpackSerializerOptions = {}) {
    this.classes = options.classes ? new ClassRegistry(options.classes) : NO_CLASSES;
  }

  encode(value: unknown): Uint8Array {
    return this.packr.pack(inspectRoot(value, this.classes) ? tag(value, this.classes) : value);
  }

  decode(bytes: Uint8Array): unknown {
    return this.withClasses(() => this.packr.unpack(bytes));
  }

  decodeRange(bytes: Uint8Array, start: number, end: number): unknown {
    // msgpackr reads `end || length`: an empty range must not become the rest of the buffer. Its DataView
    // is cached on `bytes`, once for a whole page. It throws when the value does not end exactly at `end`.
    if (end <= start) return this.decode(bytes.subarray(start, end));
    this.range.start = start;
    this.range.end = end;
    return this.withClasses(() => this.packr.unpack(bytes, this.range));
  }

  private withClasses<T>(decode: () => T): T {
    const outer = decodingClasses;
    decodingClasses = this.classes;
    try {
      return decode();
    } finally {
      decodingClasses = outer;
    }
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
    if (serializer.id === DELETION_MARKER_SERIALIZER_ID) {
      throw new RangeError(
        `serializer id ${DELETION_MARKER_SERIALIZER_ID} is reserved for deletion markers; pick 100 or above`,
      );
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

/**
 * The built-in serializers (msgpack, json), by name and id. Never changed by opening a store: each
 * journal and snapshot store keeps its own registry (see serializersFor), so two stores may each use
 * their own serializer under the same id.
 */
export const defaultSerializers: Pick<SerializerRegistry, 'get' | 'byNameOrId'> = new SerializerRegistry();

/** Resolves a serializer option: an instance, or the name/id of a built-in one. Default msgpack. */
export function resolveSerializer(option: Serializer | string | number | undefined): Serializer {
  if (option === undefined) return msgpackSerializer;
  if (typeof option === 'object') {
    new SerializerRegistry([]).register(option); // validates the id
    return option;
  }
  const found = defaultSerializers.byNameOrId(option);
  if (!found) throw new RangeError(`unknown serializer ${JSON.stringify(option)}; use "msgpack" or "json"`);
  return found;
}

/**
 * One store's serializers for decoding: the one it writes with, and the built-ins for data written
 * with them earlier; the store's own wins an id it shares with a built-in (a msgpack serializer with
 * registered classes is still id 1). Nothing is shared between stores or kept process-wide.
 */
export function serializersFor(own: Serializer): SerializerRegistry {
  return new SerializerRegistry([own, ...[msgpackSerializer, jsonSerializer].filter((s) => s.id !== own.id)]);
}
