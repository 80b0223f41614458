import { close as closeFd } from 'node:fs';
import type { SegmentContents } from './segment-scan';

/** One segment file of the log, as the open journal holds it. */
export interface Segment {
  readonly number: number;
  readonly file: string;
  /** Open descriptor, or undefined for a sealed segment not read yet. */
  fd: number | undefined;
  opening: Promise<number> | undefined;
  /** Bytes in use; for the active segment, where the next frame goes. */
  end: number;
  /** No longer written to; it has or is getting its sidecar index. */
  sealed: boolean;
  /** Ids with events at or above their low-water mark in this segment. Dead (deletable) at 0. */
  liveIds: number;
  /** Holds corruption: never deleted automatically. */
  problems: boolean;
  readers: number;
  deleted: boolean;
  /** Deleted because a compacted copy (a new Segment with the same number) took its place. */
  replaced: boolean;
}

/** A segment just found or created: unopened, unsealed, empty. */
export function newSegment(number: number, file: string): Segment {
  return {
    number,
    file,
    fd: undefined,
    opening: undefined,
    end: 0,
    sealed: false,
    liveIds: 0,
    problems: false,
    readers: 0,
    deleted: false,
    replaced: false,
  };
}

/** Closes a deleted segment's descriptor, unless a read still uses it (that read closes it when done). */
export function closeWhenUnread(segment: Segment): void {
  if (segment.readers > 0 || segment.fd === undefined) return;
  const fd = segment.fd;
  segment.fd = undefined;
  closeFd(fd, () => undefined);
}

/** What an empty segment holds. */
export function emptyContents(segment: number): SegmentContents {
  return {
    segment,
    ids: [],
    runs: new Float64Array(0),
    marks: new Float64Array(0),
    events: new Float64Array(0),
    tags: [],
    tagged: new Float64Array(0),
    end: 0,
  };
}
