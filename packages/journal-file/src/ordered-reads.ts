import {
  JournalCorruptedError,
  type OrderedFilter,
  type PositionedEvent,
  PositionedEventInBuffer,
} from '@cairn/actor-core';
import type { IdIndex } from './log-index';
import type { LogReader } from './log-reader';
import type { OrderedIndex, OrderedSlot } from './ordered-index';
import { decodeRecord, isBadRecord, isEventKind, payloadStart, recordTags } from './record-codec';
import type { Segment } from './segment';

/** Events per page of an ordered read (allEvents, eventsByTag). */
const ORDERED_PAGE = 512;
/** An ordered read reads neighbouring records together, through gaps below this many bytes. */
const ORDERED_GAP = 64 * 1024;
/** ... in chunks of at most this many bytes. */
const ORDERED_CHUNK = 1024 * 1024;

/**
 * The file journal's reads in the global order (what its queries are built on): one id's events from its
 * own log, or every event (or a tag's) a page at a time from the ordered index, their records read with
 * their neighbours and verified like any read. Shares the journal's index, segments and order.
 */
export class OrderedReads {
  constructor(
    private readonly logReader: LogReader,
    private readonly order: OrderedIndex,
    private readonly index: Map<string, IdIndex>,
    private readonly segments: Map<number, Segment>,
  ) {}

  /** The events with `after < position <= upTo` that match `filter`, in pages. */
  read(after: number, upTo: number, filter: OrderedFilter): AsyncGenerator<PositionedEvent[]> {
    if (filter.kind === 'persistenceId') return this.ofId(after, upTo, filter);
    return this.pages(after, upTo, filter.kind === 'tag' ? filter.tag : undefined);
  }

  /** One id's events in the global order: its own log (ascending sequenceNr is ascending position). */
  private async *ofId(
    after: number,
    upTo: number,
    filter: Extract<OrderedFilter, { kind: 'persistenceId' }>,
  ): AsyncGenerator<PositionedEvent[]> {
    const pages = this.logReader.read(
      filter.persistenceId,
      filter.fromSequenceNr,
      filter.toSequenceNr,
      Number.MAX_SAFE_INTEGER,
    );
    for await (const page of pages) {
      const kept = (page as PositionedEventInBuffer[]).filter(
        (e) => e.position > after && e.position <= upTo,
      );
      if (kept.length > 0) yield kept;
      if (page.length > 0 && (page[page.length - 1] as PositionedEventInBuffer).position > upTo) return;
    }
  }

  /**
   * Every event (or a tag's) in the global order, a page at a time: the page's places come from the
   * ordered index, their records are read (neighbours together) and verified like any read.
   */
  private async *pages(
    after: number,
    upTo: number,
    tag: string | undefined,
  ): AsyncGenerator<PositionedEvent[]> {
    const gone = (id: string, sequenceNr: number) => sequenceNr < (this.index.get(id)?.lowWater ?? 1);
    for (;;) {
      const slots = this.order.page(after, upTo, tag, ORDERED_PAGE, gone);
      if (slots.length === 0) return;
      // Resolved now, with the slots: a compaction replaces the Segment object and moves the offsets
      // together, so a slot and its Segment always agree (a replaced one reads as empty: page again).
      const page = await this.readSlots(
        slots,
        slots.map((slot) => this.segments.get(slot.segment)),
      );
      if (page === undefined) continue;
      after = slots[slots.length - 1]!.position;
      if (page.length > 0) yield page;
    }
  }

  /** The slots' events, or undefined when a segment was replaced or deleted meanwhile (read the page again). */
  private async readSlots(
    slots: readonly OrderedSlot[],
    segments: ReadonlyArray<Segment | undefined>,
  ): Promise<PositionedEvent[] | undefined> {
    const page: PositionedEvent[] = [];
    let i = 0;
    while (i < slots.length) {
      const segment = segments[i];
      const first = slots[i]!;
      if (!segment) {
        // Deleted: every event in it was truncated. Skipped.
        i++;
        continue;
      }
      let j = i + 1;
      let stop = first.offset + first.length;
      while (j < slots.length && segments[j] === segment) {
        const next = slots[j]!;
        if (next.offset < stop || next.offset - stop > ORDERED_GAP) break;
        if (next.offset + next.length - first.offset > ORDERED_CHUNK) break;
        stop = next.offset + next.length;
        j++;
      }
      const bytes = await this.logReader.readSegment(
        segment,
        first.offset,
        stop - first.offset,
        first.persistenceId,
        first.sequenceNr,
      );
      if (bytes.length === 0) return undefined;
      for (let k = i; k < j; k++)
        page.push(this.positionedEvent(slots[k]!, segment.file, bytes, slots[k]!.offset - first.offset));
      i = j;
    }
    return page;
  }

  /** The event of `slot` from its record at `at` in `bytes`, verified; JournalCorruptedError names it otherwise. */
  private positionedEvent(slot: OrderedSlot, file: string, bytes: Buffer, at: number): PositionedEvent {
    const { persistenceId, sequenceNr, position } = slot;
    const entry = this.index.get(persistenceId);
    const corrupt = entry?.corrupt;
    if (corrupt && sequenceNr >= corrupt.sequenceNr) {
      throw new JournalCorruptedError({ persistenceId, ...corrupt });
    }
    const idBytes = Buffer.from(persistenceId, 'utf8');
    const record = decodeRecord(bytes, at, at + slot.length, idBytes);
    const fail = (reason: string) =>
      new JournalCorruptedError({ persistenceId, sequenceNr, file, offset: slot.offset, reason });
    if (isBadRecord(record)) throw fail(record.reason);
    if (!isEventKind(record.kind) || record.sequenceNr !== sequenceNr) {
      throw fail(
        `the global index expects sequenceNr ${sequenceNr} here, the record is kind ${record.kind} sequenceNr ${record.sequenceNr}`,
      );
    }
    if (record.position !== 0 && record.position !== position) {
      throw fail(`the global index expects position ${position} here, the record holds ${record.position}`);
    }
    const start = payloadStart(bytes, at, idBytes.length);
    return new PositionedEventInBuffer(
      persistenceId,
      position,
      sequenceNr,
      record.timestamp,
      record.serializerId,
      bytes,
      start,
      at + record.length,
      recordTags(bytes, at, idBytes.length),
    );
  }
}
