/**
 * Cairn's error catalogue. Every class extends PersistenceError and carries a stable string `code`;
 * codes will not change between major versions, messages may. Check with `isPersistenceError(e, code)`
 * rather than `instanceof`, so the check holds across duplicate installs of this package.
 *
 * | code                         | class                       | meaning                                                  |
 * |------------------------------|-----------------------------|----------------------------------------------------------|
 * | ERR_JOURNAL_CLOSED           | JournalClosedError          | the journal was closed                                   |
 * | ERR_SNAPSHOT_STORE_CLOSED    | SnapshotStoreClosedError    | the snapshot store was closed                            |
 * | ERR_SEQUENCE_CONFLICT        | SequenceConflictError       | expectedSequenceNr did not match; nothing was written    |
 * | ERR_JOURNAL_LOCKED           | JournalLockedError          | another process holds the directory's lock               |
 * | ERR_JOURNAL_CORRUPTED        | JournalCorruptedError       | a stored event failed its checksum or cannot be decoded  |
 * | ERR_SNAPSHOT_CORRUPTED       | SnapshotCorruptedError      | a stored snapshot failed its checksum or envelope        |
 * | ERR_RECOVERY_FAILED          | RecoveryFailedError         | an actor could not rebuild its state                     |
 * | ERR_CONFIG                   | ConfigError                 | the configuration or open() options have problems (all listed) |
 * | ERR_WRITE_REJECTED           | WriteRejectedError          | the write was refused before storage (e.g. unserializable); nothing stored |
 * | ERR_STORAGE                  | StorageError                | storage failed, or the outcome of a write is unknown     |
 * | ERR_ASK_TIMEOUT              | AskTimeoutError             | an ask got no reply in time                              |
 * | ERR_ACTOR_STOPPED            | ActorStoppedError           | the actor stopped before it could handle the command     |
 * | ERR_READ_ONLY                | ReadOnlyError               | a write on a journal or store opened read-only; nothing written |
 * | ERR_STASH_OVERFLOW           | StashOverflowError          | an actor's stash was full; the command was not taken     |
 * | ERR_DUPLICATE_PERSISTENCE_ID | DuplicatePersistenceIdError | spawn of an id that already has a live actor             |
 * | ERR_REPAIR_REFUSED           | RepairRefusedError          | a repair found nothing to cut back; nothing changed      |
 * | ERR_PROJECTION_RUNNING       | ProjectionRunningError      | a projection of that name already runs; nothing started  |
 * | ERR_PROJECTION_FAILED        | ProjectionFailedError       | a projection gave up on one event; its offset is kept    |
 * | ERR_UNKNOWN_ENTITY_KIND      | UnknownEntityKindError      | entityRef named a kind never registered; nothing sent    |
 * | ERR_DUPLICATE_ENTITY_KIND    | DuplicateEntityKindError    | registerEntity of a kind already registered; nothing changed |
 * | ERR_LEASE_HELD               | LeaseHeldError              | another process holds the id's exclusive lease; nothing started |
 * | ERR_LEASE_LOST               | LeaseLostError              | this process's lease passed to another holder; nothing written |
 * | ERR_STORE_MISMATCH           | StoreMismatchError          | the directory holds another backend's data; nothing opened or written |
 * | ERR_BACKPRESSURE             | BackpressureError           | too much is waiting to be committed (maxPendingEvents/Bytes); nothing stored |
 * | ERR_DISK_LIMIT               | DiskLimitError              | the store reached its maxDiskBytes; nothing stored        |
 *
 * The list is closed: `PersistenceErrorCode` is exactly PERSISTENCE_ERROR_CODES, so a misspelt code does
 * not compile. A provider that needs a new code adds it here (and to the README's table).
 */

/** Every code a Cairn PersistenceError can carry. */
export const PERSISTENCE_ERROR_CODES = [
  'ERR_JOURNAL_CLOSED',
  'ERR_SNAPSHOT_STORE_CLOSED',
  'ERR_SEQUENCE_CONFLICT',
  'ERR_JOURNAL_LOCKED',
  'ERR_JOURNAL_CORRUPTED',
  'ERR_SNAPSHOT_CORRUPTED',
  'ERR_RECOVERY_FAILED',
  'ERR_CONFIG',
  'ERR_WRITE_REJECTED',
  'ERR_STORAGE',
  'ERR_ASK_TIMEOUT',
  'ERR_ACTOR_STOPPED',
  'ERR_READ_ONLY',
  'ERR_STASH_OVERFLOW',
  'ERR_DUPLICATE_PERSISTENCE_ID',
  'ERR_REPAIR_REFUSED',
  'ERR_PROJECTION_RUNNING',
  'ERR_PROJECTION_FAILED',
  'ERR_LEASE_HELD',
  'ERR_LEASE_LOST',
  'ERR_STORE_MISMATCH',
  'ERR_BACKPRESSURE',
  'ERR_DISK_LIMIT',
  'ERR_UNKNOWN_ENTITY_KIND',
  'ERR_DUPLICATE_ENTITY_KIND',
] as const;

export type PersistenceErrorCode = (typeof PERSISTENCE_ERROR_CODES)[number];

const PERSISTENCE_ERROR = Symbol.for('cairn.PersistenceError');

export class PersistenceError extends Error {
  readonly code: PersistenceErrorCode;
  declare readonly cause: unknown;

  constructor(code: PersistenceErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.name = new.target.name;
    Object.defineProperty(this, PERSISTENCE_ERROR, { value: true });
  }
}

/** True when `e` is a Cairn PersistenceError (from any copy of this package), optionally with `code`. */
export function isPersistenceError(e: unknown, code?: PersistenceErrorCode): e is PersistenceError {
  if (typeof e !== 'object' || e === null) return false;
  const marked = (e as Record<symbol, unknown>)[PERSISTENCE_ERROR] === true;
  if (!marked) return false;
  return code === undefined || (e as { code?: unknown }).code === code;
}

/**
 * A snapshot store was closed: every call after `close()` rejects with this. Code ERR_SNAPSHOT_STORE_CLOSED.
 */
export class SnapshotStoreClosedError extends PersistenceError {
  constructor() {
    super('ERR_SNAPSHOT_STORE_CLOSED', 'the snapshot store is closed; open a new one to continue');
  }
}

export class JournalClosedError extends PersistenceError {
  constructor(what = 'journal') {
    super('ERR_JOURNAL_CLOSED', `the ${what} is closed; open a new one to continue`);
  }
}

export class SequenceConflictError extends PersistenceError {
  readonly persistenceId: string;
  readonly expectedSequenceNr: number;
  readonly actualSequenceNr: number;

  constructor(persistenceId: string, expectedSequenceNr: number, actualSequenceNr: number) {
    super(
      'ERR_SEQUENCE_CONFLICT',
      `append to "${persistenceId}" expected highest sequenceNr ${expectedSequenceNr} but it is ${actualSequenceNr}; ` +
        'another writer appended first. Nothing was written: recover and retry',
    );
    this.persistenceId = persistenceId;
    this.expectedSequenceNr = expectedSequenceNr;
    this.actualSequenceNr = actualSequenceNr;
  }
}

export interface LockHolder {
  readonly pid?: number;
  readonly since?: Date;
  readonly staleMs?: number;
}

export class JournalLockedError extends PersistenceError {
  readonly path: string;
  readonly holder: LockHolder;

  constructor(path: string, holder: LockHolder = {}, options?: { cause?: unknown }) {
    const who = holder.pid === undefined ? 'another process' : `pid ${holder.pid}`;
    const since = holder.since ? ` since ${holder.since.toISOString()}` : '';
    const stale =
      holder.staleMs === undefined
        ? ''
        : ` or wait for the lock to go stale (${Math.round(holder.staleMs / 1000)} s)`;
    super('ERR_JOURNAL_LOCKED', `${path} is locked by ${who}${since}; stop that process${stale}`, options);
    this.path = path;
    this.holder = holder;
  }
}

/** Where corrupt data was found: a file and byte offset, or a database key. */
export interface CorruptionLocation {
  readonly persistenceId?: string;
  readonly sequenceNr?: number;
  readonly file?: string;
  readonly offset?: number;
  readonly key?: string;
  /** What is wrong, e.g. "CRC mismatch" or "unknown serializer 9". */
  readonly reason: string;
}

function describeLocation(kind: string, loc: CorruptionLocation): string {
  const where =
    loc.file !== undefined ? `${loc.file} at offset ${loc.offset ?? '?'}` : `key ${loc.key ?? '?'}`;
  const who =
    loc.persistenceId === undefined ? '' : ` for "${loc.persistenceId}" sequenceNr ${loc.sequenceNr ?? '?'}`;
  return `${kind} corrupted${who}: ${loc.reason} in ${where}`;
}

/** What the two corruption errors share: where the damage is, and what is wrong. */
abstract class CorruptedDataError extends PersistenceError {
  readonly persistenceId: string | undefined;
  readonly sequenceNr: number | undefined;
  readonly file: string | undefined;
  readonly offset: number | undefined;
  readonly key: string | undefined;
  readonly reason: string;

  protected constructor(
    code: PersistenceErrorCode,
    message: string,
    location: CorruptionLocation,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.persistenceId = location.persistenceId;
    this.sequenceNr = location.sequenceNr;
    this.file = location.file;
    this.offset = location.offset;
    this.key = location.key;
    this.reason = location.reason;
  }
}

export class JournalCorruptedError extends CorruptedDataError {
  constructor(location: CorruptionLocation, options?: { cause?: unknown }) {
    super(
      'ERR_JOURNAL_CORRUPTED',
      `${describeLocation('journal', location)}; nothing past it is served. Inspect it with \`cairn verify\``,
      location,
      options,
    );
  }
}

export class SnapshotCorruptedError extends CorruptedDataError {
  constructor(location: CorruptionLocation, options?: { cause?: unknown }) {
    super(
      'ERR_SNAPSHOT_CORRUPTED',
      `${describeLocation('snapshot', location)}; it was left in place`,
      location,
      options,
    );
  }
}

export class RecoveryFailedError extends PersistenceError {
  readonly persistenceId: string;
  /** The sequenceNr that was missing or unreadable, when that is what failed recovery. */
  readonly sequenceNr: number | undefined;

  constructor(persistenceId: string, message: string, options?: { cause?: unknown; sequenceNr?: number }) {
    super('ERR_RECOVERY_FAILED', `recovery of "${persistenceId}" failed: ${message}`, options);
    this.persistenceId = persistenceId;
    this.sequenceNr = options?.sequenceNr;
  }
}

export class ConfigError extends PersistenceError {
  /** Every problem found, one message each. */
  readonly problems: readonly string[];

  constructor(problems: readonly string[], options?: { cause?: unknown }) {
    super(
      'ERR_CONFIG',
      `invalid persistence configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((p) => `  - ${p}`).join('\n'),
      options,
    );
    this.problems = problems;
  }
}

/** The write was refused before it reached storage (the event could not be serialized, say): nothing was stored. */
export class WriteRejectedError extends PersistenceError {
  readonly persistenceId: string;

  constructor(persistenceId: string, message: string, options?: { cause?: unknown }) {
    super('ERR_WRITE_REJECTED', `write to "${persistenceId}" rejected, nothing stored: ${message}`, options);
    this.persistenceId = persistenceId;
  }
}

/** Storage failed, or the outcome of a write is unknown. Stop writing to the id and recover. */
export class StorageError extends PersistenceError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_STORAGE', message, options);
  }
}

export class AskTimeoutError extends PersistenceError {
  constructor(target: string, timeoutMs: number) {
    super('ERR_ASK_TIMEOUT', `ask to ${target} got no reply within ${timeoutMs} ms`);
  }
}

export class ActorStoppedError extends PersistenceError {
  constructor(target: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_ACTOR_STOPPED', `${target} is stopped: ${reason}`, options);
  }
}

/**
 * A write (append, appendBatch, importEntries, truncateBefore; save, delete, prune; maintenance) was
 * called on a journal or snapshot store opened with `readOnly: true`, or a read-only open found data that
 * only a writable open can prepare. Nothing was written.
 */
export class ReadOnlyError extends PersistenceError {
  /** The directory opened read-only. */
  readonly path: string;

  constructor(path: string, message: string) {
    super('ERR_READ_ONLY', `${path} is open read-only: ${message}`);
    this.path = path;
  }
}

/**
 * An exclusive lease (see Lease) is held by another holder: the spawn or acquireLease that asked for it
 * was refused (after waiting, when asked to wait). Nothing was started or written.
 */
export class LeaseHeldError extends PersistenceError {
  readonly persistenceId: string;
  /** Who holds it. */
  readonly holder: string;
  /** When its lease runs out unless renewed, if known. */
  readonly until: Date | undefined;

  constructor(persistenceId: string, holder: string, until?: Date) {
    const expiry = until ? ` until ${until.toISOString()} unless renewed` : '';
    super(
      'ERR_LEASE_HELD',
      `"${persistenceId}" is held exclusively by ${holder}${expiry}; stop it there, or wait for its lease to run out`,
    );
    this.persistenceId = persistenceId;
    this.holder = holder;
    this.until = until;
  }
}

/**
 * The lease this process held on a persistenceId passed to another holder (this one stalled past its
 * lifetime): the append was refused by the fencing check and nothing was written. The actor must stop;
 * the id now lives elsewhere.
 */
export class LeaseLostError extends PersistenceError {
  readonly persistenceId: string;
  /** The epoch this process held. */
  readonly epoch: number;

  constructor(persistenceId: string, epoch: number, holder?: string) {
    super(
      'ERR_LEASE_LOST',
      `append to "${persistenceId}" refused: this process's lease (epoch ${epoch}) passed to ${holder ?? 'another holder'}; nothing was written`,
    );
    this.persistenceId = persistenceId;
    this.epoch = epoch;
  }
}

/**
 * The directory (or schema) given to a backend holds another backend's data: switching only the provider
 * of a configuration would otherwise open a new, empty store beside the old data. Nothing was opened or
 * written. Point the configuration back at the backend that wrote it, or copy the data over (`cairn copy`).
 */
export class StoreMismatchError extends PersistenceError {
  /** The directory opened. */
  readonly path: string;
  /** The backend that was asked to open it. */
  readonly expected: string;
  /** What the directory was found to hold, e.g. `"lmdb" data (data.mdb)`. */
  readonly found: string;

  constructor(path: string, expected: string, found: string) {
    super(
      'ERR_STORE_MISMATCH',
      `${path} holds ${found}, not "${expected}" data; refusing to open it as a "${expected}" store (nothing was ` +
        'written). Configure the provider that wrote it, or copy the data with `cairn copy`',
    );
    this.path = path;
    this.expected = expected;
    this.found = found;
  }
}

/**
 * An append was refused because the journal already holds as much as its limits allow waiting to be
 * committed (`maxPendingEvents`, `maxPendingBytes`) and it was opened with `onBackpressure: 'reject'`.
 * Nothing was stored; retry later or slow down.
 */
export class BackpressureError extends PersistenceError {
  readonly persistenceId: string;

  constructor(persistenceId: string, message: string) {
    super('ERR_BACKPRESSURE', `append to "${persistenceId}" refused, nothing stored: ${message}`);
    this.persistenceId = persistenceId;
  }
}

/**
 * A write was refused because the store reached its `maxDiskBytes`. Nothing was stored; what was stored
 * before stays readable. Truncation (truncateBefore) frees space and lifts the limit.
 */
export class DiskLimitError extends PersistenceError {
  readonly persistenceId: string;
  /** Bytes in use when the write was refused. */
  readonly usedBytes: number;
  readonly maxDiskBytes: number;

  constructor(persistenceId: string, usedBytes: number, maxDiskBytes: number) {
    super(
      'ERR_DISK_LIMIT',
      `write to "${persistenceId}" refused, nothing stored: the store uses ${usedBytes} bytes of its ` +
        `maxDiskBytes ${maxDiskBytes}; truncate old events (truncateBefore) or raise the limit`,
    );
    this.persistenceId = persistenceId;
    this.usedBytes = usedBytes;
    this.maxDiskBytes = maxDiskBytes;
  }
}
