import type { PersistenceError } from './errors';

/**
 * Something a journal or store noticed and handled without failing the call: a torn tail cut back on
 * open, a corrupt snapshot skipped in favour of an older one, a stale lock taken over.
 */
export interface PersistenceReport {
  /** A stable identifier: 'torn-tail-repaired', 'snapshot-skipped', 'stale-lock-taken', ... */
  readonly kind: string;
  readonly message: string;
  readonly persistenceId?: string;
  readonly error?: PersistenceError;
}

export type Reporter = (report: PersistenceReport) => void;

/** Emits a process warning (shown on stderr by default; `process.on('warning')` to route it). */
export const defaultReporter: Reporter = (report) => {
  process.emitWarning(report.message, { code: `CAIRN_${report.kind.toUpperCase().replaceAll('-', '_')}` });
};
