import { createReadStream } from 'node:fs';
import { type FileHandle, open, stat } from 'node:fs/promises';
import type { JournalEntry, ReadOptions, SnapshotCriteria, SnapshotEntry } from '@cairn/actor-core';
import { msgpackSerializer } from '@cairn/actor-core';
import {
  type DumpedId,
  DumpLineParser,
  dumpedId,
  encodeEnd,
  encodeHighest,
  encodeItem,
  HEADER_LINE,
  type StoredItem,
} from './dump-format';

export { DUMP_FORMAT, DUMP_VERSION } from './dump-format';

/** A dump being written is synced after the id during which this many bytes became unsynced. */
const SYNC_EVERY_BYTES = 4 * 1024 * 1024;

/** The outcome of reading a dump: its ids, and where a writer may append (before a torn last line). */
interface ParsedDump {
  readonly ids: Map<string, DumpedId>;
  /** Bytes of whole lines; a torn last line (no newline: a writer was interrupted) starts here. */
  readonly wholeBytes: number;
  readonly tornBytes: number;
  /** Event and snapshot lines read. */
  readonly eventLines: number;
  readonly snapshotLines: number;
  /** Where the end line starts, when the dump was finished (it is then the last line). */
  readonly endAt: number | undefined;
  /** The ids the copy that wrote the dump left out (listed in its end line). */
  readonly notCopied: string[];
}

/** Reads a whole dump through DumpLineParser (see dump-format.ts for the format and its checks). */
async function parseDump(file: string, allowTornTail: boolean): Promise<ParsedDump> {
  const parser = new DumpLineParser(file);
  let pending: Buffer = Buffer.alloc(0);
  let offset = 0;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let start = 0;
    for (let nl = pending.indexOf(10, start); nl !== -1; nl = pending.indexOf(10, start)) {
      parser.accept(pending.subarray(start, nl), offset);
      offset += nl + 1 - start;
      start = nl + 1;
    }
    pending = pending.subarray(start);
  }
  checkTail(parser, pending, offset, allowTornTail);
  return {
    ids: parser.ids,
    wholeBytes: offset,
    tornBytes: pending.length,
    eventLines: parser.eventLines,
    snapshotLines: parser.snapshotLines,
    endAt: parser.endAt,
    notCopied: parser.notCopied,
  };
}

/**
 * What the end of a dump may be: a reader needs a finished dump (whole lines, an end line); a writer
 * resuming one accepts a torn last line (cut off on open) but never writes into a file that is not a dump.
 */
function checkTail(parser: DumpLineParser, torn: Buffer, offset: number, allowTornTail: boolean): void {
  if (torn.length > 0) {
    parser.lineNumber++;
    if (!allowTornTail)
      throw parser.corrupt(
        `the last ${torn.length} bytes are not a whole line (an interrupted write)`,
        offset,
      );
    // Without a whole header line this is not a dump being resumed (unless the header itself was torn):
    // never cut a file that only happens to sit where the dump should go.
    if (parser.lineNumber === 1 && !HEADER_LINE.startsWith(torn.toString('utf8'))) {
      throw parser.corrupt('not a Cairn dump (no header line); refusing to write into it', 0);
    }
  } else if (parser.lineNumber === 0 && !allowTornTail) {
    throw parser.corrupt('empty file, not a Cairn dump', 0);
  }
  if (!allowTornTail && parser.endAt === undefined) {
    throw parser.corrupt(
      'no end line: the copy that wrote this dump did not finish; run it again to complete it',
      offset,
    );
  }
}

/**
 * A dump opened for reading: the journal and snapshot reads `cairn copy` needs, served from memory
 * (the whole dump is loaded and every line's CRC checked on open; a bad line rejects the open with
 * JournalCorruptedError naming the line, its byte offset, id and sequenceNr).
 */
export class DumpReader {
  private constructor(
    readonly file: string,
    private readonly ids: Map<string, DumpedId>,
    /** Ids the copy that wrote this dump left out, with their reasons reported then. */
    readonly notCopied: readonly string[],
  ) {}

  /**
   * Loads and checks a finished dump: every line's CRC, each id's events consecutive, and the totals of
   * the end line (a dump without one was not finished, and is refused).
   */
  static async open(file: string): Promise<DumpReader> {
    const { ids, notCopied } = await parseDump(file, false);
    return new DumpReader(file, ids, notCopied);
  }

  async *persistenceIds(): AsyncGenerator<string> {
    for (const [id, data] of this.ids) if (data.highest > 0 || data.events.length > 0) yield id;
  }

  /** Ids with snapshots (also those without events). */
  async *snapshotIds(): AsyncGenerator<string> {
    for (const [id, data] of this.ids) if (data.snapshots.size > 0) yield id;
  }

  async highestSequenceNr(persistenceId: string): Promise<number> {
    return this.ids.get(persistenceId)?.highest ?? 0;
  }

  async *readFrom(
    persistenceId: string,
    fromSequenceNr: number,
    options: ReadOptions = {},
  ): AsyncGenerator<JournalEntry> {
    const events = this.ids.get(persistenceId)?.events ?? [];
    const to = options.toSequenceNr ?? Number.MAX_SAFE_INTEGER;
    let left = options.max ?? Number.MAX_SAFE_INTEGER;
    for (const item of events) {
      if (left <= 0 || item.sequenceNr > to) return;
      if (item.sequenceNr < fromSequenceNr) continue;
      left--;
      yield {
        persistenceId,
        sequenceNr: item.sequenceNr,
        timestamp: item.timestamp,
        message: msgpackSerializer.decode(item.payload),
        tags: item.tags,
      };
    }
  }

  async loadLatest(
    persistenceId: string,
    criteria: SnapshotCriteria = {},
  ): Promise<SnapshotEntry | undefined> {
    const snapshots = this.ids.get(persistenceId)?.snapshots;
    if (!snapshots) return undefined;
    let best: StoredItem | undefined;
    for (const item of snapshots.values()) {
      if (criteria.maxSequenceNr !== undefined && item.sequenceNr > criteria.maxSequenceNr) continue;
      if (criteria.maxTimestamp !== undefined && item.timestamp > criteria.maxTimestamp) continue;
      if (!best || item.sequenceNr > best.sequenceNr) best = item;
    }
    return (
      best && {
        persistenceId,
        sequenceNr: best.sequenceNr,
        timestamp: best.timestamp,
        state: msgpackSerializer.decode(best.payload),
      }
    );
  }

  async close(): Promise<void> {
    this.ids.clear();
  }
}

/**
 * A dump opened for appending, resumable: opening an existing dump reads what it holds (so a copy can
 * skip what is done) and cuts off a torn last line that an interrupted writer left, reporting it. Lines
 * are written in order and synced every few MiB (between ids) and at close; whatever an interruption
 * leaves, the next run continues each id from its last whole event in the file.
 */
export class DumpWriter {
  private constructor(
    readonly file: string,
    private readonly handle: FileHandle,
    private readonly ids: Map<string, DumpedId>,
    /** Bytes of a torn last line cut off on open (0 when none). */
    readonly tornBytesRemoved: number,
    /** Where the next line goes: the end of the last whole line. */
    private position: number,
  ) {
    this.syncedAt = position;
  }

  private closing: Promise<void> | undefined;
  private eventLines = 0;
  private snapshotLines = 0;
  /** Bytes known to be on disk. */
  private syncedAt: number;

  static async open(file: string): Promise<DumpWriter> {
    const exists = await stat(file).then(
      (s) => s.size > 0,
      () => false,
    );
    // Only a torn header (a run killed as it began) parses to no whole line: start that one afresh.
    const parsed = exists ? await parseDump(file, true) : undefined;
    if (!parsed || parsed.wholeBytes === 0) {
      const handle = await open(file, 'w');
      const header = Buffer.from(HEADER_LINE);
      try {
        await handle.write(header, 0, header.length, 0);
        await handle.sync();
      } catch (e) {
        await handle.close();
        throw e;
      }
      return new DumpWriter(file, handle, new Map(), parsed?.tornBytes ?? 0, header.length);
    }
    const handle = await open(file, 'r+');
    // A finished dump being extended: its end line goes, a new one is written when this run finishes.
    const keep = parsed.endAt ?? parsed.wholeBytes;
    try {
      if (parsed.tornBytes > 0 || keep < parsed.wholeBytes) {
        await handle.truncate(keep);
        await handle.sync();
      }
    } catch (e) {
      await handle.close();
      throw e;
    }
    // Resuming needs each id's highest and last event (to check the source continues it), not every payload.
    for (const data of parsed.ids.values()) data.events = data.events.slice(-1);
    const writer = new DumpWriter(file, handle, parsed.ids, parsed.tornBytes, keep);
    writer.eventLines = parsed.eventLines;
    writer.snapshotLines = parsed.snapshotLines;
    return writer;
  }

  private async append(text: string): Promise<void> {
    const bytes = Buffer.from(text, 'utf8');
    await this.handle.write(bytes, 0, bytes.length, this.position);
    this.position += bytes.length;
  }

  async highestSequenceNr(persistenceId: string): Promise<number> {
    return this.ids.get(persistenceId)?.highest ?? 0;
  }

  /** The id's last event in the dump, decoded, or undefined when it has none. */
  async lastEvent(persistenceId: string): Promise<JournalEntry | undefined> {
    const item = this.ids.get(persistenceId)?.events.at(-1);
    return (
      item && {
        persistenceId,
        sequenceNr: item.sequenceNr,
        timestamp: item.timestamp,
        message: msgpackSerializer.decode(item.payload),
        tags: item.tags,
      }
    );
  }

  /** Appends events with their original sequenceNrs and timestamps; they must continue the id's highest. */
  async appendEntries(
    persistenceId: string,
    entries: readonly JournalEntry[],
    expectedSequenceNr: number,
  ): Promise<void> {
    const data = dumpedId(this.ids, persistenceId);
    if (data.highest !== expectedSequenceNr) {
      throw new RangeError(
        `dump ${this.file}: "${persistenceId}" is at ${data.highest}, expected ${expectedSequenceNr}`,
      );
    }
    let text = '';
    let previous = data.highest;
    let last: JournalEntry | undefined;
    for (const e of entries) {
      last = e;
      if (e.sequenceNr <= previous)
        throw new RangeError(
          `dump ${this.file}: event ${e.sequenceNr} of "${persistenceId}" after ${previous}`,
        );
      previous = e.sequenceNr;
      text += encodeItem('event', persistenceId, e.sequenceNr, e.timestamp, e.message, e.tags ?? []);
    }
    await this.append(text);
    this.eventLines += entries.length;
    data.highest = previous;
    if (last) {
      const payload = Buffer.from(msgpackSerializer.encode(last.message));
      data.events = [
        { sequenceNr: last.sequenceNr, timestamp: last.timestamp, payload, tags: last.tags ?? [] },
      ];
    }
  }

  /** Records an id's highestSequenceNr when it is above its last event (events truncated away). */
  async markHighest(persistenceId: string, highest: number): Promise<void> {
    const data = dumpedId(this.ids, persistenceId);
    if (highest <= data.highest) return;
    await this.append(encodeHighest(persistenceId, highest));
    data.highest = highest;
  }

  async hasSnapshot(persistenceId: string, sequenceNr: number): Promise<boolean> {
    return this.ids.get(persistenceId)?.snapshots.has(sequenceNr) ?? false;
  }

  async saveSnapshot(entry: SnapshotEntry): Promise<void> {
    this.snapshotLines++;
    await this.append(
      encodeItem('snapshot', entry.persistenceId, entry.sequenceNr, entry.timestamp, entry.state),
    );
    dumpedId(this.ids, entry.persistenceId).snapshots.set(entry.sequenceNr, {
      sequenceNr: entry.sequenceNr,
      timestamp: entry.timestamp,
      payload: Buffer.alloc(0),
      tags: [],
    });
  }

  /**
   * Makes what was appended durable once at least `SYNC_EVERY_BYTES` are unsynced (always at close).
   * Called after each id: a sync per id cost more than the writing itself on many small ids, and what a
   * crash leaves unsynced is found again on resume (a torn last line is cut off; a resumed id continues
   * from its last whole event, checked against the source).
   */
  async sync(): Promise<void> {
    if (this.position - this.syncedAt < SYNC_EVERY_BYTES) return;
    await this.handle.sync();
    this.syncedAt = this.position;
  }

  /**
   * Marks the dump complete: an end line with the number of event and snapshot lines, which a reader
   * checks (a dump without it, or with other totals, is refused), and the ids the copy left out
   * (`notCopied`, so a restore from it can say what it lacks). Then syncs and closes.
   */
  async finish(notCopied: readonly string[] = []): Promise<void> {
    await this.append(encodeEnd(this.eventLines, this.snapshotLines, notCopied));
    await this.close();
  }

  /** Syncs and closes the file. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.handle.sync();
      } finally {
        await this.handle.close();
      }
    })();
    return this.closing;
  }
}
