import { mkdir, open, readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import {
  AbstractMessageJournal,
  checkDirectoryPath,
  checkOpenOptions,
  crc32,
  JOURNAL_OPTION_TYPES,
  type JournalCapabilities,
  JournalCorruptedError,
  type JournalOptions,
  type JournalWrite,
  type OptionSchema,
  StorageError,
  type StoredEvent,
} from '@cairn/actor-core';

export interface JsonlJournalOptions extends JournalOptions {
  /** The directory holding `journal.jsonl`; created when missing (not with readOnly). */
  readonly path: string;
}

/** Every option JsonlJournal.open takes: the one schema open() and the provider's validateOptions check. */
export const JSONL_JOURNAL_OPTIONS: OptionSchema = {
  ...JOURNAL_OPTION_TYPES,
  path: 'string',
  readOnly: 'boolean',
};

export const JOURNAL_FILE = 'journal.jsonl';

/** One line of the log: a commit's events, or a truncation mark. */
type Line =
  | { readonly kind: 'events'; readonly id: string; readonly events: readonly StoredLineEvent[] }
  | { readonly kind: 'truncate'; readonly id: string; readonly before: number };
interface StoredLineEvent {
  readonly seq: number;
  readonly ts: number;
  readonly ser: number;
  readonly payload: string;
}

interface IdLog {
  events: StoredEvent[];
  highest: number;
  lowWater: number;
}

/**
 * A journal in one JSON-lines file: every commit is one line per id, appended and fdatasync'd before it
 * resolves, each line carrying the CRC-32 of its JSON so a damaged line is named (file, offset), never
 * skipped. A last line without its newline is a torn write of a crash: it was never acknowledged, and is
 * left out. Everything is kept in memory after open: a small provider for tests and small data.
 *
 * The core (AbstractMessageJournal) owns every rule: validation, numbering, ordering, group commit,
 * read-only refusals, typed errors. This class only reads and writes bytes.
 */
export class JsonlJournal<M = unknown> extends AbstractMessageJournal<M> {
  readonly capabilities: JournalCapabilities = {
    persistent: true,
    readOnly: true,
    import: true,
    flush: true,
    metrics: true,
  };
  private readonly file: string;
  private readonly logs = new Map<string, IdLog>();
  private handle: import('node:fs/promises').FileHandle | undefined;

  private constructor(options: JsonlJournalOptions) {
    super(options);
    this.file = path.join(options.path, JOURNAL_FILE);
  }

  static async open<M = unknown>(options: JsonlJournalOptions): Promise<JsonlJournal<M>> {
    checkOpenOptions('JsonlJournal', options, JSONL_JOURNAL_OPTIONS);
    if (typeof options.path !== 'string' || options.path === '')
      throw new TypeError('JsonlJournal.open: path is required');
    await checkDirectoryPath(options.path, 'JSON-lines journal');
    const journal = new JsonlJournal<M>(options);
    if (options.readOnly) {
      await stat(journal.file).catch((e: unknown) => {
        throw new StorageError(`no JSON-lines journal at ${options.path}: a read-only open creates nothing`, {
          cause: e,
        });
      });
    } else {
      await mkdir(options.path, { recursive: true });
      journal.handle = await open(journal.file, 'a');
    }
    await journal.load();
    return journal;
  }

  private async load(): Promise<void> {
    const text = await readFile(this.file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return '';
      throw e;
    });
    let offset = 0;
    for (const raw of text.split('\n')) {
      const end = offset + Buffer.byteLength(raw) + 1;
      if (end > Buffer.byteLength(text)) break; // no newline: a torn last write, never acknowledged
      if (raw !== '') this.apply(this.parse(raw, offset));
      offset = end;
    }
  }

  private parse(raw: string, offset: number): Line {
    const tab = raw.indexOf('\t');
    const json = raw.slice(tab + 1);
    if (tab < 0 || Number(raw.slice(0, tab)) !== crc32(Buffer.from(json))) {
      throw new JournalCorruptedError({ file: this.file, offset, reason: 'CRC mismatch' });
    }
    return JSON.parse(json) as Line;
  }

  private apply(line: Line): void {
    const log = this.log(line.id);
    if (line.kind === 'truncate') {
      log.lowWater = Math.max(log.lowWater, line.before);
      log.events = log.events.filter((e) => e.sequenceNr >= log.lowWater);
      log.highest = Math.max(log.highest, line.before - 1);
      return;
    }
    for (const e of line.events) {
      log.events.push({
        sequenceNr: e.seq,
        timestamp: e.ts,
        serializerId: e.ser,
        payload: Buffer.from(e.payload, 'base64'),
      });
      log.highest = e.seq;
    }
  }

  private log(id: string): IdLog {
    let log = this.logs.get(id);
    if (!log) {
      log = { events: [], highest: 0, lowWater: 1 };
      this.logs.set(id, log);
    }
    return log;
  }

  /** Appends the lines in one write and syncs them; applies them in memory only once durable. */
  private async appendLines(lines: readonly Line[]): Promise<void> {
    const text = lines
      .map((line) => {
        const json = JSON.stringify(line);
        return `${crc32(Buffer.from(json))}\t${json}\n`;
      })
      .join('');
    await this.handle!.write(text);
    await this.handle!.datasync();
    for (const line of lines) this.apply(line);
  }

  protected async _highestSequenceNr(persistenceId: string): Promise<number> {
    return this.logs.get(persistenceId)?.highest ?? 0;
  }

  protected async _write(writes: readonly JournalWrite[]): Promise<void> {
    await this.appendLines(
      writes.map(({ persistenceId, events }) => ({
        kind: 'events',
        id: persistenceId,
        events: events.map((e) => ({
          seq: e.sequenceNr,
          ts: e.timestamp,
          ser: e.serializerId,
          payload: Buffer.from(e.payload).toString('base64'),
        })),
      })),
    );
  }

  protected async *_read(
    persistenceId: string,
    fromSequenceNr: number,
    toSequenceNr: number,
    max: number,
  ): AsyncIterable<readonly StoredEvent[]> {
    const events = (this.logs.get(persistenceId)?.events ?? []).filter(
      (e) => e.sequenceNr >= fromSequenceNr && e.sequenceNr <= toSequenceNr,
    );
    if (events.length > 0) yield events.slice(0, max);
  }

  protected override async _lowWaterMark(persistenceId: string): Promise<number> {
    return this.logs.get(persistenceId)?.lowWater ?? 1;
  }

  protected async _truncateBefore(persistenceId: string, sequenceNr: number): Promise<void> {
    await this.appendLines([{ kind: 'truncate', id: persistenceId, before: sequenceNr }]);
  }

  protected override async _startAfter(persistenceId: string, highest: number): Promise<void> {
    await this.appendLines([{ kind: 'truncate', id: persistenceId, before: highest + 1 }]);
  }

  protected async *_persistenceIds(): AsyncIterable<string> {
    yield* [...this.logs.keys()];
  }

  protected async _close(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
  }
}
