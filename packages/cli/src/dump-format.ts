import { crc32, JournalCorruptedError, msgpackSerializer } from '@cairn/actor-core';

/**
 * The Cairn dump: a portable copy of journals and snapshots in one text file, one JSON object per line.
 *
 *   {"format":"cairn-dump","version":2,"serializer":"msgpack"}                  first line
 *   {"type":"event","persistenceId":"a","sequenceNr":1,"timestamp":1700000000000,"tags":["bank"],"message":"<base64>","crc":123}
 *   {"type":"snapshot","persistenceId":"a","sequenceNr":10,"timestamp":...,"state":"<base64>","crc":456}
 *   {"type":"highest","persistenceId":"a","sequenceNr":12}                     an id's highestSequenceNr
 *   {"type":"end","events":12,"snapshots":1,"notCopied":[]}                    last line of a finished dump
 *
 * Messages and states are encoded with Cairn's msgpack serializer (so Dates, Maps, Sets, BigInts survive)
 * and base64. `crc` is the CRC32 of the line's type, id, sequenceNr, timestamp (and tags, when the event
 * has any) followed by the payload, so a changed byte anywhere that matters is detected and named (line,
 * byte offset, id, sequenceNr). Unlike a journal written through the public API, a dump keeps original
 * sequenceNrs (also when the first surviving one is above 1), timestamps and tags. Lines of one id may be
 * interleaved with others'. Version 1 dumps (written before tags were kept) read as events without tags.
 */
export const DUMP_FORMAT = 'cairn-dump';
export const DUMP_VERSION = 2;
const READABLE_VERSIONS: readonly number[] = [1, 2];
export const HEADER_LINE = `${JSON.stringify({ format: DUMP_FORMAT, version: DUMP_VERSION, serializer: 'msgpack' })}\n`;

interface DumpHeader {
  readonly format: typeof DUMP_FORMAT;
  readonly version: number;
  readonly serializer: 'msgpack';
}

type ItemLine = {
  type: 'event' | 'snapshot';
  persistenceId: string;
  sequenceNr: number;
  timestamp: number;
  tags?: string[];
  message?: string;
  state?: string;
  crc: number;
};

type DumpLine =
  | ItemLine
  | { type: 'highest'; persistenceId: string; sequenceNr: number }
  | { type: 'end'; events: number; snapshots: number; notCopied?: string[] };

/** An event or snapshot as the dump holds it: the payload still encoded. */
export interface StoredItem {
  readonly sequenceNr: number;
  readonly timestamp: number;
  readonly payload: Buffer;
  /** An event's tags (empty for none, and for snapshots). */
  readonly tags: readonly string[];
}

/** What a dump holds of one id. */
export interface DumpedId {
  events: StoredItem[];
  highest: number;
  snapshots: Map<number, StoredItem>;
}

/** What `ids` holds of `persistenceId`, added empty when it holds nothing yet. */
export function dumpedId(ids: Map<string, DumpedId>, persistenceId: string): DumpedId {
  let id = ids.get(persistenceId);
  if (!id) {
    id = { events: [], highest: 0, snapshots: new Map() };
    ids.set(persistenceId, id);
  }
  return id;
}

function lineCrc(
  type: string,
  persistenceId: string,
  sequenceNr: number,
  timestamp: number,
  tags: readonly string[],
  payload: Buffer,
): number {
  const fields =
    tags.length > 0
      ? [type, persistenceId, sequenceNr, timestamp, tags]
      : [type, persistenceId, sequenceNr, timestamp];
  return crc32(Buffer.concat([Buffer.from(JSON.stringify(fields)), payload]));
}

/** One event or snapshot line, newline included. */
export function encodeItem(
  type: 'event' | 'snapshot',
  persistenceId: string,
  sequenceNr: number,
  timestamp: number,
  value: unknown,
  tags: readonly string[] = [],
): string {
  const payload = Buffer.from(msgpackSerializer.encode(value));
  const crc = lineCrc(type, persistenceId, sequenceNr, timestamp, tags, payload);
  const field = type === 'event' ? 'message' : 'state';
  const tagged = tags.length > 0 ? { tags } : {};
  return `${JSON.stringify({ type, persistenceId, sequenceNr, timestamp, ...tagged, [field]: payload.toString('base64'), crc })}\n`;
}

export function encodeHighest(persistenceId: string, sequenceNr: number): string {
  return `${JSON.stringify({ type: 'highest', persistenceId, sequenceNr })}\n`;
}

export function encodeEnd(events: number, snapshots: number, notCopied: readonly string[]): string {
  return `${JSON.stringify({ type: 'end', events, snapshots, notCopied })}\n`;
}

/**
 * Reads a dump line by line (`accept` each whole line with its byte offset), checking as it goes: the
 * header, each line's shape and CRC, each id's events consecutive, and the end line's totals. What it
 * finds wrong is a JournalCorruptedError naming the file, line, byte offset, id and sequenceNr.
 */
export class DumpLineParser {
  readonly ids = new Map<string, DumpedId>();
  eventLines = 0;
  snapshotLines = 0;
  /** Where the end line starts, once read (it must be the last line). */
  endAt: number | undefined;
  /** The ids the copy that wrote the dump left out (from its end line). */
  readonly notCopied: string[] = [];
  lineNumber = 0;

  constructor(private readonly file: string) {}

  corrupt(reason: string, at: number, persistenceId?: string, sequenceNr?: number): JournalCorruptedError {
    return new JournalCorruptedError({
      file: this.file,
      offset: at,
      reason: `line ${this.lineNumber}: ${reason}`,
      ...(persistenceId === undefined ? {} : { persistenceId }),
      ...(sequenceNr === undefined ? {} : { sequenceNr }),
    });
  }

  accept(bytes: Buffer, at: number): void {
    this.lineNumber++;
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString('utf8'));
    } catch (e) {
      throw this.corrupt(`not JSON (${(e as Error).message})`, at);
    }
    if (this.lineNumber === 1) {
      this.header(parsed as Partial<DumpHeader>, at);
      return;
    }
    if (this.endAt !== undefined) throw this.corrupt('a line after the end line', at);
    const line = parsed as Partial<DumpLine> & Record<string, unknown>;
    if (line.type === 'end') {
      this.end(line, at);
      return;
    }
    const { persistenceId, sequenceNr } = line;
    if (
      typeof persistenceId !== 'string' ||
      persistenceId.length === 0 ||
      !Number.isSafeInteger(sequenceNr) ||
      (sequenceNr as number) < 0
    ) {
      throw this.corrupt('persistenceId or sequenceNr missing or invalid', at);
    }
    const id = dumpedId(this.ids, persistenceId);
    if (line.type === 'highest') {
      id.highest = Math.max(id.highest, sequenceNr as number);
      return;
    }
    if (line.type !== 'event' && line.type !== 'snapshot')
      throw this.corrupt(`unknown line type ${String(line.type)}`, at, persistenceId, sequenceNr as number);
    this.item(line as Partial<ItemLine>, persistenceId, sequenceNr as number, id, at);
  }

  private header(header: Partial<DumpHeader>, at: number): void {
    if (header?.format !== DUMP_FORMAT)
      throw this.corrupt('not a Cairn dump (the first line is not its header)', at);
    if (!READABLE_VERSIONS.includes(header.version as number) || header.serializer !== 'msgpack') {
      throw this.corrupt(`unsupported dump version ${header.version} / serializer ${header.serializer}`, at);
    }
  }

  private end(line: Record<string, unknown>, at: number): void {
    const { events, snapshots, notCopied } = line;
    // Every line carries its own CRC, but a line lost whole (or a dump cut between lines) is only
    // visible in the totals the writer recorded when it finished.
    if (events !== this.eventLines || snapshots !== this.snapshotLines) {
      throw this.corrupt(
        `the end line counts ${String(events)} event(s) and ${String(snapshots)} snapshot(s), ` +
          `the dump holds ${this.eventLines} and ${this.snapshotLines}: lines are missing`,
        at,
      );
    }
    this.endAt = at;
    if (Array.isArray(notCopied))
      this.notCopied.push(...notCopied.filter((x): x is string => typeof x === 'string'));
  }

  private item(line: Partial<ItemLine>, persistenceId: string, seq: number, id: DumpedId, at: number): void {
    const type = line.type as 'event' | 'snapshot';
    const encoded = type === 'event' ? line.message : line.state;
    const tags = line.tags ?? [];
    if (
      typeof encoded !== 'string' ||
      !Number.isSafeInteger(line.timestamp) ||
      typeof line.crc !== 'number' ||
      !Array.isArray(tags) ||
      !tags.every((t) => typeof t === 'string')
    ) {
      throw this.corrupt(`${type} line incomplete`, at, persistenceId, seq);
    }
    const payload = Buffer.from(encoded, 'base64');
    if (lineCrc(type, persistenceId, seq, line.timestamp as number, tags, payload) !== line.crc) {
      throw this.corrupt(`${type} CRC mismatch`, at, persistenceId, seq);
    }
    const item: StoredItem = { sequenceNr: seq, timestamp: line.timestamp as number, payload, tags };
    if (type === 'snapshot') {
      this.snapshotLines++;
      id.snapshots.set(seq, item);
      return;
    }
    this.eventLines++;
    const previous = id.events.at(-1)?.sequenceNr;
    if (previous !== undefined && seq !== previous + 1) {
      throw this.corrupt(
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
  }
}
