import { didYouMean } from './suggest';

/** The type an option must have: a typeof name, 'integer' (a safe integer >= 0), or a predicate with a description. */
export type OptionType =
  | 'string'
  | 'number'
  | 'integer'
  | 'boolean'
  | 'object'
  | 'function'
  | { readonly check: (value: unknown) => boolean; readonly expected: string };

/**
 * Checks provider options against a schema and returns one message per problem (unknown keys, wrong
 * types), for `PersistenceProvider.validateOptions`. `undefined` values are always accepted.
 */
export function checkOptionTypes(
  options: Readonly<Record<string, unknown>>,
  schema: Readonly<Record<string, OptionType>>,
): string[] {
  const problems: string[] = [];
  for (const [key, value] of Object.entries(options)) {
    const type = schema[key];
    if (type === undefined) {
      problems.push(
        `${key}: unknown option${didYouMean(key, Object.keys(schema))} (known: ${Object.keys(schema).sort().join(', ')})`,
      );
      continue;
    }
    if (value === undefined) continue;
    if (typeof type === 'object') {
      if (!type.check(value)) problems.push(`${key}: must be ${type.expected}, got ${JSON.stringify(value)}`);
    } else if (type === 'integer') {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
        problems.push(`${key}: must be an integer >= 0, got ${JSON.stringify(value)}`);
      }
    } else if (typeof value !== type || (type === 'object' && value === null)) {
      problems.push(`${key}: must be a ${type}, got ${value === null ? 'null' : typeof value}`);
    }
  }
  return problems;
}

/** Options every journal accepts (see JournalOptions). */
export const JOURNAL_OPTION_TYPES: Readonly<Record<string, OptionType>> = {
  path: 'string',
  maxBatchSize: { check: (v) => Number.isSafeInteger(v) && (v as number) >= 1, expected: 'an integer >= 1' },
  maxBatchDelayMs: 'integer',
  serializer: {
    check: (v) => typeof v === 'string' || typeof v === 'number' || (typeof v === 'object' && v !== null),
    expected: 'a serializer name, id or instance',
  },
  reporter: 'function',
  maxPendingEvents: {
    check: (v) => Number.isSafeInteger(v) && (v as number) >= 1,
    expected: 'an integer >= 1',
  },
  maxPendingBytes: {
    check: (v) => Number.isSafeInteger(v) && (v as number) >= 1,
    expected: 'an integer >= 1',
  },
  onBackpressure: { check: (v) => v === 'wait' || v === 'reject', expected: "'wait' or 'reject'" },
};

/** Options every snapshot store accepts (see SnapshotStoreOptions). */
export const SNAPSHOT_OPTION_TYPES: Readonly<Record<string, OptionType>> = {
  path: 'string',
  serializer: JOURNAL_OPTION_TYPES.serializer!,
  reporter: 'function',
};

/** The options a backend's `open()` accepts, by name: the one declaration both `open()` and the config path check. */
export type OptionSchema = Readonly<Record<string, OptionType>>;

/**
 * Checks the options given to `owner.open()` against the backend's schema, the same one its provider's
 * validateOptions uses: a misspelt or unknown option (`fsynk`, `readonly`) is a TypeError naming every
 * problem and the known options, before anything is opened, instead of being ignored; a number out of
 * its range is a RangeError.
 */
export function checkOpenOptions(owner: string, options: unknown, schema: OptionSchema): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`${owner}.open needs an options object`);
  }
  const given = options as Record<string, unknown>;
  const problems = checkOptionTypes(given, schema);
  if (problems.length === 0) return;
  // A number outside its range (a batch size of 0) is a RangeError; anything else (an unknown option,
  // a string where a number belongs) a TypeError.
  const outOfRange = problems.every((p) => {
    const key = p.slice(0, p.indexOf(':'));
    const type = schema[key];
    return (type === 'integer' || typeof type === 'object') && typeof given[key] === 'number';
  });
  const message = `${owner}.open: ${problems.join('; ')}`;
  throw outOfRange ? new RangeError(message) : new TypeError(message);
}
