import pg from 'pg';

/**
 * The PostgreSQL server of this test run: CAIRN_TEST_PG_URL, set by the jest global setup (which starts a
 * throwaway server when it was not set). Each test file takes schemas of its own (`schemas.next()`), and
 * drops them when it ends (`schemas.dropAll()`), so files running side by side never see each other's rows.
 */
export function testServerUrl(): string {
  const url = process.env.CAIRN_TEST_PG_URL;
  if (!url) {
    throw new Error(
      'CAIRN_TEST_PG_URL is not set: run the postgres tests through jest (its global setup starts a server) or set it',
    );
  }
  return url;
}

/**
 * The server's URL with synchronous_commit off for this connection's sessions: for tests of behaviour
 * (conformance), where the server stays up and a commit's wait for the WAL flush buys nothing. Durability
 * tests (crash, restart) use testServerUrl(), with the server's durable default.
 */
export function fastTestServerUrl(): string {
  const url = new URL(testServerUrl());
  url.searchParams.set('options', '-c synchronous_commit=off');
  return url.toString();
}

export class TestSchemas {
  private readonly made: string[] = [];
  private readonly prefix: string;

  /**
   * `label`: a short lower-case name of the test file; `url`: the server (default the run's shared one;
   * a file with a server of its own passes its URL).
   */
  constructor(
    label: string,
    private readonly url: () => string = testServerUrl,
  ) {
    this.prefix = `t_${label}_${process.pid}_${Math.random().toString(36).slice(2, 6)}`;
  }

  /** A schema name no other test uses. */
  next(): string {
    const name = `${this.prefix}_${this.made.length}`;
    this.made.push(name);
    return name;
  }

  /**
   * A schema for a conformance case (`key`: its directory): the same one for the same key; for a new key
   * one of the file's two case schemas, emptied (creating a schema per case would cost most of the
   * suite's time): the one given out less recently, so a case that opens a second store (another key)
   * while its own is open gets the other schema, never its own.
   */
  private readonly caseSchemas: { schema: string; key: string | undefined }[] = [];
  async forKey(key: string): Promise<string> {
    if (this.caseSchemas.length === 0) {
      this.caseSchemas.push({ schema: this.next(), key: undefined }, { schema: this.next(), key: undefined });
    }
    const found = this.caseSchemas.find((c) => c.key === key);
    if (found) return found.schema;
    // Least recently given out first: move it to the end.
    const slot = this.caseSchemas.shift()!;
    this.caseSchemas.push(slot);
    slot.key = key;
    const s = `"${slot.schema}"`;
    const [exists] = await sql<{ t: string | null }>(
      `SELECT to_regclass('${s}.streams')::text AS t`,
      [],
      this.url(),
    );
    if (exists?.t) {
      await sql(
        `DELETE FROM ${s}.streams; DELETE FROM ${s}.journal; DELETE FROM ${s}.snapshots; DELETE FROM ${s}.offsets; DELETE FROM ${s}.ordering_floor`,
        [],
        this.url(),
      );
    }
    return slot.schema;
  }

  async dropAll(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url() });
    await client.connect();
    try {
      for (const name of this.made) await client.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
    } finally {
      await client.end();
    }
  }
}

/** Runs one statement on a connection of its own (for tests that alter rows behind Cairn's back). */
export async function sql<R = Record<string, unknown>>(
  text: string,
  params: unknown[] = [],
  url: string = testServerUrl(),
): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, params)).rows as R[];
  } finally {
    await client.end();
  }
}
