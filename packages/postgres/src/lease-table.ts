import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { type Lease, LeaseHeldError, type LeaseOptions } from '@cairn/actor-core';
import type { SqlDatabase } from './driver';
import { idToColumn } from './persistence-id';
import type { SchemaNames } from './schema';

export const DEFAULT_LEASE_TTL_MS = 15_000;
/** How often a refused acquire asks again while it may wait. */
const WAIT_POLL_MS = 100;

interface Held {
  readonly epoch: number;
  readonly holder: string;
  /** Renews the lease; stopped when a renewal finds the lease taken (the epoch stays: writes stay fenced). */
  readonly timer: NodeJS.Timeout;
}

/**
 * Leases in the streams table (lease_holder, lease_epoch, lease_until): taking one is a single upsert
 * that succeeds only when nobody holds the id or the holder's lease ran out, and raises the epoch. The
 * holder renews it every third of its lifetime. The journal passes the epoch of every id it holds with
 * each write, and the group commit statement stores the id's events only while that is still the id's epoch.
 */
export class LeaseTable {
  private readonly held = new Map<string, Held>();
  private readonly defaultHolder = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;

  constructor(
    private readonly db: SqlDatabase,
    private readonly names: SchemaNames,
    private readonly run: <T>(what: string, writing: boolean, call: () => Promise<T>) => Promise<T>,
  ) {}

  /** The epoch this process holds for the id, if it holds its lease. */
  epochOf(persistenceId: string): number | undefined {
    return this.held.get(persistenceId)?.epoch;
  }

  async acquire(persistenceId: string, options: LeaseOptions = {}): Promise<Lease> {
    const holder = options.holder ?? this.defaultHolder;
    const ttlMs = options.ttlMs ?? DEFAULT_LEASE_TTL_MS;
    const waitMs = options.waitMs ?? 0;
    const column = idToColumn(persistenceId);
    const deadline = Date.now() + waitMs;
    for (;;) {
      const [taken] = await this.run('acquireLease', true, () =>
        this.db.query<{ lease_epoch: number }>(
          `INSERT INTO ${this.names.streams} AS s (persistence_id, highest, lease_holder, lease_epoch, lease_until)
           VALUES ($1, 0, $2, 1, clock_timestamp() + $3 * interval '1 millisecond')
           ON CONFLICT (persistence_id) DO UPDATE SET lease_holder = EXCLUDED.lease_holder,
             lease_epoch = s.lease_epoch + 1, lease_until = EXCLUDED.lease_until
           WHERE s.lease_holder IS NULL OR s.lease_until < clock_timestamp()
           RETURNING s.lease_epoch`,
          [column, holder, ttlMs],
        ),
      );
      if (taken) {
        const epoch = taken.lease_epoch;
        const timer = setInterval(
          () => void this.renew(persistenceId, epoch, ttlMs),
          Math.max(10, ttlMs / 3),
        );
        timer.unref();
        this.held.set(persistenceId, { epoch, holder, timer });
        return { persistenceId, holder, epoch, release: () => this.release(persistenceId, epoch) };
      }
      const [current] = await this.run('acquireLease', false, () =>
        this.db.query<{ lease_holder: string | null; lease_until: Date | null }>(
          `SELECT lease_holder, lease_until FROM ${this.names.streams} WHERE persistence_id = $1`,
          [column],
        ),
      );
      if (Date.now() >= deadline) {
        throw new LeaseHeldError(
          persistenceId,
          current?.lease_holder ?? 'another holder',
          current?.lease_until ?? undefined,
        );
      }
      await new Promise((r) => setTimeout(r, Math.min(WAIT_POLL_MS, Math.max(1, deadline - Date.now()))));
    }
  }

  /** Extends the lease while this process holds that epoch; a lease found taken is forgotten here. */
  private async renew(persistenceId: string, epoch: number, ttlMs: number): Promise<void> {
    try {
      const rows = await this.db.query(
        `UPDATE ${this.names.streams} SET lease_until = clock_timestamp() + $3 * interval '1 millisecond'
         WHERE persistence_id = $1 AND lease_epoch = $2 RETURNING 1`,
        [idToColumn(persistenceId), epoch, ttlMs],
      );
      // Taken by another holder: stop renewing, but keep the epoch, so every later write is refused.
      if (rows.length === 0) clearInterval(this.held.get(persistenceId)?.timer);
    } catch {
      // The next renewal tries again; the fencing check keeps writes safe meanwhile.
    }
  }

  async release(persistenceId: string, epoch: number): Promise<void> {
    const held = this.held.get(persistenceId);
    if (held?.epoch !== epoch) return;
    clearInterval(held.timer);
    this.held.delete(persistenceId);
    await this.run('releaseLease', true, () =>
      this.db.query(
        `UPDATE ${this.names.streams} SET lease_holder = NULL, lease_until = NULL
         WHERE persistence_id = $1 AND lease_epoch = $2`,
        [idToColumn(persistenceId), epoch],
      ),
    );
  }

  /** Gives up every lease (on close). */
  async releaseAll(): Promise<void> {
    await Promise.allSettled([...this.held].map(([id, h]) => this.release(id, h.epoch)));
  }
}
