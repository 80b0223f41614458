import type { EventEnvelope, EventQuery, OffsetStore, QueryOptions } from '@cairn/actor-core';
import { JournalClosedError, JournalLockedError } from '@cairn/actor-core';

/**
 * A minimal in-memory EventQuery (array index = global order, offsets "o<index>") with live waiting and
 * abort, and an OffsetStore that records every save: enough to test the projection's own rules apart from
 * any journal.
 */
export class FakeLog implements EventQuery<unknown> {
  readonly events: EventEnvelope<unknown>[] = [];
  private waiters = new Set<() => void>();
  private seq = new Map<string, number>();
  closed = false;
  /** Makes the next `failQueries` query openings throw. */
  failQueries = 0;

  append(persistenceId: string, message: unknown, tags: readonly string[] = []): EventEnvelope<unknown> {
    const sequenceNr = (this.seq.get(persistenceId) ?? 0) + 1;
    this.seq.set(persistenceId, sequenceNr);
    const envelope = {
      persistenceId,
      sequenceNr,
      timestamp: Date.now(),
      message,
      tags,
      offset: `o${this.events.length}`,
    };
    this.events.push(envelope);
    for (const wake of this.waiters) wake();
    return envelope;
  }

  close(): void {
    this.closed = true;
    for (const wake of this.waiters) wake();
  }

  allEvents(options?: QueryOptions): AsyncIterable<EventEnvelope<unknown>> {
    return this.read(() => true, options);
  }

  eventsByTag(tag: string, options?: QueryOptions): AsyncIterable<EventEnvelope<unknown>> {
    return this.read((e) => e.tags.includes(tag), options);
  }

  eventsByPersistenceId(id: string, options?: QueryOptions): AsyncIterable<EventEnvelope<unknown>> {
    return this.read((e) => e.persistenceId === id, options);
  }

  async headOffset(): Promise<string | undefined> {
    return this.events.at(-1)?.offset;
  }

  private async *read(
    match: (e: EventEnvelope<unknown>) => boolean,
    options: QueryOptions = {},
  ): AsyncGenerator<EventEnvelope<unknown>> {
    if (this.failQueries > 0) {
      this.failQueries--;
      throw new Error('query failed on purpose');
    }
    let next = 0;
    if (options.after !== undefined) {
      if (!/^o\d+$/.test(options.after)) throw new TypeError(`malformed offset "${options.after}"`);
      next = Number(options.after.slice(1)) + 1;
    }
    const end = this.events.length;
    for (;;) {
      if (this.closed) {
        throw new JournalClosedError();
      }
      options.signal?.throwIfAborted();
      const limit = options.live ? this.events.length : end;
      if (next < limit) {
        const e = this.events[next++] as EventEnvelope<unknown>;
        if (match(e)) yield e;
        continue;
      }
      if (!options.live) return;
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.waiters.delete(wake);
          options.signal?.removeEventListener('abort', wake);
          resolve();
        };
        this.waiters.add(wake);
        options.signal?.addEventListener('abort', wake);
      });
    }
  }
}

export class RecordingOffsets implements OffsetStore {
  readonly saved = new Map<string, string>();
  readonly history: string[] = [];
  failSaves = 0;

  async load(name: string): Promise<string | undefined> {
    return this.saved.get(name);
  }

  async save(name: string, offset: string): Promise<void> {
    if (this.failSaves > 0) {
      this.failSaves--;
      throw new Error('offset save failed on purpose');
    }
    this.saved.set(name, offset);
    this.history.push(offset);
  }
}

/** RecordingOffsets that also keeps status records, lists, deletes and locks (a shared store's abilities). */
export class RecordsOffsets extends RecordingOffsets {
  readonly capabilities = { projectionRecords: true as const };
  readonly statuses = new Map<string, string>();
  readonly locks = new Set<string>();

  async names(): Promise<string[]> {
    return [...new Set([...this.saved.keys(), ...this.statuses.keys()])].sort();
  }

  async deleteOffset(name: string): Promise<void> {
    this.saved.delete(name);
  }

  async saveStatus(name: string, status: string): Promise<void> {
    this.statuses.set(name, status);
  }

  async loadStatus(name: string): Promise<string | undefined> {
    return this.statuses.get(name);
  }

  async projectionLocked(name: string): Promise<boolean> {
    return this.locks.has(name);
  }

  async lockProjection(name: string): Promise<{ release(): Promise<void> }> {
    if (this.locks.has(name)) {
      throw new JournalLockedError(`projection ${name}`, { pid: 4242 });
    }
    this.locks.add(name);
    return { release: async () => void this.locks.delete(name) };
  }
}
