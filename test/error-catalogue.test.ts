import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { PERSISTENCE_ERROR_CODES } from '@cairn/actor-core';

/**
 * The error catalogue is closed: PersistenceErrorCode is exactly PERSISTENCE_ERROR_CODES, and the tables
 * users read (actor-core's README and the TSDoc of errors.ts) list exactly those codes, so a code thrown
 * by any package and missing from the docs fails here.
 */
const root = path.join(__dirname, '..');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory())
      return name === 'node_modules' || name === 'dist' ? [] : sourceFiles(full);
    return full.endsWith('.ts') ? [full] : [];
  });
}

/** The codes in the first column of a markdown table whose header starts with "code". */
function tableCodes(text: string): string[] {
  return [...text.matchAll(/^\s*(?:\*\s*)?\|\s*`?(ERR_[A-Z_]+)`?\s*\|/gm)].map((m) => m[1]!);
}

const sorted = (codes: Iterable<string>) => [...new Set(codes)].sort();

describe('error catalogue', () => {
  it("actor-core's README lists every code exactly once, and no other", () => {
    const codes = tableCodes(readFileSync(path.join(root, 'packages/actor-core/README.md'), 'utf8'));
    expect(codes.length).toBe(new Set(codes).size);
    expect(sorted(codes)).toEqual(sorted(PERSISTENCE_ERROR_CODES));
  });

  it("errors.ts's TSDoc table lists every code, and no other", () => {
    const text = readFileSync(path.join(root, 'packages/actor-core/src/errors.ts'), 'utf8');
    expect(sorted(tableCodes(text))).toEqual(sorted(PERSISTENCE_ERROR_CODES));
  });

  it('every code a package throws is in the catalogue, and every catalogued code is thrown somewhere', () => {
    const thrown = new Set<string>();
    for (const file of sourceFiles(path.join(root, 'packages'))) {
      if (!file.includes(`${path.sep}src${path.sep}`)) continue;
      const text = readFileSync(file, 'utf8');
      // A PersistenceError subclass passes its code to super(...).
      for (const m of text.matchAll(/super\(\s*'(ERR_[A-Z_]+)'/g)) thrown.add(m[1]!);
    }
    expect(sorted(thrown)).toEqual(sorted(PERSISTENCE_ERROR_CODES));
  });
});
