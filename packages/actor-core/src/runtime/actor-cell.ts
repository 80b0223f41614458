import { ActorStoppedError, AskTimeoutError, isPersistenceError, WriteRejectedError } from '../errors';
import type { LatencyRecorder } from '../metrics';
import type { Reporter } from '../report';
import type { MessageJournal, SnapshotStore } from '../spi';
import { checkTags, NO_TAGS } from '../tags';
import { StashOverflowError } from './actor-errors';
import { backoffDelay, type EventSourcedBehavior, type OnConflict, type Signal } from './behavior';
import { Effect } from './effect';
import { Mailbox } from './mailbox';
import { recover } from './recovery';

/** One command waiting for, or being handled by, an actor. */
interface Envelope<C> {
  readonly command: C;
  /** True for an ask (someone waits for the outcome), false for a tell. */
  readonly asked: boolean;
  /** Settles the ask, if it was one; later calls are ignored. */
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  /** Set once the command was run again after a sequence conflict (it is retried once at most). */
  retried?: boolean;
}

/** What a cell needs from its system. */
/** What the cells of one system count for ActorSystem.metrics(). */
export interface RuntimeCounts {
  recoveries: number;
  recoveryFailures: number;
  recoveriesFromSnapshot: number;
  eventsReplayed: number;
  restarts: number;
  failureStops: number;
  stashOverflows: number;
  conflictReloads: number;
  readonly recoveryLatency: LatencyRecorder;
}

export interface CellContext {
  readonly journal: MessageJournal<unknown>;
  readonly snapshots: SnapshotStore<unknown>;
  readonly reporter: Reporter;
  readonly counts: RuntimeCounts;
  /** Called once the cell is stopped and its snapshot work settled: the id may be spawned again. */
  released(cell: { readonly persistenceId: string }, reason: StopReason): void;
}

type Phase = 'recovering' | 'ready' | 'awaitingRestart' | 'stopped';
export type StopReason = 'requested' | 'failed' | 'terminated' | 'passivated';

/** Per-cell settings the system resolves. */
export interface CellOptions {
  /** What a persist refused with SequenceConflictError does (see OnConflict). */
  readonly onConflict: OnConflict;
}

const ignore = (): void => undefined;

/**
 * The running actor behind an ActorRef: its state, its mailbox (which doubles as the stash while it
 * recovers, restarts or has a persist in flight), and the persist / snapshot / supervision logic.
 * Commands are handled one at a time, in arrival order; user code never runs on the caller's stack.
 */
export class ActorCell<C, E, S, R = unknown> {
  readonly persistenceId: string;
  private state: S;
  /** The last sequenceNr folded into `state`: everything up to it is durable. */
  private sequenceNr = 0;
  private phase: Phase = 'recovering';
  private persistInFlight = false;
  private runScheduled = false;
  private stopRequested: StopReason | undefined;
  private readonly mailbox = new Mailbox<Envelope<C>>();
  /** A command to run again, before the mailbox, once the reload after its sequence conflict is done. */
  private retry: Envelope<C> | undefined;
  private restarts = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private snapshotWanted = false;
  private snapshotWork: Promise<void> | undefined;
  /** Snapshot sequenceNrs known to exist, newest first (a subset of what the store holds). */
  private knownSnapshots: number[] = [];
  private truncatedBefore = 1;
  private readonly stopped: Promise<void>;
  private resolveStopped!: () => void;

  constructor(
    private readonly behavior: EventSourcedBehavior<C, E, S, R>,
    private readonly context: CellContext,
    private readonly options: CellOptions = { onConflict: 'stop' },
  ) {
    this.persistenceId = behavior.persistenceId;
    this.state = behavior.emptyState;
    this.stopped = new Promise((resolve) => {
      this.resolveStopped = resolve;
    });
  }

  get isStopped(): boolean {
    return this.phase === 'stopped';
  }

  /** False once the actor stopped or was asked to stop: a command sent now would be refused. */
  get takesCommands(): boolean {
    return this.phase !== 'stopped' && this.stopRequested === undefined;
  }

  /** First recovery; rejects with RecoveryFailedError (and the cell is then stopped). */
  async start(): Promise<void> {
    try {
      await this.recoverState();
    } catch (e) {
      this.stopNow('failed', e);
      throw e;
    }
    this.phase = 'ready';
    this.afterIdleChange();
  }

  // ---- commands ----

  tell(command: C): void {
    // Nobody waits on a tell, so what would have failed its ask is reported instead of lost.
    this.accept({
      command,
      asked: false,
      resolve: ignore,
      reject: (error) => this.report('tell-failed', `a told command failed: ${message(error)}`),
    });
  }

  ask<T extends R = R>(command: C, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const finish = (): boolean => {
        if (settled) return false;
        settled = true;
        if (timer) clearTimeout(timer);
        return true;
      };
      const envelope: Envelope<C> = {
        command,
        asked: true,
        resolve: (value) => finish() && resolve(value as T),
        reject: (error) => finish() && reject(error),
      };
      try {
        this.accept(envelope);
      } catch (e) {
        envelope.reject(e);
        return;
      }
      // The command stays queued after a timeout (it may already be persisting); only the reply is lost.
      timer = setTimeout(
        () => envelope.reject(new AskTimeoutError(`actor "${this.persistenceId}"`, timeoutMs)),
        timeoutMs,
      );
    });
  }

  /** Stops taking commands, lets the waiting ones and any persist finish, then stops. */
  stop(reason: StopReason = 'requested'): Promise<void> {
    if (this.phase !== 'stopped' && this.stopRequested === undefined) {
      this.stopRequested = reason;
      if (this.phase === 'awaitingRestart') this.stopNow(reason, undefined);
      else this.afterIdleChange();
    }
    return this.stopped;
  }

  private accept(envelope: Envelope<C>): void {
    if (this.phase === 'stopped' || this.stopRequested !== undefined) {
      throw new ActorStoppedError(`actor "${this.persistenceId}"`, 'it no longer takes commands');
    }
    if (this.mailbox.size >= this.behavior.stashCapacity) {
      this.context.counts.stashOverflows++;
      throw new StashOverflowError(this.persistenceId, this.behavior.stashCapacity);
    }
    this.mailbox.push(envelope);
    this.scheduleRun();
  }

  private scheduleRun(): void {
    if (this.runScheduled || this.phase !== 'ready' || this.persistInFlight) return;
    this.runScheduled = true;
    queueMicrotask(() => {
      this.runScheduled = false;
      this.run();
    });
  }

  private run(): void {
    while (this.phase === 'ready' && !this.persistInFlight) {
      const envelope = this.retry ?? this.mailbox.shift();
      this.retry = undefined;
      if (!envelope) break;
      this.handle(envelope);
    }
    this.afterIdleChange();
  }

  /** Finishes a requested stop once nothing is left to do. */
  private afterIdleChange(): void {
    if (this.phase !== 'ready' || this.persistInFlight) return;
    if (this.mailbox.size > 0 || this.retry !== undefined) this.scheduleRun();
    else if (this.stopRequested !== undefined) this.stopNow(this.stopRequested, undefined);
  }

  private handle(envelope: Envelope<C>): void {
    let effect: Effect<E, S, R>;
    try {
      effect = this.behavior.commandHandler(this.state, envelope.command, Effect.typed<E, S, R>());
      if (!(effect instanceof Effect)) {
        throw new TypeError(
          `the commandHandler of "${this.persistenceId}" must return an Effect (Effect.persist, reply, none or stop)`,
        );
      }
    } catch (e) {
      envelope.reject(e);
      return;
    }
    if (effect.events.length === 0) {
      this.completed(effect, envelope);
      return;
    }
    let stored: unknown[];
    try {
      const toJournal = this.behavior.eventAdapter?.toJournal?.bind(this.behavior.eventAdapter);
      stored = toJournal ? effect.events.map(toJournal) : [...effect.events];
    } catch (e) {
      this.persistFailed(
        effect,
        envelope,
        new WriteRejectedError(this.persistenceId, `eventAdapter.toJournal threw: ${message(e)}`, {
          cause: e,
        }),
      );
      return;
    }
    let tags: (readonly string[])[] | undefined;
    try {
      tags = this.tagsOf(effect.events);
    } catch (e) {
      this.persistFailed(
        effect,
        envelope,
        new WriteRejectedError(this.persistenceId, `tagger: ${message(e)}`, { cause: e }),
      );
      return;
    }
    this.persistInFlight = true;
    let appended: Promise<number[]>;
    try {
      appended = this.context.journal.appendBatch(this.persistenceId, stored, {
        expectedSequenceNr: this.sequenceNr,
        ...(tags ? { tags: (_message: unknown, i: number) => tags[i] ?? NO_TAGS } : {}),
      });
    } catch (e) {
      appended = Promise.reject(e);
    }
    appended.then(
      (sequenceNrs) => {
        this.persistInFlight = false;
        this.persisted(effect, envelope, sequenceNrs);
      },
      (error: unknown) => {
        this.persistInFlight = false;
        if (
          isPersistenceError(error, 'ERR_SEQUENCE_CONFLICT') &&
          this.options.onConflict === 'reload-and-retry'
        ) {
          this.reloadAfterConflict(envelope, error);
        } else {
          this.persistFailed(effect, envelope, error);
        }
      },
    );
  }

  /**
   * Each event's tags from the behavior's tagger, checked here as the journal would check them, so a bad
   * tag is a rejection of this persist (nothing stored, the actor carries on), not a storage failure.
   */
  private tagsOf(events: readonly E[]): (readonly string[])[] | undefined {
    const tagger = this.behavior.tagger;
    if (!tagger) return undefined;
    const single = events.length === 1;
    return events.map((event, i) =>
      checkTags(tagger(event), single ? 'the event' : `event ${i} of the persist`),
    );
  }

  private persisted(effect: Effect<E, S, R>, envelope: Envelope<C>, sequenceNrs: readonly number[]): void {
    let snapshotDue = false;
    try {
      for (const [i, event] of effect.events.entries()) {
        const sequenceNr = sequenceNrs[i];
        if (sequenceNr !== this.sequenceNr + 1) {
          throw new Error(
            `the journal assigned sequenceNr ${sequenceNr} where ${this.sequenceNr + 1} was due`,
          );
        }
        this.state = this.behavior.eventHandler(this.state, event);
        this.sequenceNr = sequenceNr;
        if (!snapshotDue && this.behavior.snapshotDue(this.state, event, sequenceNr)) snapshotDue = true;
      }
    } catch (e) {
      // Durable events that cannot be applied leave this incarnation's state behind the journal:
      // it must not handle another command. A restart rebuilds from what is durable.
      envelope.reject(e);
      this.failed(e);
      return;
    }
    this.restarts = 0;
    if (snapshotDue) this.requestSnapshot();
    this.completed(effect, envelope);
    this.afterIdleChange();
  }

  private persistFailed(effect: Effect<E, S, R>, envelope: Envelope<C>, error: unknown): void {
    const rejected = isPersistenceError(error, 'ERR_WRITE_REJECTED');
    this.signal({ type: 'persistFailed', events: effect.events, rejected, error });
    envelope.reject(error);
    if (rejected) this.afterIdleChange();
    else this.failed(error);
  }

  /** Runs an effect's side effects (its events are applied), then stops if it says so. */
  private completed(effect: Effect<E, S, R>, envelope: Envelope<C>): void {
    for (const sideEffect of effect.sideEffects) {
      try {
        if (sideEffect.kind === 'reply') envelope.resolve(sideEffect.fn(this.state));
        else sideEffect.fn(this.state);
      } catch (e) {
        if (sideEffect.kind === 'reply') envelope.reject(e);
        else this.report('side-effect-failed', `a thenRun side effect threw: ${message(e)}`);
      }
    }
    if (effect.stops) {
      // An ask answered by a stop without a reply settles now, not at its timeout; one that was replied
      // to keeps its reply (a settled envelope ignores this).
      if (envelope.asked) {
        envelope.reject(
          new ActorStoppedError(
            `actor "${this.persistenceId}"`,
            'its command handler stopped it (Effect.stop) without replying to this command',
          ),
        );
      }
      this.stopNow('requested', undefined);
    }
  }

  // ---- sequence conflicts ----

  /**
   * Someone else appended to this id: the state is stale. Recover again (the journal reads the id's
   * highest from storage: a conflict made it forget what it remembered, and a journal shared by several
   * processes never trusts memory) and run the command once more, or fail its ask if it was the retry.
   */
  private reloadAfterConflict(envelope: Envelope<C>, error: unknown): void {
    this.context.counts.conflictReloads++;
    const retrying = !envelope.retried && this.stopRequested === undefined;
    this.signal({ type: 'conflict', error, retrying });
    if (retrying) {
      envelope.retried = true;
      this.retry = envelope;
    } else {
      envelope.reject(error);
    }
    void this.restart();
  }

  // ---- failure and supervision ----

  private failed(error: unknown): void {
    const supervision = this.behavior.supervision;
    if (!supervision || this.stopRequested !== undefined || this.restarts >= supervision.maxRestarts) {
      this.stopNow('failed', error);
      return;
    }
    this.restarts++;
    this.context.counts.restarts++;
    const delayMs = backoffDelay(supervision, this.restarts);
    this.phase = 'awaitingRestart';
    this.signal({ type: 'restarting', attempt: this.restarts, delayMs, error });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      void this.restart();
    }, delayMs);
  }

  private async restart(): Promise<void> {
    this.phase = 'recovering';
    try {
      await this.snapshotWork;
      await this.recoverState();
    } catch (e) {
      if (this.phase === 'recovering') this.failed(e);
      return;
    }
    if (this.phase !== 'recovering') return;
    this.phase = 'ready';
    this.afterIdleChange();
  }

  private async recoverState(): Promise<void> {
    const { counts } = this.context;
    const started = performance.now();
    try {
      const recovered = await recover(
        this.behavior,
        this.context.journal,
        this.context.snapshots,
        (state, signal) => this.signalWith(state, signal),
      );
      this.state = recovered.state;
      this.sequenceNr = recovered.sequenceNr;
      this.knownSnapshots = [...recovered.snapshotSequenceNrs];
      this.truncatedBefore = 1;
      counts.recoveryLatency.since(started);
      counts.recoveries++;
      counts.eventsReplayed += recovered.replayed;
      if (recovered.fromSnapshot !== undefined) counts.recoveriesFromSnapshot++;
      this.signal({
        type: 'recoveryCompleted',
        state: recovered.state,
        replayed: recovered.replayed,
        fromSnapshot: recovered.fromSnapshot,
        sequenceNr: recovered.sequenceNr,
      });
    } catch (e) {
      counts.recoveryLatency.since(started);
      counts.recoveryFailures++;
      if (isPersistenceError(e, 'ERR_RECOVERY_FAILED')) {
        this.signal({ type: 'recoveryFailed', error: e as never });
      }
      throw e;
    }
  }

  /** Stops at once: waiting commands are rejected; resolves `stopped` after snapshot work settles. */
  private stopNow(reason: StopReason, error: unknown): void {
    if (this.phase === 'stopped') return;
    this.phase = 'stopped';
    if (reason === 'failed') this.context.counts.failureStops++;
    const retry = this.retry;
    this.retry = undefined;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const why =
      reason === 'failed'
        ? `it failed: ${message(error)}`
        : reason === 'terminated'
          ? 'its actor system terminated'
          : reason === 'passivated'
            ? 'it was passivated'
            : 'it was stopped';
    for (const envelope of retry ? [retry, ...this.mailbox.drain()] : this.mailbox.drain()) {
      envelope.reject(
        new ActorStoppedError(
          `actor "${this.persistenceId}"`,
          why,
          error === undefined ? undefined : { cause: error },
        ),
      );
    }
    void (this.snapshotWork ?? Promise.resolve()).then(() => {
      this.context.released(this, reason);
      this.signal(error === undefined ? { type: 'stopped', reason } : { type: 'stopped', reason, error });
      this.resolveStopped();
    });
  }

  // ---- snapshots ----

  private requestSnapshot(): void {
    this.snapshotWanted = true;
    if (this.snapshotWork) return;
    this.snapshotWork = (async () => {
      while (this.snapshotWanted) {
        this.snapshotWanted = false;
        // State and sequenceNr change together, synchronously, so this pair is always consistent.
        await this.snapshot(this.state, this.sequenceNr);
      }
    })().finally(() => {
      this.snapshotWork = undefined;
    });
  }

  private async snapshot(state: S, sequenceNr: number): Promise<void> {
    const { behavior, context, persistenceId } = this;
    try {
      const toSnapshot = behavior.snapshotAdapter?.toSnapshot?.bind(behavior.snapshotAdapter);
      await context.snapshots.save(persistenceId, sequenceNr, toSnapshot ? toSnapshot(state) : state);
    } catch (error) {
      this.signal({ type: 'snapshotFailed', sequenceNr, phase: 'save', error });
      return;
    }
    this.knownSnapshots = [sequenceNr, ...this.knownSnapshots.filter((s) => s !== sequenceNr)];
    this.signal({ type: 'snapshotCompleted', sequenceNr });

    const keep = behavior.keepSnapshots;
    if (keep === undefined) return;
    try {
      await context.snapshots.prune(persistenceId, keep);
    } catch (error) {
      this.signal({ type: 'snapshotFailed', sequenceNr, phase: 'prune', error });
      return;
    }
    this.knownSnapshots = this.knownSnapshots.slice(0, keep);
    if (!behavior.deleteEventsOnSnapshot) return;

    // Truncate only behind the oldest kept snapshot, so recovery can still fall back to any kept one.
    // knownSnapshots is a subset of what the store holds, so its keep-th newest is never newer than the
    // store's: the bound errs on keeping events. With fewer known than kept, the oldest kept is unknown.
    const oldestKept = this.knownSnapshots[keep - 1];
    if (oldestKept === undefined) return;
    const before = Math.min(sequenceNr + 1 - behavior.retainEventsBehindSnapshot, oldestKept + 1);
    if (before <= this.truncatedBefore) return;
    try {
      await context.journal.truncateBefore(persistenceId, before);
    } catch (error) {
      this.signal({ type: 'snapshotFailed', sequenceNr, phase: 'truncate', error });
      return;
    }
    this.truncatedBefore = before;
    this.signal({ type: 'eventsDeleted', toSequenceNr: before });
  }

  // ---- signals ----

  private signal(signal: Signal<E, S>): void {
    this.signalWith(this.state, signal);
  }

  private signalWith(state: S, signal: Signal<E, S>): void {
    const handler = this.behavior.signalHandler;
    if (!handler) return;
    try {
      handler(state, signal);
    } catch (e) {
      this.report('signal-handler-failed', `the signalHandler threw on ${signal.type}: ${message(e)}`);
    }
  }

  private report(kind: string, text: string): void {
    try {
      this.context.reporter({
        kind,
        persistenceId: this.persistenceId,
        message: `actor "${this.persistenceId}": ${text}`,
      });
    } catch {
      // A broken reporter must not take the actor down with it.
    }
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
