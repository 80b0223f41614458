/**
 * Argument checks shared by every journal and snapshot store. A bad argument is the caller's bug: it
 * throws TypeError or RangeError before anything is touched.
 */

/** Longest persistenceId accepted, in UTF-8 bytes. */
export const MAX_PERSISTENCE_ID_BYTES = 1024;

export function checkPersistenceId(persistenceId: unknown): asserts persistenceId is string {
  if (typeof persistenceId !== 'string') {
    throw new TypeError(`persistenceId must be a string, got ${describe(persistenceId)}`);
  }
  if (persistenceId.length === 0) throw new TypeError('persistenceId must not be empty');
  if (Buffer.byteLength(persistenceId, 'utf8') > MAX_PERSISTENCE_ID_BYTES) {
    throw new RangeError(`persistenceId must be at most ${MAX_PERSISTENCE_ID_BYTES} bytes of UTF-8`);
  }
  if (!persistenceId.isWellFormed()) {
    throw new TypeError('persistenceId must be well-formed unicode (no lone surrogates)');
  }
}

/** An integer >= 1 and <= Number.MAX_SAFE_INTEGER. */
export function checkSequenceNr(value: unknown, name = 'sequenceNr'): asserts value is number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${describe(value)}`);
  if (!Number.isSafeInteger(value)) throw new RangeError(`${name} must be a safe integer, got ${value}`);
  if (value < 1) throw new RangeError(`${name} must be >= 1 (sequence numbers start at 1), got ${value}`);
}

/** An integer >= 0 and <= Number.MAX_SAFE_INTEGER. */
export function checkCount(value: unknown, name: string): asserts value is number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${describe(value)}`);
  if (!Number.isSafeInteger(value)) throw new RangeError(`${name} must be a safe integer, got ${value}`);
  if (value < 0) throw new RangeError(`${name} must be >= 0, got ${value}`);
}

/** Longest projection name accepted by OffsetStores, in UTF-8 bytes. */
export const MAX_PROJECTION_NAME_BYTES = 200;

/** A projection name for an OffsetStore: a non-empty, well-formed string of at most 200 UTF-8 bytes. */
export function checkProjectionName(name: unknown): asserts name is string {
  if (typeof name !== 'string') throw new TypeError(`projectionName must be a string, got ${describe(name)}`);
  if (name.length === 0) throw new TypeError('projectionName must not be empty');
  if (Buffer.byteLength(name, 'utf8') > MAX_PROJECTION_NAME_BYTES) {
    throw new RangeError(`projectionName must be at most ${MAX_PROJECTION_NAME_BYTES} bytes of UTF-8`);
  }
  if (!name.isWellFormed())
    throw new TypeError('projectionName must be well-formed unicode (no lone surrogates)');
}

/** An offset to save: a non-empty string of at most 1024 characters (OffsetStores keep it as given). */
export function checkOffsetToSave(offset: unknown): asserts offset is string {
  if (typeof offset !== 'string') throw new TypeError(`offset must be a string, got ${describe(offset)}`);
  if (offset.length === 0 || offset.length > 1024) {
    throw new TypeError(`offset must be a non-empty string of at most 1024 characters, got ${offset.length}`);
  }
}

export function checkOptionalObject(value: unknown, name: string): void {
  if (value !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw new TypeError(`${name} must be an object when given, got ${describe(value)}`);
  }
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.slice(0, 40))}`;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') {
    return `${typeof value} ${String(value)}`;
  }
  return typeof value;
}
