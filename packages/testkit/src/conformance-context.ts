import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
/**
 * The jest-style matchers the suites use, which jest's, vitest's and the `expect` package's `expect`
 * all provide (each types them its own way; these are what they share).
 */
export interface ConformanceMatchers {
  toBe(expected: unknown): void;
  toEqual(expected: unknown): void;
  toMatchObject(expected: object): void;
  toMatch(expected: RegExp | string): void;
  toContain(expected: unknown): void;
  toBeUndefined(): void;
  toBeInstanceOf(expected: unknown): void;
  toHaveLength(expected: number): void;
  toBeLessThanOrEqual(expected: number): void;
  toBeGreaterThanOrEqual(expected: number): void;
  /** For a promise: its rejection. */
  readonly rejects: {
    toThrow(expected?: unknown): Promise<void>;
    toBe(expected: unknown): Promise<void>;
  };
}

/**
 * The assertion function the suites use: jest's and vitest's `expect`, or the `expect` package's. Typed
 * by the little the suites need (a call, the matchers above on its result, `arrayContaining`), so that
 * the kit's types load in an application that has none of those packages installed.
 */
export interface ConformanceExpect {
  (actual: unknown): ConformanceMatchers;
  /** An asymmetric matcher: any array holding every element of `sample`. */
  arrayContaining(sample: readonly unknown[]): unknown;
}

/**
 * The test runner the suites register with: pass your runner's functions, so the kit runs under jest,
 * vitest or node:test alike. Left out, the suites use the globals jest (and vitest with `globals: true`)
 * define: `describe`, `it` and `expect`.
 *
 *   // node:test
 *   import { describe, test } from 'node:test';
 *   import { expect } from 'expect';
 *   const runner = { describe, test, expect, skip: (t, reason) => t.skip(reason) };
 */
export interface ConformanceRunner {
  describe(name: string, body: () => void): void;
  /**
   * Registers one case; `body` gets whatever the runner hands a test (node:test's and vitest's context).
   * A few long cases pass a timeout in ms as the third argument (jest and vitest take it there).
   */
  test(name: string, body: (context: never) => Promise<void>, timeoutMs?: number): void;
  readonly expect: ConformanceExpect;
  /**
   * Marks the running case skipped with the reason (node:test: `(t, reason) => t.skip(reason)`; vitest:
   * `(ctx, reason) => ctx.skip(reason)`). Without it (jest has no way to skip a running test) the case ends
   * without failing and prints the reason.
   */
  skip?(context: never, reason: string): void;
}

/** What every suite's options may carry: the runner to register with. */
export interface RunnerOption {
  readonly runner?: ConformanceRunner;
}

/** The runner given, or jest's globals. */
export function runnerOf(options: RunnerOption): ConformanceRunner {
  if (options.runner) return options.runner;
  const g = globalThis as unknown as Partial<Record<'describe' | 'it' | 'expect', unknown>>;
  if (typeof g.describe !== 'function' || typeof g.it !== 'function' || typeof g.expect !== 'function') {
    throw new TypeError(
      'no test runner: pass `runner: { describe, test, expect }` (node:test, vitest without globals), ' +
        'or run under jest',
    );
  }
  const it = g.it as (name: string, body: () => Promise<void>, timeoutMs?: number) => void;
  return {
    describe: g.describe as ConformanceRunner['describe'],
    // jest takes a test function that declares a parameter for a done-callback test and waits for the
    // callback: hand it one without, since jest gives a test no context.
    test: (name, body, timeoutMs) => it(name, () => body(undefined as never), timeoutMs),
    expect: g.expect as ConformanceExpect,
  };
}

/** What a factory gets: a fresh directory of its own (created, empty). */
export interface FactoryContext {
  readonly dir: string;
}

/** The lifecycle a case runs in: on a freshly created store, or on one closed and opened again first. */
export type Lifecycle = 'fresh' | 'reopened';
export const LIFECYCLES: readonly Lifecycle[] = ['fresh', 'reopened'];

/** A store under test: the kit reads what it supports from its own `capabilities`, nothing else. */
export interface Closable {
  close(): Promise<void>;
  readonly capabilities: { readonly persistent: boolean };
}

/**
 * Thrown by a case that does not apply to the store under test (a capability it does not declare): the
 * case registration turns it into the runner's skip with the reason, or prints the reason where the runner
 * cannot skip a running test.
 */
export class CaseSkipped extends Error {
  override readonly name = 'CaseSkipped';
}

let counter = 0;

/** A persistence id no other case uses, so cases never see each other's data. */
export function freshId(label = 'pid'): string {
  counter += 1;
  return `${label}-${process.pid}-${counter}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * One case's world: a temp directory, the store under test opened on it (per lifecycle), a way to
 * reopen it, and cleanup that closes whatever is open and removes the directory.
 */
export class CaseContext<T extends Closable> {
  private current: T | undefined;
  private constructor(
    readonly dir: string,
    private readonly create: (ctx: FactoryContext) => Promise<T>,
  ) {}

  static async open<T extends Closable>(
    create: (ctx: FactoryContext) => Promise<T>,
    lifecycle: Lifecycle,
  ): Promise<CaseContext<T>> {
    const dir = await mkdtemp(path.join(tmpdir(), 'cairn-conformance-'));
    const ctx = new CaseContext(dir, create);
    ctx.current = await create({ dir });
    if (lifecycle === 'reopened') await ctx.reopen();
    return ctx;
  }

  /** The store under test. */
  get store(): T {
    if (!this.current) throw new Error('the store is not open');
    return this.current;
  }

  /** Closes the store and opens it again on the same directory. */
  async reopen(): Promise<T> {
    await this.current?.close();
    this.current = undefined;
    this.current = await this.create({ dir: this.dir });
    return this.current;
  }

  /**
   * Ends the case as skipped, saying why: `requires(store.capabilities.import, 'import')`. The kit reads
   * capabilities from the instance, so whether a case applies is known only once the store is open.
   */
  requires(declared: boolean | undefined, capability: string): void {
    if (declared !== true)
      throw new CaseSkipped(`skipped: the store does not declare the ${capability} capability`);
  }

  async dispose(): Promise<void> {
    try {
      await this.current?.close();
    } finally {
      this.current = undefined;
      await rm(this.dir, { recursive: true, force: true });
    }
  }
}

/**
 * Registers `body` as one test per lifecycle (fresh and reopened), each on its own directory, with
 * the case object `describeCase` builds from the context; the store is closed and the directory removed
 * afterwards, whatever the outcome.
 */
export function registerCase<T extends Closable, C>(
  runner: ConformanceRunner,
  create: (ctx: FactoryContext) => Promise<T>,
  title: string,
  describeCase: (ctx: CaseContext<T>) => C,
  body: (c: C) => Promise<void>,
): void {
  for (const lifecycle of LIFECYCLES) {
    runner.test(`${title} [${lifecycle}]`, async (context: never) => {
      const ctx = await CaseContext.open(create, lifecycle);
      try {
        await body(describeCase(ctx));
      } catch (e) {
        if (!(e instanceof CaseSkipped)) throw e;
        if (runner.skip) runner.skip(context, e.message);
        else console.log(`${title} [${lifecycle}]: ${e.message}`);
      } finally {
        await ctx.dispose();
      }
    });
  }
}

/** Collects an async iterable into an array. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}
