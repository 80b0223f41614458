import type { OrderedFilter, Position } from '@cairn/actor-core';
import type { SchemaNames } from './schema';

/**
 * The journal's global order on PostgreSQL, and why it never skips an event.
 *
 * A sequence (or identity) value is taken before the transaction commits, so transactions commit in
 * another order than their numbers: a reader that saw #2 before #1 committed would pass #1 forever. Each
 * row therefore also stores the id of the transaction that wrote it (`tx_id`, `pg_current_xact_id()`), and
 * the order is (tx_id, position). A reader only looks at rows whose transaction id is below the xmin of
 * the current snapshot (`pg_snapshot_xmin(pg_current_snapshot())`): every transaction below it has ended,
 * and every transaction that starts later gets a higher id, so the rows a reader may see only ever grow by
 * rows placed after everything it saw. The price: a transaction left open anywhere on the server (even one
 * that writes nothing of Cairn's) holds xmin, and so every live reader, back until it ends.
 *
 * The pair is packed into one integer, `tx_id * 2^64 + position`, a bigint: the core compares positions
 * and puts them in offsets, nothing else.
 */

const SHIFT = 64n;
const LOW = (1n << SHIFT) - 1n;

/** The position of a row. */
export function packPosition(tx: string, position: number): bigint {
  return (BigInt(tx) << SHIFT) | BigInt(position);
}

/** The (tx_id, position) of a position, as text parameters. */
export function unpackPosition(p: Position): [string, string] {
  const big = BigInt(p);
  return [(big >> SHIFT).toString(), (big & LOW).toString()];
}

/** Rows of one read query. */
export const ORDERED_PAGE = 2000;

const visible = 'tx_id < pg_snapshot_xmin(pg_current_snapshot())';

/**
 * The head: the highest (tx_id, position) of a row every transaction before which has ended, or of a row
 * truncation deleted (the floor), whichever is higher; no row when nothing was ever committed.
 */
export function headStatement(s: SchemaNames): string {
  return `
    SELECT tx_id::text AS tx, position FROM (
      (SELECT tx_id, position FROM ${s.journal} WHERE ${visible} ORDER BY tx_id DESC, position DESC LIMIT 1)
      UNION ALL
      (SELECT tx_id, position FROM ${s.floor} WHERE ${visible} ORDER BY tx_id DESC, position DESC LIMIT 1)
    ) h ORDER BY tx_id DESC, position DESC LIMIT 1`;
}

/**
 * Truncation: deletes an id's events below $2 and keeps the highest (tx_id, position) it deleted in the
 * floor table, so the head never goes back. Floor rows below the highest one readers may already use are
 * dropped; one not yet visible (its writer's transaction is above xmin) is kept until it is.
 */
export function truncateStatement(s: SchemaNames): string {
  return `
    WITH mark AS (
      UPDATE ${s.streams} SET lowest = GREATEST(lowest, $2) WHERE persistence_id = $1 RETURNING persistence_id
    ),
    gone AS (
      DELETE FROM ${s.journal} WHERE persistence_id = $1 AND seq_nr < $2 RETURNING tx_id, position
    ),
    kept AS (
      INSERT INTO ${s.floor} (tx_id, position)
      SELECT tx_id, position FROM gone ORDER BY tx_id DESC, position DESC LIMIT 1
      ON CONFLICT DO NOTHING RETURNING 1
    ),
    usable AS (
      SELECT tx_id, position FROM ${s.floor} WHERE ${visible} ORDER BY tx_id DESC, position DESC LIMIT 1
    )
    DELETE FROM ${s.floor} f USING usable u WHERE (f.tx_id, f.position) < (u.tx_id, u.position)`;
}

const COLUMNS =
  'persistence_id, seq_nr, tx_id::text AS tx, position, written_at, serializer_id, payload, crc32, tags';
const RANGE = '(tx_id, position) > ($1::xid8, $2::int8) AND (tx_id, position) <= ($3::xid8, $4::int8)';

/**
 * One page of an ordered read: $1..$4 the range (after, upTo] as (tx_id, position) pairs, $5 the page
 * size, then the filter's own parameters. All events and a tag's are paged through the
 * (tx_id, position) index; an id's through its primary key, in sequenceNr order (which is its global
 * order: an id's events are written by one statement at a time, each after the one before committed).
 */
export function orderedStatement(s: SchemaNames, filter: OrderedFilter): string {
  switch (filter.kind) {
    case 'all':
      return `SELECT ${COLUMNS} FROM ${s.journal} WHERE ${RANGE} ORDER BY tx_id, position LIMIT $5`;
    case 'tag':
      return `SELECT ${COLUMNS} FROM ${s.journal} WHERE ${RANGE} AND $6 = ANY(tags)
        ORDER BY tx_id, position LIMIT $5`;
    case 'persistenceId':
      return `SELECT ${COLUMNS} FROM ${s.journal}
        WHERE persistence_id = $6 AND seq_nr >= $7 AND seq_nr <= $8 AND ${RANGE} ORDER BY seq_nr LIMIT $5`;
  }
}
