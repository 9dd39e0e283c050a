import { describe, expect, it } from 'vitest';
import { compareJson } from '../../electron/engine/report/text-files';

describe('JSON compared key by key', () => {
  it('names each changed, added and removed key path; order and formatting are no change', () => {
    const before = { layers: 2, rope: { theta: 10000, type: 'linear' }, eos: [1, 2], old: true };
    const after = { rope: { type: 'linear', theta: 500000 }, layers: 2, eos: [1, 2, 3], 'a-b': 1 };
    expect(compareJson(before, after)).toEqual([
      { key: 'rope.theta', status: 'modified', before: '10000', value: '500000' },
      { key: 'eos[2]', status: 'added', value: '3' },
      { key: '["a-b"]', status: 'added', value: '1' },
      { key: 'old', status: 'removed', before: 'true' },
    ]);
    expect(compareJson({ a: { b: 1 } }, { a: { b: 1 } })).toEqual([]);
  });

  it('a value that changes type is one change at its path', () => {
    expect(compareJson({ a: [1] }, { a: { x: 1 } })).toEqual([
      { key: 'a', status: 'modified', before: '[1]', value: '{"x":1}' },
    ]);
  });
});
