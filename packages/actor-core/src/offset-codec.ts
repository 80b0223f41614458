import { randomBytes } from 'node:crypto';
import type { Position } from './query-reader';
import { describe } from './validation';

/**
 * Offsets are opaque to users; inside they are `<journal id>.<position>.<check>`:
 * - the journal id: 16 lowercase hex characters, random, chosen when the journal's storage was created
 *   and kept with its data, so an offset of another journal is refused instead of read as a position;
 * - the position in the journal's global order (a decimal integer >= 1: up to 16 digits for a counter,
 *   up to 40 for a backend whose positions are bigints packing a pair);
 * - a check of the two (base 36), so a garbled offset is refused instead of resuming somewhere else.
 */

/** A new journal id, for a backend creating its storage. */
export function newJournalId(): string {
  return randomBytes(8).toString('hex');
}

/** True for a string shaped like a journal id (what a backend reads back from its storage). */
export function isJournalId(value: unknown): value is string {
  return typeof value === 'string' && /^[0-9a-f]{16}$/.test(value);
}

/** Encodes and decodes the offsets of one journal. */
export class OffsetCodec {
  private readonly seed: number;

  constructor(readonly journalId: string) {
    if (!isJournalId(journalId))
      throw new TypeError(`a journal id is 16 hex characters, got ${describe(journalId)}`);
    this.seed = parseInt(journalId.slice(0, 8), 16) ^ Math.imul(parseInt(journalId.slice(8), 16), 0x9e3779b1);
  }

  encode(position: Position): string {
    return `${this.journalId}.${position}.${this.check(position).toString(36)}`;
  }

  /**
   * The position an offset of this journal stands for (a number when it is a safe integer, else a
   * bigint); TypeError naming the offset otherwise.
   */
  decode(offset: unknown, what = 'after'): Position {
    if (typeof offset !== 'string') {
      throw new TypeError(
        `${what} must be an offset string from this journal's queries, got ${describe(offset)}`,
      );
    }
    const match = /^([0-9a-f]{16})\.([1-9]\d{0,39})\.([0-9a-z]{1,7})$/.exec(offset);
    if (match && match[1] !== this.journalId) {
      throw new TypeError(
        `${what}: offset "${offset}" belongs to another journal (id ${match[1]}; this journal's id is ${this.journalId})`,
      );
    }
    let position: Position = Number.NaN;
    if (match) {
      const big = BigInt(match[2]!);
      position = big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
    }
    if (!match || this.check(position).toString(36) !== match[3]) {
      throw new TypeError(
        `${what}: "${offset.slice(0, 80)}" is not an offset of this journal (garbled or made up)`,
      );
    }
    return position;
  }

  /**
   * A 32-bit mix of the journal id and the position (murmur3's finalizer). A bigint beyond the safe
   * integers is mixed in 32-bit words, lowest first.
   */
  private check(position: Position): number {
    if (typeof position === 'bigint' && position <= BigInt(Number.MAX_SAFE_INTEGER)) {
      position = Number(position);
    }
    if (typeof position === 'number') {
      return finalize(
        this.seed ^ (position >>> 0) ^ Math.imul(Math.floor(position / 0x100000000), 0x85ebca6b),
      );
    }
    let h = this.seed;
    for (let rest = position; rest > 0n; rest >>= 32n) h = finalize(h ^ Number(rest & 0xffffffffn));
    return h;
  }
}

function finalize(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
