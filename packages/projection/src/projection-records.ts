import type { ProjectionSource } from './projection-options';

/** What a projection writes about itself when it starts, stops, fails, and what operators did to it. */
export interface ProjectionStatus {
  readonly state: 'running' | 'stopped' | 'failed';
  readonly source: ProjectionSource;
  /** When this status was written (ms since the epoch). */
  readonly updatedAt: number;
  /** The process that ran it last. */
  readonly pid: number;
  /** The timestamp of the last event handled, when one was. */
  readonly lastEventTimestamp?: number;
  /** Why it failed. */
  readonly error?: string;
  /** The event it could not get past. */
  readonly failedEvent?: { persistenceId: string; sequenceNr: number; offset: string };
  /** Events an operator skipped (`cairn projections skip`), newest last. */
  readonly skipped?: ReadonlyArray<{ persistenceId: string; sequenceNr: number; offset: string; at: number }>;
}

export function encodeStatus(status: ProjectionStatus): string {
  return JSON.stringify(status);
}

export function decodeStatus(text: string | undefined): ProjectionStatus | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as ProjectionStatus;
    return typeof value === 'object' && value !== null && typeof value.state === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}
