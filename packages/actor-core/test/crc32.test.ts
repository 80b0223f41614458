import { crc32, crc32Range } from '@cairn/actor-core';
import fc from 'fast-check';
import { crc32Native, crc32Portable } from '../src/crc32';
import { DELETION_MARKER_PAYLOAD } from '../src/deletion';

// Check values of CRC-32/ISO-HDLC (the zlib polynomial).
const vectors: Array<[string, Uint8Array, number]> = [
  ['empty', new Uint8Array(0), 0x00000000],
  ['"a"', Buffer.from('a'), 0xe8b7be43],
  ['"123456789"', Buffer.from('123456789'), 0xcbf43926],
  [
    '"The quick brown fox jumps over the lazy dog"',
    Buffer.from('The quick brown fox jumps over the lazy dog'),
    0x414fa339,
  ],
  ['32 zero bytes', new Uint8Array(32), 0x190a55ad],
  ['32 0xff bytes', new Uint8Array(32).fill(0xff), 0xff6cab0b],
];

const implementations = [
  ['portable (crc package)', crc32Portable],
  ...(crc32Native ? [['native (zlib)', crc32Native] as const] : []),
  ['range (slice-by-16)', (data: Uint8Array, initial?: number) => crc32Range(data, 0, data.length, initial)],
] as const;

describe.each(implementations)('crc32 %s', (_name, fn) => {
  it.each(vectors)('matches the check value for %s', (_label, data, expected) => {
    expect(fn(data)).toBe(expected);
  });

  it('the CRC of nothing more is the running CRC, for every kind of empty view', () => {
    // zlib answers a view without a backing store (NULL data) with 0: found when an empty payload's
    // checksum was stored as 0 and then failed its own check.
    const empties = [
      new Uint8Array(0),
      new Uint8Array(new ArrayBuffer(0)),
      Buffer.alloc(0),
      new Uint8Array(8).subarray(4, 4),
      DELETION_MARKER_PAYLOAD,
    ];
    for (const empty of empties) expect(fn(empty, 0x12345678)).toBe(0x12345678);
  });

  it('continues a running CRC across chunks', () => {
    const data = Buffer.from('123456789');
    expect(fn(data.subarray(5), fn(data.subarray(0, 5)))).toBe(0xcbf43926);
  });

  it('works on a Uint8Array view into a larger buffer', () => {
    const backing = Buffer.from('xx123456789yy');
    expect(fn(new Uint8Array(backing.buffer, backing.byteOffset + 2, 9))).toBe(0xcbf43926);
  });
});

it('the native and portable CRCs agree on random data', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), (data) => {
      expect(crc32Portable(data)).toBe(crc32(data));
      if (crc32Native) expect(crc32Native(data)).toBe(crc32Portable(data));
    }),
  );
});

it('crc32 picks the native implementation where Node has one', () => {
  expect(crc32).toBe(crc32Native ?? crc32Portable);
});

it('crc32Range equals the CRC of the same range as a view, short (JavaScript) and long (native)', () => {
  // Non-empty ranges: zlib answers 0 for an empty view whose buffer has no memory behind it, whatever
  // `initial` is; crc32Range answers `initial` (nothing was added to the running CRC).
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 3000 }),
      fc.nat(),
      fc.nat(),
      fc.integer({ min: 0, max: 0xffffffff }),
      (data, a, b, initial) => {
        const start = a % data.length;
        const end = start + 1 + (b % (data.length - start));
        expect(crc32Range(data, start, end, initial)).toBe(crc32(data.subarray(start, end), initial));
      },
    ),
  );
});
