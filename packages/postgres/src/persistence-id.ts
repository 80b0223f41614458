/**
 * Persistence ids are any non-empty JavaScript string; a PostgreSQL text column holds neither NUL nor a
 * lone surrogate (UTF-8 would turn every one of those into U+FFFD and merge distinct ids). The column
 * holds the id with `\` doubled, NUL as `\0` and a lone surrogate as `\uXXXX`: any other id is stored
 * exactly as it is, so operators read the ids they wrote.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is one of the characters this escapes
const SPECIAL = /\\|\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const ESCAPED = /\\(\\|0|u[0-9A-F]{4})/g;

export function idToColumn(persistenceId: string): string {
  SPECIAL.lastIndex = 0;
  if (!SPECIAL.test(persistenceId)) return persistenceId;
  return persistenceId.replace(SPECIAL, (c) => {
    if (c === '\\') return '\\\\';
    if (c === '\u0000') return '\\0';
    return `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
  });
}

export function idFromColumn(column: string): string {
  if (!column.includes('\\')) return column;
  return column.replace(ESCAPED, (_, e: string) => {
    if (e === '\\') return '\\';
    if (e === '0') return '\u0000';
    return String.fromCharCode(Number.parseInt(e.slice(1), 16));
  });
}
