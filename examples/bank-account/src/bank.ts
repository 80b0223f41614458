import {
  type ActorRef,
  ActorSystem,
  Effect,
  EventSourcedBehavior,
  type OpenedPersistence,
  type PersistenceConfig,
} from '@cairn/actor-core';

/** What a customer can ask of an account. */
export type AccountCommand =
  | { readonly type: 'deposit'; readonly amount: number }
  | { readonly type: 'withdraw'; readonly amount: number }
  | { readonly type: 'balance' };

/** What happened to an account: the only thing stored. */
export type AccountEvent =
  | { readonly type: 'deposited'; readonly amount: number }
  | { readonly type: 'withdrawn'; readonly amount: number };

export interface AccountState {
  readonly balance: number;
  readonly transactions: number;
}

export type AccountReply =
  | { readonly ok: true; readonly balance: number }
  | { readonly ok: false; readonly reason: string };

/** How an account came back when it was spawned. */
export interface Recovery {
  readonly account: string;
  readonly balance: number;
  readonly fromSnapshot: number | undefined;
  readonly replayed: number;
}

/**
 * A bank account as an event-sourced actor: commands are checked against the state, accepted ones
 * become events, and the balance is whatever the events add up to. A snapshot every 5 events keeps
 * recovery short; the newest 2 are kept.
 */
export function bankAccount(
  name: string,
  onRecovered: (recovery: Recovery) => void = () => undefined,
): EventSourcedBehavior<AccountCommand, AccountEvent, AccountState> {
  return EventSourcedBehavior.create<AccountCommand, AccountEvent, AccountState>({
    persistenceId: `account-${name}`,
    emptyState: { balance: 0, transactions: 0 },
    commandHandler: (state, command) => {
      switch (command.type) {
        case 'deposit':
          if (!(command.amount > 0)) return Effect.reply({ ok: false, reason: 'deposit must be positive' });
          return Effect.persist<AccountEvent, AccountState>({
            type: 'deposited',
            amount: command.amount,
          }).thenReply((s) => ({ ok: true, balance: s.balance }));
        case 'withdraw':
          if (command.amount > state.balance) {
            return Effect.reply({ ok: false, reason: `insufficient funds (balance ${state.balance})` });
          }
          return Effect.persist<AccountEvent, AccountState>({
            type: 'withdrawn',
            amount: command.amount,
          }).thenReply((s) => ({ ok: true, balance: s.balance }));
        case 'balance':
          return Effect.reply({ ok: true, balance: state.balance });
      }
    },
    eventHandler: (state, event) => ({
      balance: state.balance + (event.type === 'deposited' ? event.amount : -event.amount),
      transactions: state.transactions + 1,
    }),
    snapshotEvery: 5,
    keepSnapshots: 2,
    signalHandler: (state, signal) => {
      if (signal.type === 'recoveryCompleted') {
        onRecovered({
          account: name,
          balance: state.balance,
          fromSnapshot: signal.fromSnapshot,
          replayed: signal.replayed,
        });
      }
    },
  });
}

/** The day's business, the same on every run. */
const OPERATIONS: ReadonlyArray<readonly [string, AccountCommand]> = [
  ['alice', { type: 'deposit', amount: 100 }],
  ['alice', { type: 'withdraw', amount: 30 }],
  ['bob', { type: 'deposit', amount: 40 }],
  ['bob', { type: 'withdraw', amount: 100 }],
  ['alice', { type: 'deposit', amount: 15 }],
  ['alice', { type: 'deposit', amount: 15 }],
  ['alice', { type: 'deposit', amount: 15 }],
  ['bob', { type: 'deposit', amount: 2 }],
];

export const ACCOUNTS = ['alice', 'bob'] as const;

export interface BankDemoResult {
  /** Balances after the day's business, before the restart. */
  readonly before: Readonly<Record<string, number>>;
  /** Balances the restarted system recovered. */
  readonly after: Readonly<Record<string, number>>;
  /** How each account recovered after the restart. */
  readonly recoveries: readonly Recovery[];
}

/**
 * Runs the bank twice on one persistence configuration: a day of business, then a restart (a new
 * ActorSystem opening the same storage) whose accounts rebuild their balances from snapshot + events.
 */
export async function runBankDemo(
  persistence: PersistenceConfig | OpenedPersistence,
  log: (line: string) => void,
): Promise<BankDemoResult> {
  const describeRecovery = (r: Recovery) =>
    `  ${r.account.padEnd(6)} balance ${String(r.balance).padStart(5)}  ` +
    (r.fromSnapshot === undefined ? 'no snapshot' : `snapshot @${r.fromSnapshot}`) +
    ` + ${r.replayed} event${r.replayed === 1 ? '' : 's'} replayed`;

  const before: Record<string, number> = {};
  {
    const system = await ActorSystem.create({ persistence });
    try {
      const recovered: Recovery[] = [];
      const refs = new Map<string, ActorRef<AccountCommand>>(
        await Promise.all(
          ACCOUNTS.map(
            async (name) => [name, await system.spawn(bankAccount(name, (r) => recovered.push(r)))] as const,
          ),
        ),
      );
      // Storage kept from earlier runs (a file or LMDB backend) makes this a later day, not the first.
      const earlier = recovered.some((r) => r.fromSnapshot !== undefined || r.replayed > 0);
      log(
        earlier
          ? "business: accounts spawned, recovering what earlier runs stored (this storage isn't new)"
          : 'business: accounts spawned on empty storage (the first run on it)',
      );
      for (const name of ACCOUNTS) {
        for (const r of recovered.filter((x) => x.account === name)) log(describeRecovery(r));
      }
      for (const [name, command] of OPERATIONS) {
        const reply = await refs.get(name)!.ask<AccountReply>(command);
        const what = command.type === 'balance' ? 'balance' : `${command.type} ${command.amount}`;
        log(
          `  ${name.padEnd(6)} ${what.padEnd(12)} -> ${reply.ok ? `balance ${reply.balance}` : `refused: ${reply.reason}`}`,
        );
      }
      for (const [name, ref] of refs) {
        const reply = await ref.ask<AccountReply>({ type: 'balance' });
        if (reply.ok) before[name] = reply.balance;
      }
    } finally {
      await system.terminate();
    }
  }

  const after: Record<string, number> = {};
  const recoveries: Recovery[] = [];
  {
    log('restart: a new system on the same storage replays the accounts');
    const system = await ActorSystem.create({ persistence });
    try {
      for (const name of ACCOUNTS) {
        const ref = await system.spawn(
          bankAccount(name, (r) => {
            recoveries.push(r);
            log(describeRecovery(r));
          }),
        );
        const reply = await ref.ask<AccountReply>({ type: 'balance' });
        if (reply.ok) after[name] = reply.balance;
      }
    } finally {
      await system.terminate();
    }
  }
  const same = ACCOUNTS.every((name) => before[name] === after[name]);
  log(
    same ? 'balances after the restart match: state was rebuilt from storage' : 'MISMATCH after the restart',
  );
  return { before, after, recoveries };
}
