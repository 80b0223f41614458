import { Effect, EventSourcedBehavior } from '@cairn/actor-core';

export type AccountCommand =
  | { readonly type: 'deposit'; readonly amount: number }
  | { readonly type: 'withdraw'; readonly amount: number }
  | { readonly type: 'balance' };

export type AccountEvent =
  | { readonly type: 'deposited'; readonly amount: number }
  | { readonly type: 'withdrawn'; readonly amount: number };

/** Every account event carries this tag: the read model's projection follows it. */
export const BANK_TAG = 'bank';

/**
 * A bank account whose events are tagged: `bank` on every one, plus `deposit` or `withdrawal`, so a
 * read model can follow all accounts' events (or only deposits) in the journal's global order.
 */
export function account(name: string): EventSourcedBehavior<AccountCommand, AccountEvent, number> {
  return EventSourcedBehavior.create<AccountCommand, AccountEvent, number>({
    persistenceId: `account-${name}`,
    emptyState: 0,
    commandHandler: (balance, command) => {
      if (command.type === 'balance') return Effect.reply(balance);
      if (command.type === 'withdraw' && command.amount > balance) return Effect.reply(balance);
      const event: AccountEvent =
        command.type === 'deposit'
          ? { type: 'deposited', amount: command.amount }
          : { type: 'withdrawn', amount: command.amount };
      return Effect.persist<AccountEvent, number>(event).thenReply((s) => s);
    },
    eventHandler: (balance, event) => balance + (event.type === 'deposited' ? event.amount : -event.amount),
    tagger: (event) => [BANK_TAG, event.type === 'deposited' ? 'deposit' : 'withdrawal'],
    snapshotEvery: 50,
    keepSnapshots: 2,
  });
}

export const ACCOUNTS = ['alice', 'bob', 'carol', 'dave', 'erin'] as const;

/** The i-th operation of the (deterministic) business day. */
export function operation(i: number): { account: string; command: AccountCommand } {
  const name = ACCOUNTS[(i * 7 + 3) % ACCOUNTS.length] as string;
  const amount = ((i * 37) % 90) + 10;
  return { account: name, command: i % 4 === 3 ? { type: 'withdraw', amount } : { type: 'deposit', amount } };
}
