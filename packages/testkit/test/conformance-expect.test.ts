import type { ConformanceExpect } from '@cairn/testkit';
import { expect as expectPackage } from 'expect';

// The kit types `expect` by the matchers its suites use, without importing any runner's types. The
// runners' own functions must still fit that type: should one stop doing so, this stops compiling.
const fromJest: ConformanceExpect = expect;
const fromExpectPackage: ConformanceExpect = expectPackage;

it("jest's expect and the expect package's (what node:test users pass) are ConformanceExpects", async () => {
  for (const check of [fromJest, fromExpectPackage]) {
    check([1, 2, 3]).toEqual(check.arrayContaining([3, 1]));
    check({ a: 1, b: 2 }).toMatchObject({ a: 1 });
    await check(Promise.reject(new Error('boom'))).rejects.toThrow(/boom/);
    expect(() => check(1).toBe(2)).toThrow();
  }
});
