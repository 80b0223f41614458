import {
  AbstractMessageJournal,
  type CorruptionLocation,
  checkOpenOptions,
  checkPersistenceId,
  isPersistenceError,
  type JournalCapabilities,
  JournalCorruptedError,
  type JournalMetrics,
  type JournalWrite,
  type Lease,
  LeaseLostError,
  type LeaseOptions,
  type LeaseProvider,
  type OrderedFilter,
  type Position,
  type PositionedEvent,
  type StoredEvent,
  type WriteConflicts,
} from '@cairn/actor-core';
import { isRetryable, type Listener, type SqlDatabase, storageError } from './driver';
import {
  headStatement,
  ORDERED_PAGE,
  orderedStatement,
  packPosition,
  truncateStatement,
  unpackPosition,
} from './global-order';
import { LeaseTable } from './lease-table';
import { idFromColumn, idToColumn } from './persistence-id';
import { PostgresOffsetStore } from './postgres-offset-store';
import {
  type Connection,
  connect,
  POSTGRES_JOURNAL_OPTION_TYPES,
  type PostgresMessageJournalOptions,
} from './postgres-options';
import { ReadBatcher } from './read-batcher';
import { describeBlocker, findReaderBlocker, type ReaderBlocker } from './reader-blocker';
import { rowChecksum } from './record-check';
import { checkSchemaForReading, prepareSchema, type SchemaNames } from './schema';

/** Rows one read query fetches. */
const READ_PAGE = 2000;
/** The most ids one batched highestSequenceNr statement asks for. */
const HIGHEST_BATCH = 500;
/** The most reads whose first pages go in one statement (each up to READ_PAGE rows). */
const WINDOW_BATCH = 32;
/**
 * The least time between two NOTIFYs of one journal: the commits of a busy journal are announced once
 * per interval (other processes' live queries wake at most this much later than at once).
 */
const ANNOUNCE_INTERVAL_MS = 20;
/** How often a batch rolled back by a deadlock (two processes' batches locking ids in other orders) is retried. */
const DEADLOCK_RETRIES = 5;
/**
 * While live queries are open, how often the head is read besides the NOTIFY wake-ups: it finds what no
 * notification announces (a blocking transaction that ended, a lost listening connection).
 */
const LIVE_POLL_MS = 250;
/** While live queries are open, every this many polls the watcher looks for a transaction holding them back. */
const BLOCKER_EVERY_POLLS = 4;
/** A transaction holding live queries back is named in metrics once it is this old. */
const BLOCKER_METRIC_AGE_MS = 5_000;
/** ... and reported (once per blocking backend) once it is this old. */
const BLOCKER_REPORT_AGE_MS = 30_000;

/** PostgresMessageJournal's metrics: the core's, plus what holds its live queries back. */
export interface PostgresJournalMetrics extends JournalMetrics {
  /**
   * The transaction holding this server's live queries back, as last seen (checked about every second
   * while live queries are open): one open for more than 5 s whose id is the xmin of every snapshot.
   * Undefined when none (or no live query is open).
   */
  readonly liveQueriesHeldBackBy: ReaderBlocker | undefined;
}

interface EventRow {
  seq_nr: number;
  written_at: number;
  serializer_id: number;
  payload: Buffer;
  crc32: number;
  tags: string[];
}

/** One read's page: the id, the sequenceNr range asked for and the page's width. */
interface WindowRequest {
  readonly column: string;
  readonly from: number;
  readonly to: number;
  readonly width: number;
}

/** A row of readStatement: the id's highest and the window's end, then the event (null: none in the window). */
interface WindowRow {
  highest: number;
  hi: number | null;
  seq_nr: number | null;
  written_at: number;
  serializer_id: number;
  payload: Buffer;
  crc32: number;
  tags: string[];
}

interface OrderedRow extends EventRow {
  persistence_id: string;
  tx: string;
  position: number;
}

/**
 * A journal in PostgreSQL, shared by any number of processes.
 *
 * Appends of one process are group-committed: the appends queued while a commit is in flight go to the
 * server as ONE statement (arrays unnested into the streams and journal tables), which checks per id that
 * the stored highest sequenceNr is the one the id's events continue. An id another process wrote
 * meanwhile is left out of that statement (its appends fail with SequenceConflictError when they expected
 * a number, are numbered again otherwise) while the other ids commit. Up to `poolSize` such commits are in
 * flight at once, never two of one id. The streams table holds each id's highest, so a writer still
 * holding an old number after truncateBefore conflicts instead of reusing it.
 *
 * Every read checks each row's CRC-32; a row altered behind Cairn's back rejects with
 * JournalCorruptedError naming the table, id and sequenceNr. When the connection fails during a write
 * the append rejects with StorageError ("outcome unknown"): recovery reads what really committed.
 */
export class PostgresMessageJournal<M = unknown> extends AbstractMessageJournal<M> implements LeaseProvider {
  /**
   * Persistent; commits run concurrently; several processes may write (the core reads highest sequence
   * numbers from the database, never from memory); grants exclusive leases per id; EventQuery, whose live
   * queries see other processes' commits (LISTEN/NOTIFY and polling); opens read-only (`readOnly: true`:
   * the schema must exist at this layout version, nothing is created or migrated, every write, lease,
   * offset save and projection lock is refused with ReadOnlyError, and the server sessions are read-only).
   */
  readonly capabilities: JournalCapabilities = {
    persistent: true,
    readOnly: true,
    health: true,
    concurrentCommits: true,
    sharedWriters: true,
    leases: true,
    import: true,
    flush: true,
    metrics: true,
    query: true,
    deletion: true,
    foreignCommits: true,
  };
  /** The schema holding the tables. */
  readonly schema: string;
  private readonly db: SqlDatabase;
  private readonly names: SchemaNames;
  private readonly poolSize: number;
  private readonly writeSql: string;
  private readonly readSql: string;
  /** highestSequenceNr reads asked for at once go as one statement. */
  private readonly highests: ReadBatcher<string, number>;
  /** The first pages of reads asked for at once go as one statement. */
  private readonly firstWindows: ReadBatcher<WindowRequest, WindowRow[]>;
  private readonly leases: LeaseTable;
  private readonly headSql: string;
  private readonly truncateSql: string;
  private journalId = '';
  /** Tells this journal's own notifications from other processes'. */
  private readonly token = `${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  /**
   * The NOTIFY after commits: one in flight at a time, at least ANNOUNCE_INTERVAL_MS apart (the commits
   * in between share the next one).
   */
  private announcing: Promise<void> | undefined;
  private announceAgain = false;
  private lastAnnounced = Number.NEGATIVE_INFINITY;
  private announceTimer: NodeJS.Timeout | undefined;
  private shutting = false;
  /** The watcher's listening connection (while live queries are open). */
  private listener: Promise<Listener | undefined> | undefined;
  private offsetStoreInstance: PostgresOffsetStore | undefined;
  private heldBackBy: ReaderBlocker | undefined;
  private readonly reportedBlockers = new Set<number>();
  /** The watcher's head read in flight, awaited by close. */
  private polling: Promise<void> | undefined;

  private constructor(options: PostgresMessageJournalOptions, connection: Connection) {
    super(options);
    this.db = connection.db;
    this.names = connection.names;
    this.poolSize = connection.poolSize;
    this.schema = connection.names.name;
    this.writeSql = groupCommitStatement(this.names);
    this.readSql = readStatement(this.names);
    // Half the pool each at most, so a recovery storm leaves connections to the commits.
    const slots = Math.max(1, Math.floor(this.poolSize / 2));
    this.highests = new ReadBatcher(
      async (columns) => {
        const rows = await this.db.prepared<{ persistence_id: string; highest: number }>(
          `SELECT persistence_id, highest FROM ${this.names.streams} WHERE persistence_id = ANY($1::text[])`,
          [columns],
        );
        return new Map(rows.map((r) => [r.persistence_id, r.highest]));
      },
      0,
      slots,
      HIGHEST_BATCH,
    );
    this.firstWindows = new ReadBatcher((requests) => this.readWindows(requests), [], slots, WINDOW_BATCH);
    this.headSql = headStatement(this.names);
    this.truncateSql = truncateStatement(this.names);
    this.leases = new LeaseTable(this.db, this.names, (what, writing, call) => this.run(what, writing, call));
  }

  /**
   * Takes the exclusive lease of `persistenceId` for this journal's process (see Lease): refused with
   * LeaseHeldError naming the holder when another holder keeps it longer than `waitMs` (default 0). While
   * held, every append of this journal to the id is stored only if the lease is still this one (checked in
   * the group commit statement), and fails with LeaseLostError otherwise. Renewed every third of `ttlMs`
   * (default 15000) until released or the journal closes.
   */
  async acquireLease(persistenceId: string, options: LeaseOptions = {}): Promise<Lease> {
    this.checkOpen();
    checkPersistenceId(persistenceId);
    this.refuseWhenReadOnly('acquireLease');
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    const { holder, waitMs, ttlMs } = options;
    if (holder !== undefined && (typeof holder !== 'string' || holder.length === 0)) {
      throw new TypeError('options.holder must be a non-empty string');
    }
    for (const [name, value] of [
      ['waitMs', waitMs],
      ['ttlMs', ttlMs],
    ] as const) {
      if (value !== undefined && !(Number.isSafeInteger(value) && value >= (name === 'ttlMs' ? 30 : 0))) {
        throw new RangeError(
          `options.${name} must be an integer >= ${name === 'ttlMs' ? 30 : 0}, got ${String(value)}`,
        );
      }
    }
    return this.leases.acquire(persistenceId, options);
  }

  /**
   * The OffsetStore kept in this journal's schema (`<schema>.offsets`), sharing its pool: projection
   * offsets and statuses, a lock per projection name, and `transact` for exactly-once projections (see
   * PostgresOffsetStore). One per journal; it lives as long as the journal.
   */
  offsetStore(): PostgresOffsetStore {
    this.checkOpen();
    this.offsetStoreInstance ??= new PostgresOffsetStore(
      () => this.checkOpen(),
      this.db,
      this.names,
      this.readOnly,
    );
    return this.offsetStoreInstance;
  }

  /**
   * The transaction that holds every live query on this server back right now, if one has been open at
   * least `minAgeMs` (default 0): the oldest open transaction, whose id is the xmin of every snapshot, so
   * events committed after it began stay invisible to readers until it ends. Names its server pid, age,
   * state, application, role and statement (see ReaderBlocker). Seeing other roles' statements needs
   * pg_read_all_stats.
   */
  async readerBlocker(minAgeMs = 0): Promise<ReaderBlocker | undefined> {
    this.checkOpen();
    if (!(Number.isSafeInteger(minAgeMs) && minAgeMs >= 0)) {
      throw new RangeError(`minAgeMs must be an integer >= 0, got ${String(minAgeMs)}`);
    }
    return this.run('readerBlocker', false, () => findReaderBlocker(this.db, minAgeMs));
  }

  /** The core's metrics plus `liveQueriesHeldBackBy` (see PostgresJournalMetrics). */
  override metrics(): PostgresJournalMetrics {
    return { ...super.metrics(), liveQueriesHeldBackBy: this.heldBackBy };
  }

  /**
   * Connects (lazily, through a pool of `poolSize`) and creates the schema and tables when missing.
   * Defaults: schema "cairn", poolSize 4, statementTimeoutMs 30000, maxBatchSize 1000,
   * maxBatchDelayMs 100, serializer "msgpack". Durable as the server is configured (synchronous_commit
   * on, PostgreSQL's default, makes every acknowledged append survive a server crash).
   * @throws TypeError or RangeError for bad options; StorageError when the server cannot be reached or
   *   its schema was made by a newer version.
   */
  static async open<M = unknown>(options: PostgresMessageJournalOptions): Promise<PostgresMessageJournal<M>> {
    checkOpenOptions('PostgresMessageJournal', options, POSTGRES_JOURNAL_OPTION_TYPES);
    const connection = connect(options, 'journal');
    let journal: PostgresMessageJournal<M>;
    try {
      journal = new PostgresMessageJournal<M>(options, connection);
      const prepare = options.readOnly ? checkSchemaForReading : prepareSchema;
      journal.journalId = await prepare(connection.db, connection.names).catch((e: unknown) => {
        if (isPersistenceError(e)) throw e;
        throw storageError(
          e,
          `opening journal schema "${connection.names.name}"`,
          connection.db.target,
          false,
        );
      });
    } catch (e) {
      await connection.db.close().catch(() => undefined);
      throw e;
    }
    return journal;
  }

  protected override maxConcurrentCommits(): number {
    return this.poolSize;
  }

  protected async _highestSequenceNr(persistenceId: string): Promise<number> {
    return this.run('highestSequenceNr', false, () => this.highests.get(idToColumn(persistenceId)));
  }

  protected override async _lowWaterMark(persistenceId: string): Promise<number> {
    const [row] = await this.run('read', false, () =>
      this.db.query<{ lowest: number }>(
        `SELECT lowest FROM ${this.names.streams} WHERE persistence_id = $1`,
        [idToColumn(persistenceId)],
      ),
    );
    return row?.lowest ?? 1;
  }

  protected async _write(writes: readonly JournalWrite[]): Promise<WriteConflicts> {
    // The core gives each id's writes as one consecutive run: collapse them to one chain per id, in id
    // order (so two processes' batches lock the stream rows in the same order).
    const chains = new Map<string, { prev: number; last: number; id: string; epoch: number }>();
    const events: { column: string; e: StoredEvent }[] = [];
    for (const w of writes) {
      const column = idToColumn(w.persistenceId);
      const first = w.events[0]!.sequenceNr;
      const last = w.events[w.events.length - 1]!.sequenceNr;
      const chain = chains.get(column);
      if (chain) chain.last = last;
      else
        chains.set(column, {
          prev: first - 1,
          last,
          id: w.persistenceId,
          epoch: this.leases.epochOf(w.persistenceId) ?? -1,
        });
      for (const e of w.events) events.push({ column, e });
    }
    const ids = [...chains.keys()].sort();
    const payloadLengths = events.map((x) => x.e.payload.byteLength);
    const params = [
      ids,
      ids.map((id) => chains.get(id)!.prev),
      ids.map((id) => chains.get(id)!.last),
      events.map((x) => x.column),
      events.map((x) => x.e.sequenceNr),
      events.map((x) => x.e.timestamp),
      events.map((x) => x.e.serializerId),
      // The payloads as ONE bytea, sent in binary (a bytea[] goes as text: every byte as two hex digits,
      // escaped, which made the statement twice as long and its socket write the client's largest cost).
      Buffer.concat(events.map((x) => x.e.payload)),
      events.map((x) =>
        rowChecksum(x.column, x.e.sequenceNr, x.e.timestamp, x.e.serializerId, x.e.payload, x.e.tags),
      ),
      ids.map((id) => chains.get(id)!.epoch),
      // One JSON array per event ('' for none): PostgreSQL's arrays of arrays must be rectangular.
      events.map((x) => (x.e.tags && x.e.tags.length > 0 ? JSON.stringify(x.e.tags) : '')),
      payloadLengths,
    ];
    const stored = await this.run('append', true, async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await this.db.prepared<{ persistence_id: string }>(this.writeSql, params);
        } catch (e) {
          // A deadlock or serialization failure rolled the statement back whole: nothing was stored.
          if (!isRetryable(e) || attempt >= DEADLOCK_RETRIES) throw e;
        }
      }
    });
    if (stored.length > 0) this.announce();
    if (stored.length === ids.length) return new Map();
    const ok = new Set(stored.map((r) => r.persistence_id));
    const conflicting = ids.filter((id) => !ok.has(id));
    const actual = await this.run('append', false, () =>
      this.db.query<{
        persistence_id: string;
        highest: number;
        lease_epoch: number;
        lease_holder: string | null;
      }>(
        `SELECT persistence_id, highest, lease_epoch, lease_holder FROM ${this.names.streams}
         WHERE persistence_id = ANY($1::text[])`,
        [conflicting],
      ),
    );
    const rows = new Map(actual.map((r) => [r.persistence_id, r]));
    return new Map<string, number | Error>(
      conflicting.map((column): [string, number | Error] => {
        const { id, epoch } = chains.get(column)!;
        const row = rows.get(column);
        // Fenced: the lease this process wrote under passed to another holder.
        if (epoch >= 0 && row?.lease_epoch !== epoch) {
          return [id, new LeaseLostError(id, epoch, row?.lease_holder ?? undefined)];
        }
        return [id, row?.highest ?? 0];
      }),
    );
  }

  protected async *_read(
    persistenceId: string,
    fromSequenceNr: number,
    toSequenceNr: number,
    max: number,
  ): AsyncIterable<readonly StoredEvent[]> {
    const column = idToColumn(persistenceId);
    if (max <= 0 || fromSequenceNr > toSequenceNr) return;
    const window = (from: number, width: number): WindowRequest => ({
      column,
      from,
      to: toSequenceNr,
      width,
    });
    let left = max;
    let from = fromSequenceNr;
    // The first page goes with the first pages of other reads asked for meanwhile (a recovery storm).
    let pending: Promise<WindowRow[]> | undefined = this.run('read', false, () =>
      this.firstWindows.get(window(fromSequenceNr, Math.min(READ_PAGE, left))),
    );
    try {
      while (pending) {
        const rows = await pending;
        pending = undefined;
        // No streams row: an id never written (or a damaged one): whatever rows it has, unbounded.
        if (rows.length === 0) {
          yield* this.readWithoutStream(persistenceId, column, from, toSequenceNr, left);
          return;
        }
        const { highest, hi } = rows[0]!;
        const page: StoredEvent[] = [];
        for (const row of rows) {
          if (row.seq_nr !== null) page.push(this.checked(persistenceId, column, row as EventRow));
        }
        left -= page.length;
        // The window ends at hi (its rows are consecutive sequence numbers; a missing one is the core's
        // to name); past the id's highest, the range asked for or \`max\` there is nothing more. The next
        // window is asked for before this page is handed out: the server reads it while the caller
        // decodes this one (one page ahead at most).
        if (hi !== null && hi < highest && hi < toSequenceNr && left > 0) {
          from = hi + 1;
          const next = window(from, Math.min(READ_PAGE, left));
          pending = this.run('read', false, () =>
            this.readWindows([next]).then((found) => found.get(next) ?? []),
          );
        }
        if (page.length > 0) yield page;
      }
    } finally {
      // A read abandoned mid-way: the page asked for ahead settles before the read ends (close waits
      // for reads, and nothing may reject unobserved).
      await pending?.catch(() => undefined);
    }
  }

  /** Windows of several reads in one statement (see readStatement); a request without a streams row is absent. */
  private async readWindows(requests: readonly WindowRequest[]): Promise<Map<WindowRequest, WindowRow[]>> {
    const rows = await this.db.prepared<WindowRow & { k: number }>(this.readSql, [
      requests.map((r) => r.column),
      requests.map((r) => r.from),
      requests.map((r) => r.to),
      requests.map((r) => r.width),
    ]);
    const found = new Map<WindowRequest, WindowRow[]>();
    for (const row of rows) {
      const request = requests[row.k - 1]!;
      const list = found.get(request);
      if (list) list.push(row);
      else found.set(request, [row]);
    }
    return found;
  }

  /** The read of an id without a streams row (pages ordered by the primary key, stopped by LIMIT). */
  private async *readWithoutStream(
    persistenceId: string,
    column: string,
    fromSequenceNr: number,
    toSequenceNr: number,
    max: number,
  ): AsyncIterable<readonly StoredEvent[]> {
    let from = fromSequenceNr;
    let left = max;
    while (left > 0 && from <= toSequenceNr) {
      const limit = Math.min(READ_PAGE, left);
      const rows = await this.run('read', false, () =>
        this.db.query<EventRow>(
          `SELECT seq_nr, written_at, serializer_id, payload, crc32, tags FROM ${this.names.journal}
           WHERE persistence_id = $1 AND seq_nr >= $2 AND seq_nr <= $3 ORDER BY seq_nr LIMIT $4`,
          [column, from, toSequenceNr, limit],
        ),
      );
      if (rows.length === 0) return;
      const page: StoredEvent[] = new Array(rows.length);
      for (let i = 0; i < rows.length; i++) page[i] = this.checked(persistenceId, column, rows[i]!);
      yield page;
      if (rows.length < limit) return;
      left -= rows.length;
      from = rows[rows.length - 1]!.seq_nr + 1;
    }
  }

  protected async _truncateBefore(persistenceId: string, sequenceNr: number): Promise<void> {
    await this.run('truncateBefore', true, () =>
      this.db.query(this.truncateSql, [idToColumn(persistenceId), sequenceNr]),
    );
  }

  // ---- queries: the core's hooks (see global-order.ts for the order and why it never skips) ----

  protected override _journalId(): string {
    return this.journalId;
  }

  protected override async _headPosition(): Promise<Position> {
    const [row] = await this.run('query', false, () =>
      this.db.prepared<{ tx: string; position: number }>(this.headSql, []),
    );
    return row ? packPosition(row.tx, row.position) : 0;
  }

  protected override async *_readOrdered(
    after: Position,
    upTo: Position,
    filter: OrderedFilter,
  ): AsyncIterable<readonly PositionedEvent[]> {
    const sql = orderedStatement(this.names, filter);
    const [toTx, toPosition] = unpackPosition(upTo);
    let from = filter.kind === 'persistenceId' ? filter.fromSequenceNr : 0;
    for (;;) {
      const [afterTx, afterPosition] = unpackPosition(after);
      const params: unknown[] = [afterTx, afterPosition, toTx, toPosition, ORDERED_PAGE];
      if (filter.kind === 'tag') params.push(filter.tag);
      if (filter.kind === 'persistenceId') {
        params.push(idToColumn(filter.persistenceId), from, filter.toSequenceNr);
      }
      const rows = await this.run('query', false, () => this.db.prepared<OrderedRow>(sql, params));
      if (rows.length === 0) return;
      const page: PositionedEvent[] = new Array(rows.length);
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i]!;
        const event = this.checked(idFromColumn(row.persistence_id), row.persistence_id, row);
        page[i] = {
          ...event,
          persistenceId: idFromColumn(row.persistence_id),
          position: packPosition(row.tx, row.position),
        };
      }
      yield page;
      if (rows.length < ORDERED_PAGE) return;
      const last = page[page.length - 1]!;
      if (filter.kind === 'persistenceId') from = last.sequenceNr + 1;
      else after = last.position;
    }
  }

  /**
   * One LISTEN connection for the whole journal (opened with the first live query, ended with the last)
   * plus a poll of the head every LIVE_POLL_MS: a notification from another process's journal wakes the
   * live queries at once; the poll finds what no notification announces (a transaction that held xmin
   * back ended) and covers a lost listening connection, which is opened again at the next poll.
   */
  protected override _watchForeignCommits(onCommit: () => void): () => void {
    let stopped = false;
    let seen: Position | undefined;
    let polling = false;
    let polls = 0;
    const listen = () => {
      if (stopped || this.shutting || this.listener) return;
      const opening: Promise<Listener | undefined> = this.db
        .listen(
          this.names.channel,
          (payload) => {
            if (payload !== this.token) onCommit();
          },
          () => {
            // Dead: forget it (ended), the next poll listens again.
            if (this.listener === opening) this.listener = undefined;
            void opening.then((l) => l?.close());
          },
        )
        .catch(() => undefined);
      this.listener = opening;
      void opening.then((l) => {
        if (l === undefined && this.listener === opening) this.listener = undefined;
      });
    };
    const poll = () => {
      if (polling || stopped || this.shutting) return;
      polling = true;
      this.polling = pollOnce().finally(() => {
        polling = false;
        this.polling = undefined;
      });
    };
    const pollOnce = async () => {
      try {
        listen();
        const head = await this._headPosition();
        // The first poll wakes too: a commit between the readers' last head and this baseline.
        if (head !== seen) onCommit();
        seen = head;
        if (++polls % BLOCKER_EVERY_POLLS === 0) await this.checkBlocker();
      } catch {
        // Let the readers meet the error themselves.
        onCommit();
      }
    };
    // The first poll (and the listening connection) a moment later: the live queries' own first reads
    // go first, on the pool's open connections.
    const first = setTimeout(poll, 50);
    const timer = setInterval(poll, LIVE_POLL_MS);
    return () => {
      stopped = true;
      this.heldBackBy = undefined;
      clearTimeout(first);
      clearInterval(timer);
      const listening = this.listener;
      this.listener = undefined;
      void listening?.then((l) => l?.close());
    };
  }

  /** Notes (for metrics) and, once old, reports the transaction holding live queries back. */
  private async checkBlocker(): Promise<void> {
    const blocker = await findReaderBlocker(this.db, BLOCKER_METRIC_AGE_MS).catch(() => undefined);
    this.heldBackBy = blocker;
    if (
      !blocker ||
      blocker.transactionAgeMs < BLOCKER_REPORT_AGE_MS ||
      this.reportedBlockers.has(blocker.pid)
    )
      return;
    this.reportedBlockers.add(blocker.pid);
    this.reporter({
      kind: 'live-queries-held-back',
      message: `${this.names.name}: live queries see no event committed after ${describeBlocker(blocker)} began; end it (SELECT pg_terminate_backend(${blocker.pid})) and set idle_in_transaction_session_timeout`,
    });
  }

  /**
   * Tells other processes' live queries that this journal committed. Coalesced: one NOTIFY in flight, and
   * NOTIFYs at least ANNOUNCE_INTERVAL_MS apart, so a busy journal sends one per interval instead of one
   * per commit (each is a round trip and a transaction of its own on the server).
   */
  private announce(): void {
    if (this.shutting) return;
    if (this.announcing || this.announceTimer) {
      this.announceAgain = true;
      return;
    }
    const wait = this.lastAnnounced + ANNOUNCE_INTERVAL_MS - performance.now();
    if (wait > 0) {
      this.announceTimer = setTimeout(() => {
        this.announceTimer = undefined;
        this.sendAnnouncement();
      }, wait);
      return;
    }
    this.sendAnnouncement();
  }

  private sendAnnouncement(): void {
    this.lastAnnounced = performance.now();
    this.announceAgain = false;
    this.announcing = this.db
      .prepared('SELECT pg_notify($1, $2)', [this.names.channel, this.token])
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        this.announcing = undefined;
        if (this.announceAgain) {
          this.announceAgain = false;
          this.announce();
        }
      });
  }

  /** A row as a StoredEvent after its checksum check (JournalCorruptedError naming table, id, sequenceNr). */
  private checked(persistenceId: string, column: string, row: EventRow): StoredEvent {
    const expected = rowChecksum(
      column,
      row.seq_nr,
      row.written_at,
      row.serializer_id,
      row.payload,
      row.tags,
    );
    if (expected !== row.crc32) {
      throw new JournalCorruptedError({
        persistenceId,
        sequenceNr: row.seq_nr,
        ...this._locate(persistenceId, row.seq_nr),
        reason: `row checksum ${row.crc32} does not match its content (${expected})`,
      });
    }
    return row.tags.length > 0
      ? {
          sequenceNr: row.seq_nr,
          timestamp: row.written_at,
          serializerId: row.serializer_id,
          payload: row.payload,
          tags: row.tags,
        }
      : {
          sequenceNr: row.seq_nr,
          timestamp: row.written_at,
          serializerId: row.serializer_id,
          payload: row.payload,
        };
  }

  protected override async _startAfter(persistenceId: string, highest: number): Promise<void> {
    const rows = await this.run('import', true, () =>
      this.db.query(
        `INSERT INTO ${this.names.streams} AS s (persistence_id, highest, lowest) VALUES ($1, $2::int8, $2::int8 + 1)
         ON CONFLICT (persistence_id) DO UPDATE SET highest = EXCLUDED.highest, lowest = EXCLUDED.lowest
         WHERE s.highest = 0
         RETURNING persistence_id`,
        [idToColumn(persistenceId), highest],
      ),
    );
    if (rows.length === 0) {
      throw new RangeError(`"${persistenceId}" was written by another process meanwhile; nothing recorded`);
    }
  }

  protected async *_persistenceIds(): AsyncIterable<string> {
    let after: string | undefined;
    for (;;) {
      const rows = await this.run('persistenceIds', false, () =>
        after === undefined
          ? this.db.query<{ persistence_id: string }>(
              `SELECT persistence_id FROM ${this.names.streams} WHERE highest > 0
               ORDER BY persistence_id LIMIT ${READ_PAGE}`,
            )
          : this.db.query<{ persistence_id: string }>(
              `SELECT persistence_id FROM ${this.names.streams} WHERE highest > 0 AND persistence_id > $1
               ORDER BY persistence_id LIMIT ${READ_PAGE}`,
              [after],
            ),
      );
      for (const row of rows) yield idFromColumn(row.persistence_id);
      if (rows.length < READ_PAGE) return;
      after = rows[rows.length - 1]!.persistence_id;
    }
  }

  protected async _close(): Promise<void> {
    this.shutting = true;
    // A NOTIFY waiting for its interval goes now: the last commits are announced before the pool ends.
    if (this.announceTimer) {
      clearTimeout(this.announceTimer);
      this.announceTimer = undefined;
      if (!this.announcing) this.sendAnnouncement();
    }
    const listening = this.listener;
    this.listener = undefined;
    await listening?.then((l) => l?.close());
    while (this.announcing) await this.announcing;
    await this.polling;
    await this.offsetStoreInstance?.releaseAll();
    await this.leases.releaseAll();
    await this.db.close();
  }

  protected override _locate(
    persistenceId: string,
    sequenceNr: number,
  ): Pick<CorruptionLocation, 'file' | 'offset' | 'key'> {
    return { key: `${this.names.journal} (${persistenceId}, ${sequenceNr})` };
  }

  /** Runs a database call; its failure becomes a StorageError without secrets ("outcome unknown" for writes). */
  private async run<T>(what: string, writing: boolean, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (e) {
      if (isPersistenceError(e) || e instanceof RangeError) throw e;
      throw storageError(e, `journal ${what}`, this.db.target, writing);
    }
  }
}

/**
 * The group commit: one statement, so one round trip and one WAL flush for the whole batch. $1..$3 and
 * $10 give one chain per id (the highest it continues, its new highest, the lease epoch it writes under
 * or -1); $4..$9, $11 (tags as a JSON array, '' for none) and $12 the events: $8 is every payload
 * concatenated, $12 each one's length (its start is the sum of the lengths before it). An id whose stored highest is not the one its chain continues, or whose
 * lease epoch moved on, is left out (no stream update, no event rows); the statement returns the ids it
 * stored. Rows are inserted in the order given (ORDER BY the ordinality), so their positions, taken from
 * the sequence as each row is inserted, follow it: an id's events in sequenceNr order, a batch's adjacent.
 */
function groupCommitStatement(s: SchemaNames): string {
  return `
    WITH input AS (
      SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $10::int8[]) AS t(persistence_id, prev, last, epoch)
    ),
    created AS (
      INSERT INTO ${s.streams} AS s (persistence_id, highest)
      SELECT persistence_id, last FROM input WHERE prev = 0
      ON CONFLICT (persistence_id) DO UPDATE SET highest = EXCLUDED.highest
      WHERE s.highest = 0
        AND (SELECT i.epoch FROM input i WHERE i.persistence_id = s.persistence_id) IN (-1, s.lease_epoch)
      RETURNING s.persistence_id
    ),
    advanced AS (
      UPDATE ${s.streams} AS s SET highest = input.last FROM input
      WHERE s.persistence_id = input.persistence_id AND input.prev > 0 AND s.highest = input.prev
        AND input.epoch IN (-1, s.lease_epoch)
      RETURNING s.persistence_id
    ),
    stored AS (
      SELECT persistence_id FROM created UNION ALL SELECT persistence_id FROM advanced
    ),
    inserted AS (
      INSERT INTO ${s.journal} (persistence_id, seq_nr, written_at, serializer_id, payload, crc32, tags)
      SELECT e.persistence_id, e.seq_nr, e.written_at, e.serializer_id,
        substring($8::bytea FROM (e.ends - e.length + 1)::int4 FOR e.length), e.crc32,
        CASE WHEN e.tags = '' THEN '{}'::text[] ELSE ARRAY(SELECT jsonb_array_elements_text(e.tags::jsonb)) END
      FROM (
        SELECT *, sum(length) OVER (ORDER BY n) AS ends
        FROM unnest($4::text[], $5::int8[], $6::int8[], $7::int4[], $12::int4[], $9::int8[], $11::text[])
          WITH ORDINALITY AS e(persistence_id, seq_nr, written_at, serializer_id, length, crc32, tags, n)
      ) e
      WHERE e.persistence_id IN (SELECT persistence_id FROM stored)
      ORDER BY e.n
      RETURNING 1
    )
    SELECT persistence_id FROM stored`;
}

/**
 * Pages of several reads in one statement. Read k (1-based) is $1[k] the id, $2[k]..$3[k] the sequenceNr
 * range asked for, $4[k] the page's width. Its page is the window [lo, hi] of at most $4[k] sequence
 * numbers from $2[k] (or from the id's lowest, after truncation), cut at the id's highest and at $3[k]:
 * the bounds come from the streams row, so the server reads at most a page per read whatever plan it
 * picks. (An id's rows are consecutive sequence numbers. An unbounded `seq_nr >= $2 ORDER BY seq_nr
 * LIMIT n` is planned as a bitmap scan plus a sort of ALL the id's rows above $2 while the table has no
 * statistics yet, which made a long replay quadratic.) One row per event, each carrying k, the id's
 * highest and the window's hi; one row of nulls for an empty window; no row for an id without a
 * streams row.
 */
function readStatement(s: SchemaNames): string {
  return `
    WITH q AS (
      SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[])
        WITH ORDINALITY AS q(persistence_id, from_nr, to_nr, width, k)
    ),
    w AS (
      SELECT q.k, q.persistence_id, s.highest, GREATEST(q.from_nr, s.lowest) AS lo,
        LEAST(q.to_nr, s.highest, GREATEST(q.from_nr, s.lowest) + q.width - 1) AS hi
      FROM q JOIN ${s.streams} s ON s.persistence_id = q.persistence_id
    )
    SELECT w.k, w.highest, w.hi, j.seq_nr, j.written_at, j.serializer_id, j.payload, j.crc32, j.tags
    FROM w LEFT JOIN LATERAL (
      SELECT seq_nr, written_at, serializer_id, payload, crc32, tags FROM ${s.journal}
      WHERE persistence_id = w.persistence_id AND seq_nr >= w.lo AND seq_nr <= w.hi
    ) j ON true
    ORDER BY w.k, j.seq_nr`;
}
