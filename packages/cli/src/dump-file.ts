import { createReadStream } from 'node:fs';
import { type FileHandle, open, stat } from 'node:fs/promises';
import {
  crc32,
  JournalCorruptedError,
  type JournalEntry,
  msgpackSerializer,
  NO_TAGS,
  type ReadOptions,
  type SnapshotCriteria,
  type SnapshotEntry,
} from '@cairn/actor-core';

/**
 * The Cairn dump: a portable copy of journals and snapshots in one text file, one JSON object per line.
 *
 *   {"format":"cairn-dump","version":1,"serializer":"msgpack"}                  first line
 *   {"type":"event","persistenceId":"a","sequenceNr":1,"timestamp":1700000000000,"message":"<base64>","crc":123}
 *   {"type":"snapshot","persistenceId":"a","sequenceNr":10,"timestamp":...,"state":"<base64>","crc":456}
 *   {"type":"highest","persistenceId":"a","sequenceNr":12}                     an id's highestSequenceNr
 *
 * Messages and states are encoded with Cairn's msgpack serializer (so Dates, Maps, Sets, BigInts survive)
 * and base64. `crc` is the CRC32 of the line's type, id, sequenceNr and timestamp followed by the payload,
 * so a changed byte anywhere that matters is detected and named (line, byte offset, id, sequenceNr).
 * Unlike a journal written through the public API, a dump keeps original sequenceNrs (also when the
 * first surviving one is above 1) and timestamps. Lines of one id may be interleaved with others'.
 */
export const DUMP_FORMAT = 'cairn-dump';
export const DUMP_VERSION = 1;
const HEADER_LINE = `${JSON.stringify({ format: DUMP_FORMAT, version: DUMP_VERSION, serializer: 'msgpack' })}\n`;
/** A dump being written is synced after the id during which this many bytes became unsynced. */
const SYNC_EVERY_BYTES = 4 * 1024 * 1024;

interface DumpHeader {
  readonly format: typeof DUMP_FORMAT;
  readonly version: number;
  readonly serializer: 'msgpack';
}

type DumpLine =
  | {
      type: 'event';
      persistenceId: string;
      sequenceNr: number;
      timestamp: number;
      message: string;
      crc: number;
    }
  | {
      type: 'snapshot';
      persistenceId: string;
      sequenceNr: number;
      timestamp: number;
      state: string;
      crc: number;
    }
  | { type: 'highest'; persistenceId: string; sequenceNr: number }
  | { type: 'end'; events: number; snapshots: number; notCopied?: string[] };

interface StoredItem {
  readonly sequenceNr: number;
  readonly timestamp: number;
  readonly payload: Buffer;
}

interface DumpedId {
  events: StoredItem[];
  highest: number;
  snapshots: Map<number, StoredItem>;
}

function lineCrc(
  type: string,
  persistenceId: string,
  sequenceNr: number,
  timestamp: number,
  payload: Buffer,
): number {
  return crc32(
    Buffer.concat([Buffer.from(JSON.stringify([type, persistenceId, sequenceNr, timestamp])), payload]),
  );
}

function encodeItem(
  type: 'event' | 'snapshot',
  persistenceId: string,
  sequenceNr: number,
  timestamp: number,
  value: unknown,
): string {
  const payload = Buffer.from(msgpackSerializer.encode(value));
  const crc = lineCrc(type, persistenceId, sequenceNr, timestamp, payload);
  const field = type === 'event' ? 'message' : 'state';
  return `${JSON.stringify({ type, persistenceId, sequenceNr, timestamp, [field]: payload.toString('base64'), crc })}\n`;
}

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

async function parseDump(file: string, allowTornTail: boolean): Promise<ParsedDump> {
  const ids = new Map<string, DumpedId>();
  const stream = createReadStream(file);
  let pending: Buffer = Buffer.alloc(0);
  let offset = 0;
  let lineNumber = 0;
  let eventLines = 0;
  let snapshotLines = 0;
  let endAt: number | undefined;
  const notCopied: string[] = [];
  const corrupt = (reason: string, at: number, persistenceId?: string, sequenceNr?: number) =>
    new JournalCorruptedError({
      file,
      offset: at,
      reason: `line ${lineNumber}: ${reason}`,
      ...(persistenceId === undefined ? {} : { persistenceId }),
      ...(sequenceNr === undefined ? {} : { sequenceNr }),
    });
  const handle = (bytes: Buffer, at: number) => {
    lineNumber++;
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString('utf8'));
    } catch (e) {
      throw corrupt(`not JSON (${(e as Error).message})`, at);
    }
    if (lineNumber === 1) {
      const header = parsed as Partial<DumpHeader>;
      if (header?.format !== DUMP_FORMAT)
        throw corrupt('not a Cairn dump (the first line is not its header)', at);
      if (header.version !== DUMP_VERSION || header.serializer !== 'msgpack') {
        throw corrupt(`unsupported dump version ${header.version} / serializer ${header.serializer}`, at);
      }
      return;
    }
    if (endAt !== undefined) throw corrupt('a line after the end line', at);
    const line = parsed as Partial<DumpLine> & Record<string, unknown>;
    if (line.type === 'end') {
      const { events, snapshots } = line as { events?: unknown; snapshots?: unknown };
      // Every line carries its own CRC, but a line lost whole (or a dump cut between lines) is only
      // visible in the totals the writer recorded when it finished.
      if (events !== eventLines || snapshots !== snapshotLines) {
        throw corrupt(
          `the end line counts ${String(events)} event(s) and ${String(snapshots)} snapshot(s), ` +
            `the dump holds ${eventLines} and ${snapshotLines}: lines are missing`,
          at,
        );
      }
      endAt = at;
      const left = (line as { notCopied?: unknown }).notCopied;
      if (Array.isArray(left)) notCopied.push(...left.filter((x): x is string => typeof x === 'string'));
      return;
    }
    const { persistenceId, sequenceNr } = line;
    if (
      typeof persistenceId !== 'string' ||
      persistenceId.length === 0 ||
      !Number.isSafeInteger(sequenceNr) ||
      (sequenceNr as number) < 0
    ) {
      throw corrupt('persistenceId or sequenceNr missing or invalid', at);
    }
    const seq = sequenceNr as number;
    let id = ids.get(persistenceId);
    if (!id) {
      id = { events: [], highest: 0, snapshots: new Map() };
      ids.set(persistenceId, id);
    }
    if (line.type === 'highest') {
      id.highest = Math.max(id.highest, seq);
      return;
    }
    if (line.type !== 'event' && line.type !== 'snapshot')
      throw corrupt(`unknown line type ${String(line.type)}`, at, persistenceId, seq);
    const encoded = line.type === 'event' ? line.message : line.state;
    if (
      typeof encoded !== 'string' ||
      !Number.isSafeInteger(line.timestamp) ||
      typeof line.crc !== 'number'
    ) {
      throw corrupt(`${line.type} line incomplete`, at, persistenceId, seq);
    }
    const payload = Buffer.from(encoded, 'base64');
    if (lineCrc(line.type, persistenceId, seq, line.timestamp as number, payload) !== line.crc) {
      throw corrupt(`${line.type} CRC mismatch`, at, persistenceId, seq);
    }
    const item = { sequenceNr: seq, timestamp: line.timestamp as number, payload };
    if (line.type === 'snapshot') {
      snapshotLines++;
      id.snapshots.set(seq, item);
      return;
    }
    eventLines++;
    const previous = id.events.at(-1)?.sequenceNr;
    if (previous !== undefined && seq !== previous + 1) {
      throw corrupt(
        seq <= previous
          ? `event ${seq} after event ${previous} (repeated or out of order)`
          : `event ${seq} after event ${previous}: sequenceNr ${previous + 1}..${seq - 1} missing`,
        at,
        persistenceId,
        seq,
      );
    }
    id.events.push(item);
    id.highest = Math.max(id.highest, seq);
  };
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let start = 0;
    for (let nl = pending.indexOf(10, start); nl !== -1; nl = pending.indexOf(10, start)) {
      handle(pending.subarray(start, nl), offset);
      offset += nl + 1 - start;
      start = nl + 1;
    }
    pending = pending.subarray(start);
  }
  if (pending.length > 0) {
    lineNumber++;
    if (!allowTornTail)
      throw corrupt(`the last ${pending.length} bytes are not a whole line (an interrupted write)`, offset);
    // Without a whole header line this is not a dump being resumed (unless the header itself was torn):
    // never cut a file that only happens to sit where the dump should go.
    if (lineNumber === 1 && !HEADER_LINE.startsWith(pending.toString('utf8'))) {
      throw corrupt('not a Cairn dump (no header line); refusing to write into it', 0);
    }
  } else if (lineNumber === 0) {
    if (!allowTornTail) throw corrupt('empty file, not a Cairn dump', 0);
  }
  if (!allowTornTail && endAt === undefined) {
    throw corrupt(
      'no end line: the copy that wrote this dump did not finish; run it again to complete it',
      offset,
    );
  }
  return {
    ids,
    wholeBytes: offset,
    tornBytes: pending.length,
    eventLines,
    snapshotLines,
    endAt,
    notCopied,
  };
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
        tags: NO_TAGS,
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

  private idData(persistenceId: string): DumpedId {
    let data = this.ids.get(persistenceId);
    if (!data) {
      data = { events: [], highest: 0, snapshots: new Map() };
      this.ids.set(persistenceId, data);
    }
    return data;
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
        tags: NO_TAGS,
      }
    );
  }

  /** Appends events with their original sequenceNrs and timestamps; they must continue the id's highest. */
  async appendEntries(
    persistenceId: string,
    entries: readonly JournalEntry[],
    expectedSequenceNr: number,
  ): Promise<void> {
    const data = this.idData(persistenceId);
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
      text += encodeItem('event', persistenceId, e.sequenceNr, e.timestamp, e.message);
    }
    await this.append(text);
    this.eventLines += entries.length;
    data.highest = previous;
    if (last) {
      const payload = Buffer.from(msgpackSerializer.encode(last.message));
      data.events = [{ sequenceNr: last.sequenceNr, timestamp: last.timestamp, payload }];
    }
  }

  /** Records an id's highestSequenceNr when it is above its last event (events truncated away). */
  async markHighest(persistenceId: string, highest: number): Promise<void> {
    const data = this.idData(persistenceId);
    if (highest <= data.highest) return;
    await this.append(`${JSON.stringify({ type: 'highest', persistenceId, sequenceNr: highest })}\n`);
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
    this.idData(entry.persistenceId).snapshots.set(entry.sequenceNr, {
      sequenceNr: entry.sequenceNr,
      timestamp: entry.timestamp,
      payload: Buffer.alloc(0),
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
    await this.append(
      `${JSON.stringify({ type: 'end', events: this.eventLines, snapshots: this.snapshotLines, notCopied })}\n`,
    );
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
