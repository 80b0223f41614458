import type { SqlSession } from './driver';
import { maskSecrets } from './mask';

/**
 * A transaction that holds every live query on the server back: the oldest one still open, whose id is
 * the xmin of every snapshot, so rows committed after it began stay invisible to readers until it ends
 * (see the README's "Queries"). Usually a session that began a transaction and never ended it ("idle in
 * transaction"): `idle_in_transaction_session_timeout` ends such sessions; `SELECT
 * pg_terminate_backend(pid)` ends one now.
 */
export interface ReaderBlocker {
  /** The blocking backend's process id on the server (pg_stat_activity.pid); 0 for a prepared transaction. */
  readonly pid: number;
  /** How long its transaction has been open, in ms. */
  readonly transactionAgeMs: number;
  /** Its state ("idle in transaction", "active", ...; "prepared" for a prepared transaction). */
  readonly state: string;
  /** Its application_name (a prepared transaction's gid). */
  readonly applicationName: string;
  /** The role it runs as. */
  readonly user: string;
  /** Its current or last statement, at most 300 characters, passwords masked. */
  readonly query: string;
}

/**
 * $1: the minimum age in ms. Needs pg_read_all_stats (or superuser) to see other roles' queries; without
 * it the server shows "<insufficient privilege>" as the query.
 */
const BLOCKER_SQL = `
  WITH horizon AS (SELECT xid(pg_snapshot_xmin(pg_current_snapshot())) AS xmin)
  SELECT a.pid, coalesce(a.state, '') AS state, coalesce(a.application_name, '') AS application_name,
    coalesce(a.usename::text, '') AS usename, left(coalesce(a.query, ''), 300) AS query,
    floor(extract(epoch FROM clock_timestamp() - a.xact_start) * 1000)::bigint AS age_ms
  FROM pg_stat_activity a, horizon h
  WHERE a.backend_xid = h.xmin AND a.xact_start <= clock_timestamp() - make_interval(secs => $1::float8 / 1000)
  UNION ALL
  SELECT 0, 'prepared', p.gid, p.owner::text, 'PREPARE TRANSACTION ' || quote_literal(p.gid),
    floor(extract(epoch FROM clock_timestamp() - p.prepared) * 1000)::bigint
  FROM pg_prepared_xacts p, horizon h
  WHERE p.transaction = h.xmin AND p.prepared <= clock_timestamp() - make_interval(secs => $1::float8 / 1000)
  LIMIT 1`;

/** The transaction holding live queries back, if one has been open at least `minAgeMs`. */
export async function findReaderBlocker(
  session: SqlSession,
  minAgeMs: number,
): Promise<ReaderBlocker | undefined> {
  const [row] = await session.query<{
    pid: number;
    state: string;
    application_name: string;
    usename: string;
    query: string;
    age_ms: number;
  }>(BLOCKER_SQL, [minAgeMs]);
  if (!row) return undefined;
  return {
    pid: row.pid,
    transactionAgeMs: row.age_ms,
    state: row.state,
    applicationName: row.application_name,
    user: row.usename,
    query: maskSecrets(row.query),
  };
}

/** One line naming a blocker, for reports and `cairn` output. */
export function describeBlocker(b: ReaderBlocker): string {
  const who =
    b.pid === 0
      ? `prepared transaction "${b.applicationName}"`
      : `server pid ${b.pid} (${b.applicationName || 'no application_name'}, user ${b.user})`;
  return `${who}, ${b.state}, transaction open ${Math.round(b.transactionAgeMs / 1000)} s, query: ${b.query.replace(/\s+/g, ' ').slice(0, 120)}`;
}
