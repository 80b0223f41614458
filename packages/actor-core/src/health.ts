/**
 * Health: what an operator pages on, as one synchronous report per journal, snapshot store and actor
 * system (`health()`), cheap enough for a liveness probe or a metrics scrape.
 */

/** 'ok': nothing to do; 'degraded': working, but look (corruption seen, near a limit); 'failed': not working. */
export type HealthStatus = 'ok' | 'degraded' | 'failed';

/** One thing checked. */
export interface HealthCheck {
  /** Stable name, e.g. `open`, `lock`, `last-commit`, `pending`, `corruption`, `disk` (an actor system prefixes its stores' checks with `journal.` / `snapshots.`). */
  readonly name: string;
  readonly status: HealthStatus;
  /** What was found, in words, for a log line or a health endpoint's body. */
  readonly detail: string;
  /** The check's figure, where it has one (seconds since the last commit, bytes used, ...). */
  readonly value?: number;
}

/** A health report: the worst status of its checks, and the checks. */
export interface HealthReport {
  readonly status: HealthStatus;
  readonly checks: readonly HealthCheck[];
}

const RANK: Readonly<Record<HealthStatus, number>> = { ok: 0, degraded: 1, failed: 2 };

/** The report of some checks: its status is the worst of theirs ('ok' for none). */
export function healthReport(checks: readonly HealthCheck[]): HealthReport {
  let status: HealthStatus = 'ok';
  for (const c of checks) if (RANK[c.status] > RANK[status]) status = c.status;
  return { status, checks };
}

/** A status as a number, for a gauge: 0 ok, 1 degraded, 2 failed. */
export function healthStatusValue(status: HealthStatus): number {
  return RANK[status];
}

/** Share of a bound from which a check says 'degraded'. */
export const HEALTH_NEAR_LIMIT = 0.8;

/** When the last write (commit, save) happened and whether it worked. */
export class LastWrite {
  private at: number | undefined;
  private error: unknown;

  succeeded(): void {
    this.at = Date.now();
    this.error = undefined;
  }

  failed(error: unknown): void {
    this.at = Date.now();
    this.error = error ?? new Error('failed');
  }

  /** `what`: "commit" or "save". A failed last write is 'failed' until one succeeds. */
  check(name: string, what: string): HealthCheck {
    if (this.at === undefined) return { name, status: 'ok', detail: `no ${what} since open` };
    const age = (Date.now() - this.at) / 1000;
    if (this.error !== undefined) {
      return {
        name,
        status: 'failed',
        detail: `the last ${what} failed ${age.toFixed(1)} s ago: ${(this.error as Error)?.message ?? this.error}`,
        value: age,
      };
    }
    return { name, status: 'ok', detail: `the last ${what} succeeded ${age.toFixed(1)} s ago`, value: age };
  }
}
