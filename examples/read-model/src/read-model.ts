import { closeSync, fsyncSync, openSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { EventEnvelope } from '@cairn/actor-core';
import type { AccountEvent } from './accounts';

/** What the bank's read side shows: balances per account and deposits per day. */
export interface ReadModelData {
  /** Balance per persistence id. */
  readonly balances: Record<string, number>;
  /** Per UTC day (YYYY-MM-DD of the event's timestamp): how many deposits, and their sum. */
  readonly depositsPerDay: Record<string, { count: number; amount: number }>;
  /**
   * The last sequenceNr applied per persistence id: what makes the handler idempotent. A projection
   * delivers at least once (an event handled just before a crash, whose offset was not saved yet, comes
   * again); an id's events come in ascending sequenceNr, so one already applied is recognised here.
   */
  readonly applied: Record<string, number>;
}

export function emptyReadModel(): ReadModelData {
  return { balances: {}, depositsPerDay: {}, applied: {} };
}

/**
 * Folds one event into the model; false (and nothing changed) when it was applied before. Pure, so a
 * fresh replay and the live projection compute the same thing.
 */
export function applyEvent(model: ReadModelData, e: EventEnvelope<AccountEvent>): boolean {
  if ((model.applied[e.persistenceId] ?? 0) >= e.sequenceNr) return false;
  const amount = e.message.type === 'deposited' ? e.message.amount : -e.message.amount;
  model.balances[e.persistenceId] = (model.balances[e.persistenceId] ?? 0) + amount;
  if (e.message.type === 'deposited') {
    const day = new Date(e.timestamp).toISOString().slice(0, 10);
    const entry = model.depositsPerDay[day] ?? { count: 0, amount: 0 };
    model.depositsPerDay[day] = { count: entry.count + 1, amount: entry.amount + e.message.amount };
  }
  model.applied[e.persistenceId] = e.sequenceNr;
  return true;
}

/**
 * The read model kept in one JSON file, replaced atomically (temp file, fsync, rename, directory fsync)
 * after every applied event: when the handler resolves, the event is durably in the model, which is
 * what allows the projection to save the offset afterwards.
 */
export class ReadModelFile {
  private constructor(
    readonly file: string,
    readonly data: ReadModelData,
  ) {}

  static async open(file: string): Promise<ReadModelFile> {
    await mkdir(path.dirname(file), { recursive: true });
    try {
      return new ReadModelFile(file, JSON.parse(await readFile(file, 'utf8')) as ReadModelData);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      return new ReadModelFile(file, emptyReadModel());
    }
  }

  /** The projection's handler: apply, then make it durable; an event seen before changes nothing. */
  async handle(e: EventEnvelope<AccountEvent>): Promise<void> {
    if (!applyEvent(this.data, e)) return;
    const temp = `${this.file}.tmp`;
    await writeFile(temp, JSON.stringify(this.data));
    syncPath(temp);
    await rename(temp, this.file);
    syncPath(path.dirname(this.file));
  }
}

function syncPath(p: string): void {
  const fd = openSync(p, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
