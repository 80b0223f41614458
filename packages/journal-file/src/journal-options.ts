import {
  checkOpenOptions,
  JOURNAL_OPTION_TYPES,
  type JournalOptions,
  type OptionSchema,
  type OptionType,
} from '@cairn/actor-core';

/** Options of FileMessageJournal.open. */
export interface FileMessageJournalOptions extends JournalOptions {
  /**
   * The journal directory; created when missing (not with `readOnly`). One process writes it at a time
   * (it is locked).
   */
  readonly path: string;
  /**
   * fdatasync every commit before acknowledging it, and fsync the directory when a segment is created
   * or deleted. Default true: an acknowledged append survives a crash and a power loss.
   * false: an append is acknowledged once the OS has it; a process crash loses nothing, but a power
   * loss may lose the unsynced tail (never older data). Roughly 10x the throughput on slow disks.
   * The rare operations that rewrite or account for older data (creating a segment, the checkpoint, a
   * compacted segment) are synced in both modes: skipping those could lose old data, not just the tail.
   */
  readonly fsync?: boolean;
  /**
   * Bytes after which the log rolls to a new segment file. Default 64 MiB. Truncated space comes back
   * a whole segment at a time, so smaller segments return space sooner; larger ones mean fewer files.
   */
  readonly segmentSize?: number;
  /**
   * Threads of the journal's IO pool (writes, syncs, scans). Default max(1, floor(cores / 2)). One
   * thread already keeps the disk busy for a single log; more help scans on open and sealing. The pool
   * is the process's shared one for this thread count (see `ioIdleMs`).
   */
  readonly ioThreads?: number;
  /**
   * When the threads of the process's shared IO pool (shared with file snapshot stores of the same
   * `ioThreads`) end once no store uses them: as FileSnapshotStoreOptions.ioIdleMs, which says it whole.
   * Default: kept (unref'd) until exit or `endIdleIoThreads()`; 0: they end with the last close().
   */
  readonly ioIdleMs?: number;
  /**
   * How long a lock left by a dead process (not refreshed) blocks others before it is taken over.
   * Default 10,000 ms (minimum 2,000). Shorter recovers faster after a crash; too short risks taking
   * the lock from a live process whose event loop was blocked that long.
   */
  readonly lockStaleMs?: number;
  /**
   * Default false. `true` opens an existing journal for reading only, for tools and inspection beside a
   * running application: no lock is taken, and nothing is created, cut, compacted, deleted or synced
   * (a missing directory rejects with StorageError). Every write (append, appendBatch, importEntries,
   * truncateBefore, compact, repairAfterCorruption) rejects with ReadOnlyError (`ERR_READ_ONLY`).
   * It reads what was committed when it opened (another process may go on appending: its events after
   * that are not seen, and a partly written last commit is "not written yet", reported as
   * `torn-tail-ignored`, never cut). Trade-off: a snapshot as of open; reopen to see newer events.
   */
  readonly readOnly?: boolean;
}

export const DEFAULT_SEGMENT_SIZE = 64 * 1024 * 1024;
export const DEFAULT_LOCK_STALE_MS = 10_000;
const MIN_SEGMENT_SIZE = 4096;

const atLeast = (min: number): OptionType => ({
  check: (v) => Number.isSafeInteger(v) && (v as number) >= min,
  expected: `an integer >= ${min}`,
});

/** Every option FileMessageJournal.open takes: checked by open() and by the provider's validateOptions. */
export const FILE_JOURNAL_OPTION_TYPES: OptionSchema = {
  ...JOURNAL_OPTION_TYPES,
  fsync: 'boolean',
  segmentSize: atLeast(MIN_SEGMENT_SIZE),
  ioThreads: atLeast(1),
  ioIdleMs: atLeast(0),
  lockStaleMs: atLeast(2000),
  readOnly: 'boolean',
  maxDiskBytes: atLeast(1),
};

export function checkOptions(options: unknown): asserts options is FileMessageJournalOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError('FileMessageJournal.open needs an options object with a path');
  }
  const o = options as Record<string, unknown>;
  if (typeof o.path !== 'string' || o.path.length === 0) {
    throw new TypeError('options.path must be a non-empty string (the journal directory)');
  }
  if (o.fsync !== undefined && typeof o.fsync !== 'boolean')
    throw new TypeError('options.fsync must be a boolean');
  if (o.readOnly !== undefined && typeof o.readOnly !== 'boolean')
    throw new TypeError('options.readOnly must be a boolean');
  const integer = (name: string, min: number) => {
    const v = o[name];
    if (v === undefined) return;
    if (typeof v !== 'number' || !Number.isSafeInteger(v))
      throw new TypeError(`options.${name} must be an integer`);
    if (v < min) throw new RangeError(`options.${name} must be >= ${min}, got ${v}`);
  };
  integer('segmentSize', MIN_SEGMENT_SIZE);
  integer('ioThreads', 1);
  integer('ioIdleMs', 0);
  integer('lockStaleMs', 2000);
  checkOpenOptions('FileMessageJournal', options, FILE_JOURNAL_OPTION_TYPES);
}
