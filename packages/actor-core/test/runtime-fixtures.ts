import {
  ActorSystem,
  Effect,
  EventSourcedBehavior,
  type EventSourcedBehaviorOptions,
  MemoryFaults,
  MemoryJournalStore,
  MemoryMessageJournal,
  MemorySnapshotData,
  MemorySnapshotStore,
  type PersistenceReport,
  type Signal,
} from '@cairn/actor-core';

/** A bank account, the behavior most runtime tests drive. */
export type AccountCommand =
  | { type: 'deposit'; amount: number }
  | { type: 'withdraw'; amount: number }
  | { type: 'depositMany'; amounts: number[] }
  | { type: 'balance' }
  | { type: 'unserializable' }
  | { type: 'close' }
  | { type: 'silent' }
  | { type: 'explode' };
export type AccountEvent =
  | { type: 'deposited'; amount: number; note?: unknown }
  | { type: 'withdrawn'; amount: number };
export type AccountState = { balance: number; history: number };

export function accountHandlers(): Pick<
  EventSourcedBehaviorOptions<AccountCommand, AccountEvent, AccountState>,
  'emptyState' | 'commandHandler' | 'eventHandler'
> {
  return {
    emptyState: { balance: 0, history: 0 },
    commandHandler: (state, cmd) => {
      switch (cmd.type) {
        case 'deposit':
          return Effect.persist<AccountEvent, AccountState>({
            type: 'deposited',
            amount: cmd.amount,
          }).thenReply((s) => s.balance);
        case 'withdraw':
          if (cmd.amount > state.balance) return Effect.reply({ error: 'insufficient funds' });
          return Effect.persist<AccountEvent, AccountState>({
            type: 'withdrawn',
            amount: cmd.amount,
          }).thenReply((s) => s.balance);
        case 'depositMany':
          return Effect.persist<AccountEvent, AccountState>(
            cmd.amounts.map((amount) => ({ type: 'deposited', amount }) as const),
          ).thenReply((s) => s.balance);
        case 'balance':
          return Effect.reply(state.balance);
        case 'unserializable':
          return Effect.persist<AccountEvent, AccountState>({
            type: 'deposited',
            amount: 1,
            note: () => 1,
          }).thenReply((s) => s.balance);
        case 'close':
          return Effect.stop();
        case 'silent':
          return Effect.none();
        case 'explode':
          throw new Error('handler exploded');
      }
    },
    eventHandler: (state, evt) => ({
      balance: state.balance + (evt.type === 'deposited' ? evt.amount : -evt.amount),
      history: state.history + 1,
    }),
  };
}

/** Shared in-memory data and faults, so a second system can "reopen" what a first one wrote. */
export class MemoryWorld {
  readonly journalData = new MemoryJournalStore();
  readonly snapshotData = new MemorySnapshotData();
  readonly faults = new MemoryFaults();
  readonly reports: PersistenceReport[] = [];

  async open(): Promise<{ journal: MemoryMessageJournal; snapshots: MemorySnapshotStore }> {
    const reporter = (r: PersistenceReport) => this.reports.push(r);
    return {
      journal: await MemoryMessageJournal.open({ store: this.journalData, faults: this.faults, reporter }),
      snapshots: await MemorySnapshotStore.open({ store: this.snapshotData, faults: this.faults, reporter }),
    };
  }

  /** A system on this world's data; terminate() closes the stores it opened. */
  async system(): Promise<ActorSystem> {
    return ActorSystem.create({
      persistence: await this.open(),
      closePersistence: true,
      reporter: (r) => this.reports.push(r),
    });
  }

  /** The stored sequenceNrs of an id (after truncation). */
  storedSequenceNrs(persistenceId: string): number[] {
    return (this.journalData.logs.get(persistenceId)?.events ?? []).map((e) => e.sequenceNr);
  }

  /** The stored snapshot sequenceNrs of an id, ascending. */
  snapshotSequenceNrs(persistenceId: string): number[] {
    return [...(this.snapshotData.snapshots.get(persistenceId)?.keys() ?? [])].sort((a, b) => a - b);
  }
}

/** An account behavior that records its signals. */
export function account(
  persistenceId: string,
  extra: Partial<EventSourcedBehaviorOptions<AccountCommand, AccountEvent, AccountState>> = {},
): {
  behavior: EventSourcedBehavior<AccountCommand, AccountEvent, AccountState>;
  signals: Signal<AccountEvent, AccountState>[];
} {
  const signals: Signal<AccountEvent, AccountState>[] = [];
  const behavior = EventSourcedBehavior.create<AccountCommand, AccountEvent, AccountState>({
    persistenceId,
    ...accountHandlers(),
    signalHandler: (_state, signal) => signals.push(signal),
    ...extra,
  });
  return { behavior, signals };
}

export function signalsOf<T extends Signal<AccountEvent, AccountState>['type']>(
  signals: readonly Signal<AccountEvent, AccountState>[],
  type: T,
): Extract<Signal<AccountEvent, AccountState>, { type: T }>[] {
  return signals.filter(
    (s): s is Extract<Signal<AccountEvent, AccountState>, { type: T }> => s.type === type,
  );
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `check` holds, polling; fails with `what` after `ms`. */
export async function eventually(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
