import { createHash } from 'node:crypto';

/*
 * How a persistenceId (any well-formed unicode, up to 1 KB of UTF-8) becomes a directory name.
 *
 * Escaping: `a`-`z`, `0`-`9` and `-` stand for themselves; every other UTF-8 byte becomes `_XX` (two
 * upper-case hex digits). So "a:b" is "a_3Ab" and "a_b" is "a_5Fb": different ids, different names (the
 * Java system this replaces mapped both to one file). The mapping is reversible, and collision-free even
 * on case-insensitive file systems: literal letters are always lower case and hex digits always upper
 * case, so lower-casing a name still parses to the same bytes. Names are pure ASCII, so file systems that
 * normalize unicode (macOS) cannot merge two of them, and they never start with "." (no clash with "."
 * "..", hidden or temp files).
 *
 * Long ids: escaping can triple the length, and names are limited to 255 bytes. An escaped name longer
 * than MAX_ESCAPED_NAME_LENGTH is replaced by a readable prefix, "~", and the SHA-256 of the id; the full
 * id is then kept in the directory's PERSISTENCE_ID_FILE (and in every snapshot's envelope). "~" never
 * occurs in an escaped name, so the two forms cannot collide.
 */

/** Escaped names up to this length are used as they are; longer ones are hashed. */
export const MAX_ESCAPED_NAME_LENGTH = 200;
const HASHED_PREFIX_LENGTH = 120;
/** In a hashed directory: the full persistenceId in UTF-8, written before the first snapshot. */
export const PERSISTENCE_ID_FILE = 'persistence-id';

const LITERAL = /^[a-z0-9-]$/;
const ESCAPED = /^(?:[a-z0-9-]|_[0-9A-F]{2})+$/;

export interface PersistenceIdDirectoryName {
  readonly name: string;
  /** True when the name is hashed: the id is then read from PERSISTENCE_ID_FILE. */
  readonly hashed: boolean;
}

function escapePersistenceId(persistenceId: string): string {
  let out = '';
  for (const char of persistenceId) {
    if (LITERAL.test(char)) {
      out += char;
      continue;
    }
    for (const byte of Buffer.from(char, 'utf8'))
      out += `_${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The directory name of a persistenceId (see the rules above). */
export function persistenceIdDirectoryName(persistenceId: string): PersistenceIdDirectoryName {
  const escaped = escapePersistenceId(persistenceId);
  if (escaped.length <= MAX_ESCAPED_NAME_LENGTH) return { name: escaped, hashed: false };
  let prefix = escaped.slice(0, HASHED_PREFIX_LENGTH);
  // Cut before a partial escape, so the prefix stays readable.
  const lastEscape = prefix.lastIndexOf('_');
  if (lastEscape > prefix.length - 3) prefix = prefix.slice(0, lastEscape);
  const hash = createHash('sha256').update(persistenceId, 'utf8').digest('hex');
  return { name: `${prefix}~${hash}`, hashed: true };
}

/**
 * The persistenceId an escaped directory name stands for; undefined for a hashed name (read its
 * PERSISTENCE_ID_FILE instead) or a name that is not a persistenceId directory at all.
 */
export function persistenceIdFromDirectoryName(name: string): string | undefined {
  if (!ESCAPED.test(name)) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < name.length; ) {
    if (name[i] === '_') {
      bytes.push(Number.parseInt(name.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      bytes.push(name.charCodeAt(i));
      i += 1;
    }
  }
  try {
    const id = new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
    // Only the canonical spelling counts: "_61" would decode to "a", but "a" is that id's name.
    return escapePersistenceId(id) === name ? id : undefined;
  } catch {
    return undefined;
  }
}

/** True for names made by persistenceIdDirectoryName with hashed: true. */
export function isHashedDirectoryName(name: string): boolean {
  return /^(?:[a-z0-9-]|_[0-9A-F]{2})*~[0-9a-f]{64}$/.test(name);
}
