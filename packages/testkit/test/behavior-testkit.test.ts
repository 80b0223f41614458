import { AssertionError } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { EventSourcedBehavior, WriteRejectedError } from '@cairn/actor-core';
import { behaviorTestKit } from '@cairn/testkit';

type Cmd =
  | { type: 'add'; item: string; at: Date }
  | { type: 'addTwo'; items: [string, string] }
  | { type: 'count' }
  | { type: 'noop' }
  | { type: 'checkout' }
  | { type: 'boom' };
type Evt = { type: 'added'; item: string; at: Date } | { type: 'checkedOut' };
type Cart = { items: Map<string, Date>; checkedOut: boolean };

const cart = (
  extra: Partial<Parameters<typeof EventSourcedBehavior.create<Cmd, Evt, Cart, number>>[0]> = {},
) =>
  EventSourcedBehavior.create<Cmd, Evt, Cart, number>({
    persistenceId: 'cart-1',
    emptyState: { items: new Map(), checkedOut: false },
    commandHandler: (state, cmd, effect) => {
      switch (cmd.type) {
        case 'add':
          return effect.persist({ type: 'added', item: cmd.item, at: cmd.at }).thenReply((s) => s.items.size);
        case 'addTwo':
          return effect
            .persist(cmd.items.map((item) => ({ type: 'added', item, at: new Date(0) }) as const))
            .thenReply((s) => s.items.size);
        case 'count':
          return effect.reply(state.items.size);
        case 'noop':
          return effect.none();
        case 'checkout':
          return effect.persist({ type: 'checkedOut' }).thenStop();
        case 'boom':
          throw new Error('handler refused');
      }
    },
    eventHandler: (state, evt) =>
      evt.type === 'added'
        ? { ...state, items: new Map(state.items).set(evt.item, evt.at) }
        : { ...state, checkedOut: true },
    ...extra,
  });

describe('behaviorTestKit', () => {
  it('returns per command the persisted events, the new state and the reply; restart recovers the same state', async () => {
    const kit = await behaviorTestKit(cart({ snapshotEvery: 2 }));
    try {
      const at = new Date('2026-01-02T03:04:05Z');
      const first = await kit.runCommand({ type: 'add', item: 'apple', at });
      expect(first).toEqual({
        command: { type: 'add', item: 'apple', at },
        events: [{ type: 'added', item: 'apple', at }],
        state: { items: new Map([['apple', at]]), checkedOut: false },
        reply: 1,
        hasReply: true,
        stopped: false,
      });
      const two = await kit.runCommand({ type: 'addTwo', items: ['pear', 'fig'] });
      expect(two.events).toHaveLength(2);
      expect(two.reply).toBe(3);
      expect(await kit.runCommand({ type: 'count' })).toMatchObject({ events: [], reply: 3 });
      expect(await kit.runCommand({ type: 'noop' })).toMatchObject({
        events: [],
        reply: undefined,
        hasReply: false,
      });
      await expect(kit.runCommand({ type: 'boom' })).rejects.toThrow('handler refused');
      expect(kit.events).toHaveLength(3);
      const before = kit.state;
      // The snapshot at 2 and event 3 bring back an equal state, Dates and Map included.
      expect(await kit.restart()).toEqual(before);
      expect(kit.state.items.get('apple')).toEqual(at);
      const checkout = await kit.runCommand({ type: 'checkout' });
      expect(checkout).toMatchObject({ stopped: true, hasReply: false, state: { checkedOut: true } });
      expect((await kit.restart()).checkedOut).toBe(true);
      const stored: unknown[] = [];
      for await (const e of kit.journal.readFrom('cart-1', 1)) stored.push(e.message);
      expect(stored).toHaveLength(4);
    } finally {
      await kit.close();
    }
  });

  it('catches a Date or Map that does not survive the configured serializer (JSON here)', async () => {
    const kit = await behaviorTestKit(cart(), { serializer: 'json' });
    try {
      const error = await kit
        .runCommand({ type: 'add', item: 'apple', at: new Date(0) })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AssertionError);
      expect((error as Error).message).toMatch(
        /^event 0 \(.*apple.*\) after command .* does not survive the json serializer/,
      );
    } finally {
      await kit.close();
    }
    // The state alone can be the culprit: a Map in the state of a behavior whose events are plain.
    const counter = EventSourcedBehavior.create<'inc', 'incremented', Map<string, number>, number>({
      persistenceId: 'counter',
      emptyState: new Map(),
      commandHandler: (_s, _c, effect) => effect.persist('incremented').thenReply((s) => s.get('n')!),
      eventHandler: (s, _e) => new Map(s).set('n', (s.get('n') ?? 0) + 1),
    });
    const jsonKit = await behaviorTestKit(counter, { serializer: 'json' });
    await expect(jsonKit.runCommand('inc')).rejects.toThrow(/the state after command "inc" does not survive/);
    await jsonKit.close();
    // With msgpack (the default) the same behavior passes; with the check off, JSON passes too.
    const msgpackKit = await behaviorTestKit(counter);
    await expect(msgpackKit.runCommand('inc')).resolves.toMatchObject({ reply: 1 });
    await msgpackKit.close();
    const unchecked = await behaviorTestKit(counter, { serializer: 'json', serializationCheck: false });
    await expect(unchecked.runCommand('inc')).resolves.toMatchObject({ reply: 1 });
    await unchecked.close();
  });

  it('catches a class instance in the state, and a snapshot adapter that does not restore the state', async () => {
    class Money {
      constructor(readonly cents: number) {}
    }
    const wallet = EventSourcedBehavior.create<number, number, Money, number>({
      persistenceId: 'wallet',
      emptyState: new Money(0),
      commandHandler: (_s, amount, effect) => effect.persist(amount).thenReply((s) => s.cents),
      eventHandler: (s, amount) => new Money(s.cents + amount),
    });
    const kit = await behaviorTestKit(wallet);
    await expect(kit.runCommand(5)).rejects.toThrow(
      /the state after command 5 cannot be stored with the msgpack serializer/,
    );
    await kit.close();
    const purse = EventSourcedBehavior.create<number, number, { cents: number }, number>({
      persistenceId: 'purse',
      emptyState: { cents: 0 },
      commandHandler: (_s, amount, effect) => effect.persist(amount).thenReply((s) => s.cents),
      eventHandler: (s, amount) => ({ cents: s.cents + amount }),
      // Stores the cents but forgets them on the way back: recovery from a snapshot would lose money.
      snapshotAdapter: { toSnapshot: (s) => s.cents, fromSnapshot: () => ({ cents: 0 }) },
    });
    const lossy = await behaviorTestKit(purse);
    await expect(lossy.runCommand(5)).rejects.toThrow(
      /the snapshot of the state after command 5 does not restore the state through snapshotAdapter\.fromSnapshot/,
    );
    await lossy.close();
  });

  it('an event the serializer refuses fails the command with WriteRejectedError, nothing stored', async () => {
    const behavior = EventSourcedBehavior.create<'bad', { fn: () => void }, number, number>({
      persistenceId: 'bad',
      emptyState: 0,
      commandHandler: (_s, _c, effect) => effect.persist({ fn: () => undefined }).thenReply((s) => s),
      eventHandler: (s) => s + 1,
    });
    const kit = await behaviorTestKit(behavior);
    await expect(kit.runCommand('bad')).rejects.toBeInstanceOf(WriteRejectedError);
    expect(kit.events).toEqual([]);
    expect(await kit.journal.highestSequenceNr('bad')).toBe(0);
    await kit.close();
  });

  it('runs under node:test, with no jest global', () => {
    const fixture = path.join(__dirname, 'fixtures', 'behavior-node-test.mjs');
    const out = execFileSync(process.execPath, ['--test', fixture], { encoding: 'utf8', stdio: 'pipe' });
    expect(out).toMatch(/# pass 2/);
    expect(out).toMatch(/# fail 0/);
  });
});
