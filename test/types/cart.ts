/**
 * A shopping cart written as the actor-core README shows, with no type arguments in the command
 * handler. `test/types.test.ts` compiles this file with `tsc --strict` against the built packages (as a
 * user's app sees them), and compiles cart-errors.ts expecting each marked line to fail.
 */
import { type ActorRef, ActorSystem, Effect, EventSourcedBehavior } from '@cairn/actor-core';

type Cmd =
  | { type: 'add'; item: string }
  | { type: 'remove'; item: string }
  | { type: 'checkout' }
  | { type: 'items' };
type Evt = { type: 'added'; item: string } | { type: 'removed'; item: string } | { type: 'checkedOut' };
interface Cart {
  readonly items: readonly string[];
  readonly checkedOut: boolean;
}
type Reply = number | readonly string[] | { error: string };

// An effect built outside the handler: its state and reply types come from where it is returned.
const addItem = (item: string) => Effect.persist({ type: 'added', item });

export const cart = (id: string) =>
  EventSourcedBehavior.create<Cmd, Evt, Cart, Reply>({
    persistenceId: `cart-${id}`,
    emptyState: { items: [], checkedOut: false },
    commandHandler: (cart, cmd, effect) => {
      if (cart.checkedOut) return Effect.reply({ error: 'already checked out' });
      switch (cmd.type) {
        case 'add':
          return addItem(cmd.item).thenReply((s) => s.items.length);
        case 'remove':
          return Effect.persist({ type: 'removed', item: cmd.item }).thenReply((s) => s.items.length);
        case 'checkout':
          // A longer chain starts from the handler's typed factories.
          return effect
            .persist({ type: 'checkedOut' })
            .thenRun((s) => console.log(`checked out ${s.items.length} item(s)`))
            .thenReply((s) => s.items)
            .thenStop();
        case 'items':
          return Effect.reply(cart.items);
      }
    },
    eventHandler: (cart, evt) => {
      switch (evt.type) {
        case 'added':
          return { ...cart, items: [...cart.items, evt.item] };
        case 'removed':
          return { ...cart, items: cart.items.filter((i) => i !== evt.item) };
        case 'checkedOut':
          return { ...cart, checkedOut: true };
      }
    },
  });

// Without a reply type the behavior's replies are unknown, and the handler still needs no type arguments.
export const counter = EventSourcedBehavior.create<'inc' | 'get', 'incremented', number>({
  persistenceId: 'counter',
  emptyState: 0,
  commandHandler: (n, cmd) =>
    cmd === 'inc' ? Effect.persist('incremented').thenReply((s) => s + 1) : Effect.reply<number>(n),
  eventHandler: (n) => n + 1,
});

// Several events at once, atomically.
export const pair = EventSourcedBehavior.create<string, { type: 'word'; text: string }, string[]>({
  persistenceId: 'pair',
  emptyState: [],
  commandHandler: (_words, text) =>
    Effect.persist([
      { type: 'word', text },
      { type: 'word', text },
    ]).thenReply((words) => words.length),
  eventHandler: (words, evt) => [...words, evt.text],
});

export async function main(): Promise<void> {
  const system = await ActorSystem.create({
    persistence: { journal: { provider: 'memory' }, snapshots: { provider: 'memory' } },
  });
  const ref: ActorRef<Cmd, Reply> = await system.spawn(cart('1'));
  const reply: Reply = await ref.ask({ type: 'add', item: 'apple' });
  const count = await ref.ask<number>({ type: 'add', item: 'pear' }); // narrowed by the caller
  const n: number = count + 1;
  const counterRef = await system.spawn(counter);
  const unknownReply: unknown = await counterRef.ask('get');
  console.log(reply, n, unknownReply);
  await system.terminate();
}

// The explicit style (type arguments on persist, reply inferred) compiles as before.
type AccountCmd = { type: 'deposit'; amount: number } | { type: 'balance' };
type AccountEvt = { type: 'deposited'; amount: number };
export const account = (id: string) =>
  EventSourcedBehavior.create<AccountCmd, AccountEvt, number>({
    persistenceId: `account-${id}`,
    emptyState: 0,
    commandHandler: (state, cmd) =>
      cmd.type === 'deposit'
        ? Effect.persist<AccountEvt, number>({ type: 'deposited', amount: cmd.amount }).thenReply((s) => s)
        : Effect.reply(state),
    eventHandler: (state, evt) => state + evt.amount,
  });
