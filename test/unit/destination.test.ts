import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeDestination, resolveDestination } from '../../electron/engine/restore/destination';

describe('a restore destination as typed', () => {
  it('expands ~ and ~/... to the home folder, and keeps absolute paths', () => {
    expect(resolveDestination('~', undefined, '/home/ana')).toBe('/home/ana');
    expect(resolveDestination('~/tv-restore', undefined, '/home/ana')).toBe('/home/ana/tv-restore');
    expect(resolveDestination('~/a/../b/', undefined, '/home/ana')).toBe('/home/ana/b');
    expect(resolveDestination('/data/out', undefined, '/home/ana')).toBe('/data/out');
  });

  it('refuses a relative path where there is no current folder (the app), saying why', () => {
    expect(() => resolveDestination('rel-restore', undefined)).toThrow(
      /"rel-restore" is a relative path.*give a full path \(starting with \/ or ~\)/,
    );
    expect(() => resolveDestination('./x', undefined)).toThrow(/relative path/);
    expect(() => resolveDestination('~bob/x', undefined)).toThrow(/not ~user/);
    expect(() => resolveDestination('  ', undefined)).toThrow(/no destination folder/);
  });

  it('resolves a relative path against the current folder on the command line', () => {
    expect(resolveDestination('rel-restore', '/work/here')).toBe('/work/here/rel-restore');
    expect(resolveDestination('~/x', '/work/here', '/home/ana')).toBe('/home/ana/x');
    // A folder literally named ~old, as a shell passes it quoted: relative, not a user's home.
    expect(resolveDestination('~old', '/work/here')).toBe('/work/here/~old');
  });
});

describe('what a restore would write into, before it starts', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tv-destination-'));
    await mkdir(join(dir, 'empty'));
    await mkdir(join(dir, 'full'));
    await writeFile(join(dir, 'full', 'a'), 'x');
    await writeFile(join(dir, 'file'), 'x');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('names the absolute folder and whether it is new, empty or holds files, or why it cannot be used', async () => {
    expect(await describeDestination(join(dir, 'new', 'deeper'), undefined)).toEqual({
      input: join(dir, 'new', 'deeper'),
      path: join(dir, 'new', 'deeper'),
      state: 'new',
      problem: null,
    });
    expect(await describeDestination(join(dir, 'empty'), undefined)).toMatchObject({
      state: 'empty',
      problem: null,
    });
    // A folder holding files can be pulled into: only what differs from the version is written.
    expect(await describeDestination(join(dir, 'full'), undefined)).toMatchObject({
      path: join(dir, 'full'),
      state: 'files',
      problem: null,
    });
    expect((await describeDestination(join(dir, 'file'), undefined)).problem).toMatch(
      /is not a folder/,
    );
    expect(await describeDestination('relative', undefined)).toMatchObject({
      path: null,
      problem: expect.stringMatching(/relative path/),
    });
  });
});
