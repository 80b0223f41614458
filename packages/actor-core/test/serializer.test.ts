import {
  jsonSerializer,
  MemoryMessageJournal,
  MsgpackSerializer,
  msgpackSerializer,
  resolveSerializer,
  type Serializer,
  SerializerRegistry,
} from '@cairn/actor-core';
import fc from 'fast-check';
import { defaultSerializers } from '../src/serializer';

const roundTrip = (s: Serializer, v: unknown) => s.decode(s.encode(v));

describe('msgpack serializer (the default)', () => {
  it('round-trips Date, Map, Set, BigInt, bytes, RegExp, Error, -0, NaN and undefined in arrays', () => {
    const value = {
      date: new Date(1234),
      map: new Map<unknown, unknown>([
        [1, 'one'],
        ['nested', new Map([['x', -0]])],
      ]),
      set: new Set(['a', 2]),
      big: -(2n ** 80n),
      small: 5n,
      bytes: Buffer.from([1, 2, 3]),
      re: /a+b/gi,
      zero: -0,
      nan: Number.NaN,
      inf: Number.NEGATIVE_INFINITY,
      arr: [undefined, 1, undefined],
      deep: { a: [{ b: new Map([['k', new Set<unknown>([new Date(5), { z: -0 }])]]) }] },
    };
    const back = roundTrip(msgpackSerializer, value) as typeof value;
    expect(back.date).toEqual(new Date(1234));
    expect(back.map).toBeInstanceOf(Map);
    expect(Object.is((back.map.get('nested') as Map<string, number>).get('x'), -0)).toBe(true);
    expect(back.set).toEqual(new Set(['a', 2]));
    expect(back.big).toBe(-(2n ** 80n));
    expect(back.small).toBe(5n);
    expect(Array.from(back.bytes)).toEqual([1, 2, 3]);
    expect(back.re.source).toBe('a+b');
    expect(back.re.flags).toBe('gi');
    expect(Object.is(back.zero, -0)).toBe(true);
    expect(back.nan).toBeNaN();
    expect(back.inf).toBe(Number.NEGATIVE_INFINITY);
    expect(back.arr).toEqual([undefined, 1, undefined]);
    expect(back.arr).toHaveLength(3);
    const deepMap = back.deep.a[0]!.b;
    expect(deepMap).toBeInstanceOf(Map);
    const [date, holder] = [...deepMap.get('k')!] as [Date, { z: number }];
    expect(date.getTime()).toBe(5);
    expect(Object.is(holder.z, -0)).toBe(true);
  });

  it('leaves plain objects plain (not Maps)', () => {
    expect(roundTrip(msgpackSerializer, { a: { b: 1 } })).toEqual({ a: { b: 1 } });
    expect(roundTrip(msgpackSerializer, { a: { b: 1 } })).not.toBeInstanceOf(Map);
  });

  it('keeps an own "__proto__" key as data (JSON.parse makes such objects), not as a prototype', () => {
    const value = JSON.parse('{"a":1,"__proto__":{"polluted":true},"nested":{"__proto__":[1]}}');
    const back = roundTrip(msgpackSerializer, value) as Record<string, unknown>;
    expect(back).toEqual(value);
    expect(Object.keys(back)).toEqual(['a', '__proto__', 'nested']);
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('round-trips arbitrary JSON-like values', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(roundTrip(msgpackSerializer, value)).toEqual(value);
      }),
    );
  });

  it('decodeRange decodes a value inside a larger buffer as decode would its view', () => {
    const decodeRange = msgpackSerializer.decodeRange!.bind(msgpackSerializer);
    fc.assert(
      fc.property(
        fc.jsonValue(),
        fc.uint8Array({ maxLength: 20 }),
        fc.uint8Array(),
        (value, before, after) => {
          const encoded = msgpackSerializer.encode(value);
          const page = Buffer.concat([before, encoded, after]);
          expect(decodeRange(page, before.length, before.length + encoded.length)).toEqual(value);
        },
      ),
    );
  });

  it('binary values in a decoded message are copies, not views into the bytes decoded', () => {
    const encoded = msgpackSerializer.encode({
      blob: Buffer.from([1, 2, 3]),
      nested: [new Uint8Array([4, 5])],
    });
    const page = Buffer.concat([Buffer.from([9, 9]), encoded]);
    const decoded = msgpackSerializer.decodeRange!(page, 2, page.length) as {
      blob: Uint8Array;
      nested: Uint8Array[];
    };
    const whole = msgpackSerializer.decode(encoded) as { blob: Uint8Array };
    page.fill(0);
    encoded.fill(0);
    expect([...decoded.blob]).toEqual([1, 2, 3]);
    expect([...decoded.nested[0]!]).toEqual([4, 5]);
    expect([...whole.blob]).toEqual([1, 2, 3]);
    expect(decoded.blob.buffer).not.toBe(page.buffer);
  });

  it('decodeRange throws, as decode does, when the range cuts the value short or runs past its end', () => {
    const encoded = msgpackSerializer.encode({ type: 'Deposited', amount: 7, note: 'x'.repeat(40) });
    const page = Buffer.concat([Buffer.from([1, 2, 3]), encoded, Buffer.from([0xc0, 0xc0])]);
    const decodeRange = msgpackSerializer.decodeRange!.bind(msgpackSerializer);
    expect(() => decodeRange(page, 3, 3 + encoded.length - 1)).toThrow();
    expect(() => decodeRange(page, 3, 3 + encoded.length + 1)).toThrow();
    expect(() => msgpackSerializer.decode(page.subarray(3, 3 + encoded.length + 1))).toThrow();
    expect(decodeRange(page, 3, 3 + encoded.length)).toEqual(msgpackSerializer.decode(encoded));
  });

  it.each([
    ['a function', () => 1, /value is a function/],
    ['a symbol', Symbol('s'), /value is a symbol/],
    ['a nested function', { a: [1, { f() {} }] }, /value\.a\[1\]\.f is a function/],
    ['a promise in a map', new Map([['p', Promise.resolve()]]), /value\.get\(p\) is a Promise/],
    ['a WeakMap', { w: new WeakMap() }, /value\.w is a WeakMap/],
  ])('refuses %s with a TypeError naming where it is', (_label, value, message) => {
    expect(() => msgpackSerializer.encode(value)).toThrow(TypeError);
    expect(() => msgpackSerializer.encode(value)).toThrow(message);
  });
});

describe('json serializer', () => {
  it('round-trips JSON values', () => {
    expect(roundTrip(jsonSerializer, { a: [1, 'two', null] })).toEqual({ a: [1, 'two', null] });
  });
  it('refuses what JSON cannot hold at the top level', () => {
    expect(() => jsonSerializer.encode(undefined)).toThrow(TypeError);
    expect(() => jsonSerializer.encode(1n)).toThrow(TypeError);
  });
});

describe('serializer selection', () => {
  it('resolves by name and id, msgpack by default', () => {
    expect(resolveSerializer(undefined)).toBe(msgpackSerializer);
    expect(resolveSerializer('json')).toBe(jsonSerializer);
    expect(resolveSerializer(1)).toBe(msgpackSerializer);
    expect(() => resolveSerializer('yaml')).toThrow(RangeError);
  });
  it('refuses two serializers with one id', () => {
    const registry = new SerializerRegistry();
    const impostor: Serializer = {
      id: 1,
      name: 'impostor',
      encode: () => new Uint8Array(),
      decode: () => null,
    };
    expect(() => registry.register(impostor)).toThrow(/taken by "msgpack"/);
    expect(() => registry.register({ ...impostor, id: 70000 })).toThrow(RangeError);
    // Id 0 marks deletion markers: no serializer may claim it, so no event is ever taken for one.
    expect(() => registry.register({ ...impostor, id: 0 })).toThrow(/reserved for deletion markers/);
    expect(() => resolveSerializer({ ...impostor, id: 0 })).toThrow(RangeError);
  });
});

class Money {
  constructor(
    readonly cents: number,
    readonly currency = 'EUR',
  ) {}
  add(other: Money): Money {
    return new Money(this.cents + other.cents, this.currency);
  }
}

class Secret {
  #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
}

describe('class instances', () => {
  it('an instance of an unregistered class is refused, never restored as a plain object', () => {
    expect(() => msgpackSerializer.encode({ price: new Money(1999) })).toThrow(
      /value\.price is an instance of class Money.*register the class/,
    );
    expect(() => msgpackSerializer.encode([new Map([['k', new Money(1)]])])).toThrow(TypeError);
  });

  it('a journal rejects such an event with WriteRejectedError and stores nothing; registered, it comes back a Money', async () => {
    const plain = await MemoryMessageJournal.open<unknown>();
    await expect(plain.append('x', new Money(1999))).rejects.toMatchObject({ code: 'ERR_WRITE_REJECTED' });
    expect(await plain.highestSequenceNr('x')).toBe(0);
    await plain.close();
    const registered = await MemoryMessageJournal.open<Money>({
      serializer: new MsgpackSerializer({ classes: [Money] }),
    });
    await registered.append('x', new Money(1999));
    for await (const e of registered.readFrom('x', 1)) expect(e.message).toBeInstanceOf(Money);
    await registered.close();
  });

  it('a registered class comes back as itself, nested anywhere, with its methods', () => {
    const serializer = new MsgpackSerializer({ classes: [Money] });
    const value = {
      price: new Money(1999),
      history: [new Money(5, 'USD')],
      byId: new Map([['a', new Money(1)]]),
    };
    const back = roundTrip(serializer, value) as typeof value;
    expect(back.price).toBeInstanceOf(Money);
    expect(back.price.add(new Money(1)).cents).toBe(2000);
    expect(back.history[0]).toEqual(new Money(5, 'USD'));
    expect(back.byId.get('a')).toBeInstanceOf(Money);
  });

  it('write/read handle a class with private state; a reader without the class refuses the data', () => {
    const serializer = new MsgpackSerializer({
      classes: [
        {
          class: Secret,
          name: 'Secret',
          write: (s) => (s as Secret).reveal(),
          read: (v) => new Secret(v as string),
        },
      ],
    });
    const back = roundTrip(serializer, { s: new Secret('x') }) as { s: Secret };
    expect(back.s.reveal()).toBe('x');
    const bytes = serializer.encode(new Secret('y'));
    expect(() => msgpackSerializer.decode(bytes)).toThrow(/class "Secret", which is not registered/);
  });

  it('refuses bad registrations', () => {
    expect(() => new MsgpackSerializer({ classes: [Money, { class: Money }] })).toThrow(/two classes/);
    expect(() => new MsgpackSerializer({ classes: [{ class: Secret, write: () => 1 }] })).toThrow(
      /both write and read/,
    );
  });
});

describe('serializer registries are per store', () => {
  it('two stores, each with its own serializer under the same id, open side by side and each decodes its own', async () => {
    const upper = {
      id: 100,
      name: 'upper',
      encode: (v: unknown) => Buffer.from(String(v).toUpperCase()),
      decode: (b: Uint8Array) => Buffer.from(b).toString(),
    };
    const lower = {
      id: 100,
      name: 'lower',
      encode: (v: unknown) => Buffer.from(String(v).toLowerCase()),
      decode: (b: Uint8Array) => Buffer.from(b).toString(),
    };
    const a = await MemoryMessageJournal.open<string>({ serializer: upper });
    const b = await MemoryMessageJournal.open<string>({ serializer: lower });
    await a.append('x', 'Hello');
    await b.append('x', 'Hello');
    const read = async (j: typeof a) => {
      for await (const e of j.readFrom('x', 1)) return e.message;
      return undefined;
    };
    expect(await read(a)).toBe('HELLO');
    expect(await read(b)).toBe('hello');
    await a.close();
    await b.close();
    // Nothing was registered process-wide.
    expect(defaultSerializers.get(100)).toBeUndefined();
  });
});
