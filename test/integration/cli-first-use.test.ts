import { access, mkdir, open, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededBytes } from '../unit/prng';
import { tempDir } from './stores';
import { json, tv, tvOnTerminal } from './tv';

/**
 * What a first-time user meets at the command line, each run as a person runs `tv`: unknown
 * models and selectors, a destination that cannot be made, a damaged chunk, a push of content
 * already stored, a report that agrees with the push and stays the same after `tv rm` and `tv gc`,
 * counts and durations in words.
 */
let work: { path: string; remove(): Promise<void> };
let src: string;
let n = 0;
/** The environment of a new repository. */
const fresh = () => ({ TV_REPO: join(work.path, `repo-${++n}`) });
const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

beforeAll(async () => {
  work = await tempDir('tv-first-use-');
  src = join(work.path, 'model');
  await mkdir(src);
  await writeFile(join(src, 'weights.bin'), seededBytes(21, 1_500_000));
  await writeFile(join(src, 'config.json'), '{"layers": 2}');
});
afterAll(() => work?.remove());

/** Writes `src` with its weights changed in one stretch (a fine-tune of one layer). */
async function tuned(dir: string, seed: number): Promise<string> {
  await mkdir(dir, { recursive: true });
  const bytes = Buffer.from(seededBytes(21, 1_500_000));
  Buffer.from(seededBytes(seed, 200_000)).copy(bytes, 600_000);
  await writeFile(join(dir, 'weights.bin'), bytes);
  await writeFile(join(dir, 'config.json'), '{"layers": 2}');
  return dir;
}

describe('an unknown model is an error for every command', () => {
  it('exits 1 with one line naming the model, for log, verify, report, diff, rm, pull', async () => {
    const env = fresh();
    expect((await tv(['push', 'known', src], env)).code).toBe(0);
    for (const args of [
      ['log', 'nosuch'],
      ['verify', 'nosuch'],
      ['report', 'nosuch'],
      ['diff', 'nosuch@v1', 'known@v1'],
      ['diff', 'known@v1', 'nosuch@v1'],
      ['rm', 'nosuch'],
      ['rm', 'nosuch@v1'],
      ['pull', 'nosuch', join(work.path, 'never')],
    ]) {
      const r = await tv(args, env);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr.trim(), args.join(' ')).toMatch(/^tv: model "nosuch" has no versions in /);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      const asJson = await tv([...args, '--json'], env);
      expect(json(asJson.stdout), args.join(' ')).toEqual({
        error: expect.stringContaining('model "nosuch" has no versions'),
      });
    }
    expect(await exists(join(work.path, 'never'))).toBe(false);
  });

  it('a model whose versions were all removed says so', async () => {
    const env = fresh();
    expect((await tv(['push', 'gone', src], env)).code).toBe(0);
    expect((await tv(['rm', 'gone'], env)).code).toBe(0);
    const r = await tv(['log', 'gone'], env);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^tv: model "gone" has no versions: its 1 version was removed/);
  });
});

describe('selectors', () => {
  it('MODEL@ (nothing after the @) is an error, never the latest version', async () => {
    const env = fresh();
    expect((await tv(['push', 'm', src], env)).code).toBe(0);
    for (const args of [
      ['pull', 'm@', join(work.path, 'empty-selector')],
      ['report', 'm@'],
      ['verify', 'm@'],
      ['rm', 'm@'],
    ]) {
      const r = await tv(args, env);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr.trim(), args.join(' ')).toBe(
        'tv: "m@" names no version: after the @ give vN, latest or a version id prefix (see `tv log m`)',
      );
    }
    // Nothing was removed by `tv rm m@`.
    expect(json((await tv(['log', 'm', '--json'], env)).stdout)).toHaveLength(1);
  });

  it('a removed version says it was removed, when and by whom, by number and by id', async () => {
    const env = fresh();
    const v1 = json((await tv(['push', 'm', src, '--json'], env)).stdout) as { id: string };
    expect((await tv(['push', 'm', await tuned(join(work.path, 'rm-v2'), 5)], env)).code).toBe(0);
    expect((await tv(['rm', 'm@v1'], env)).code).toBe(0);
    for (const selector of ['m@v1', `m@${v1.id.slice(0, 8)}`]) {
      const r = await tv(['pull', selector, join(work.path, 'removed-out')], env);
      expect(r.code, selector).toBe(1);
      expect(r.stderr.trim(), selector).toMatch(
        new RegExp(
          `^tv: m v1 \\(${v1.id.slice(0, 12)}\\) was removed on \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC by [^ ]+@[^ ]+ \\(tv rm\\); its data stays until tv gc reclaims it$`,
        ),
      );
    }
    // A number that never existed names the versions there are.
    const never = await tv(['report', 'm@v9'], env);
    expect(never.stderr.trim()).toBe('tv: model "m" has no version v9 (it has v2; see `tv log m`)');
  });

  it('a tombstone written by an earlier version (its body the bare id) still reads', async () => {
    const env = fresh();
    const v1 = json((await tv(['push', 'm', src, '--json'], env)).stdout) as { id: string };
    expect((await tv(['push', 'm', await tuned(join(work.path, 'old-v2'), 6)], env)).code).toBe(0);
    const refs = join(env.TV_REPO, 'refs', 'm');
    const ref = (await readdir(refs)).find((name) => name.endsWith(v1.id)) as string;
    await writeFile(join(refs, `${ref}.removed`), v1.id);
    const r = await tv(['pull', 'm@v1', join(work.path, 'old-tombstone-out')], env);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      `tv: m v1 (${v1.id.slice(0, 12)}) was removed (tv rm; when and by whom were not recorded); its data stays until tv gc reclaims it`,
    );
    expect(json((await tv(['log', 'm', '--json'], env)).stdout)).toMatchObject([{ label: 'v2' }]);
  });
});

describe('pull destinations', () => {
  it('a quoted ~/x lands in the home folder, not in a folder named ~', async () => {
    const env = fresh();
    const home = join(work.path, 'home-of-pull');
    await mkdir(home, { recursive: true });
    expect((await tv(['push', 'm', src], env)).code).toBe(0);
    const r = await tv(['pull', 'm', '~/restored', '--json'], { ...env, HOME: home });
    expect(r.code, r.stderr).toBe(0);
    expect(json(r.stdout)).toMatchObject({ destination: join(home, 'restored') });
    expect(await exists(join(home, 'restored'))).toBe(true);
    expect(await exists('~')).toBe(false);
  });

  it('a destination that cannot be created fails at once with one line (no spinning in mkdir)', async () => {
    const env = fresh();
    expect((await tv(['push', 'm', src], env)).code).toBe(0);
    for (const dest of ['/proc/forbidden', '/proc/forbidden/deeper/still']) {
      const r = await tv(['pull', 'm', dest], env, 15_000);
      expect(r.code, dest).toBe(1);
      expect(r.stderr.trim(), dest).toBe(
        `tv: cannot create ${dest}: /proc does not allow new folders in it`,
      );
    }
    const file = join(work.path, 'a-file');
    await writeFile(file, 'x');
    const under = await tv(['pull', 'm', join(file, 'sub')], env);
    expect(under.code).toBe(1);
    expect(under.stderr.trim()).toBe(
      `tv: cannot create ${join(file, 'sub')}: ${file} is a file, not a folder`,
    );
  });
});

describe('a damaged chunk', () => {
  it('a refused pull suggests `tv verify --full` (plain verify checks presence), and leaves no folder behind', async () => {
    const env = fresh();
    expect((await tv(['push', 'm', src], env)).code).toBe(0);
    const packs = join(env.TV_REPO, 'packs');
    const pack = (await readdir(packs)).find((f) => f.endsWith('.pack')) as string;
    const handle = await open(join(packs, pack), 'r+');
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, 5000);
    byte[0] = (byte[0] as number) ^ 0xff;
    await handle.write(byte, 0, 1, 5000);
    await handle.close();

    const dest = join(work.path, 'damaged', 'deeper', 'out');
    const pulled = await tv(['pull', 'm', dest], env);
    expect(pulled.code).toBe(1);
    expect(pulled.stderr.trim().split('\n')).toHaveLength(1);
    expect(pulled.stderr).toMatch(/chunk [0-9a-f]{64} .* is corrupt/);
    expect(pulled.stderr).toContain('`tv verify --full`');
    expect(await exists(join(work.path, 'damaged'))).toBe(false);
    expect((await tv(['verify', 'm'], env)).code).toBe(0);
    const full = await tv(['verify', 'm', '--full'], env);
    expect(full.code).toBe(1);
    expect(full.stdout).toMatch(/^DAMAGED: 1 of \d+ objects missing or corrupt/);
  });
});

describe('pushing what the latest version holds already', () => {
  it('says "identical to vN", makes no version, and --allow-same makes one', async () => {
    const env = fresh();
    const first = json((await tv(['push', 'm', src, '--json'], env)).stdout) as { id: string };
    const again = await tv(['push', 'm', src, '-m', 'again'], env);
    expect(again.code).toBe(0);
    expect(again.stdout.trim()).toBe(
      `m: identical to v1 (${first.id.slice(0, 12)}): no new version written (--allow-same writes one)`,
    );
    const asJson = json((await tv(['push', 'm', src, '--json'], env)).stdout);
    expect(asJson).toMatchObject({
      model: 'm',
      created: false,
      identicalTo: { version: 'v1', id: first.id },
      version: 'v1',
      id: first.id,
      newBytes: 0,
      dedupRatio: null,
    });
    expect(json((await tv(['log', 'm', '--json'], env)).stdout)).toHaveLength(1);

    const allowed = json((await tv(['push', 'm', src, '--allow-same', '--json'], env)).stdout);
    expect(allowed).toMatchObject({ version: 'v2', created: true, identicalTo: null });
    // A different message alone is no change either (as git refuses an empty commit).
    const renamed = await tv(['push', 'm', src, '-m', 'new words'], env);
    expect(renamed.stdout).toContain('identical to v2');
  });
});

describe('the report agrees with the push and stays the same', () => {
  type Figures = {
    version?: { label: string };
    newBytes: number;
    newChunks: number;
    logicalBytes: number;
    metadataBytes?: number;
    dedupRatio: number | null;
    reusedFromParentBytes: number;
  };

  it('push, log and report give one dedup ratio (logical / new chunk bytes) and the same new bytes', async () => {
    const env = fresh();
    expect((await tv(['push', 'm', src], env)).code).toBe(0);
    const pushed = json(
      (await tv(['push', 'm', await tuned(join(work.path, 'agree-v2'), 7), '--json'], env)).stdout,
    ) as Figures;
    expect(pushed.newBytes).toBeGreaterThan(0);
    const ratio = Math.round((pushed.logicalBytes / pushed.newBytes) * 100) / 100;
    expect(pushed.dedupRatio).toBe(ratio);
    const log = json((await tv(['log', 'm', '--json'], env)).stdout) as {
      dedupRatio: number;
      stats: Figures;
    }[];
    expect(log[1]).toMatchObject({ dedupRatio: ratio, stats: { newBytes: pushed.newBytes } });
    const report = json((await tv(['report', 'm@v2', '--json'], env)).stdout) as Figures;
    expect(report).toMatchObject({
      newBytes: pushed.newBytes,
      newChunks: pushed.newChunks,
      dedupRatio: ratio,
      reusedFromParentBytes: pushed.reusedFromParentBytes,
    });
    const human = (await tv(['report', 'm@v2'], env)).stdout;
    expect(human).toContain(`dedup ${ratio.toFixed(2)}x`);
    expect(human).toMatch(/manifests/);
  });

  it('a version that stored no new bytes shows "nothing new", not a ratio', async () => {
    const env = fresh();
    expect((await tv(['push', 'm', src], env)).code).toBe(0);
    // The same files as another model: every chunk is stored already.
    const same = await tv(['push', 'copy', src], env);
    expect(same.stdout).toContain('dedup: nothing new');
    expect((await tv(['log', 'copy'], env)).stdout.split('\n')[2]).toContain('nothing new');
    const report = await tv(['report', 'copy'], env);
    expect(report.stdout.split('\n')[0]).toContain('dedup: nothing new');
    // A tiny file: its 1 chunk is new, so the ratio is 1.00x (manifests are counted apart).
    await writeFile(join(work.path, 'tiny.txt'), 'hi\n');
    const tiny = json(
      (await tv(['push', 'tiny', join(work.path, 'tiny.txt'), '--json'], env)).stdout,
    ) as Figures;
    expect(tiny.dedupRatio).toBe(1);
  });

  it('the report of a version keeps its figures after its parent is removed, and says so; after gc it says no comparison is possible', async () => {
    const env = fresh();
    expect((await tv(['push', 'm', src], env)).code).toBe(0);
    expect((await tv(['push', 'm', await tuned(join(work.path, 'stable-v2'), 8)], env)).code).toBe(
      0,
    );
    const before = json((await tv(['report', 'm@v2', '--json'], env)).stdout) as Figures & {
      files: unknown;
      parent: unknown;
      cached: boolean;
    };
    expect(before.parent).toMatchObject({ label: 'v1', state: 'live' });
    expect((await tv(['rm', 'm@v1'], env)).code).toBe(0);
    const after = json((await tv(['report', 'm@v2', '--json'], env)).stdout) as typeof before;
    // The second report is read from this machine's copy (cached); its figures are the first's.
    expect(after.cached).toBe(true);
    expect({ ...after, parent: null, version: null, cached: null }).toEqual({
      ...before,
      parent: null,
      version: null,
      cached: null,
    });
    expect(after.parent).toMatchObject({
      label: 'v1',
      state: 'removed',
      removedBy: expect.stringContaining('@'),
    });
    expect((await tv(['report', 'm@v2'], env)).stdout).toMatch(
      /compared with v1 \([0-9a-f]{12}\), removed on \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC by /,
    );

    expect((await tv(['gc', '--grace', '0'], env)).code).toBe(0);
    const collected = json((await tv(['report', 'm@v2', '--json'], env)).stdout) as typeof before;
    expect(collected).toMatchObject({
      newBytes: before.newBytes,
      dedupRatio: before.dedupRatio,
      parent: { label: 'v1', state: 'collected' },
    });
    expect((await tv(['report', 'm@v2'], env)).stdout).toContain(
      'v1, the version it was pushed on, was removed and gc has reclaimed it: no comparison with it is possible',
    );
  });
});

describe('words and units', () => {
  it('init --chunk-size names the size the user typed', async () => {
    const r = await tv(['init', '--chunk-size', '3KiB'], fresh());
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      'tv: --chunk-size 3KiB is not a power of two from 256 B to 256 MiB (e.g. 16KiB, 64KiB, 1MiB)',
    );
  });

  it('gc shows durations as --grace takes them', async () => {
    const env = fresh();
    expect((await tv(['push', 'm', src], env)).code).toBe(0);
    expect((await tv(['push', 'm', await tuned(join(work.path, 'gc-v2'), 9)], env)).code).toBe(0);
    expect((await tv(['rm', 'm@v1'], env)).code).toBe(0);
    expect((await tv(['gc'], env)).stdout).toContain('wait out the 24h grace period');
    expect((await tv(['gc', '--grace', '90m'], env)).stdout).toContain(
      'wait out the 90m grace period',
    );
    expect((await tv(['gc', '--help'], env)).stdout).toContain('(default: 24h)');
  });

  it('one of a thing is singular: 1 file, 1 chunk, 1 version', async () => {
    const env = fresh();
    await writeFile(join(work.path, 'one.txt'), 'one\n');
    const pushed = await tv(['push', 'one', join(work.path, 'one.txt')], env);
    expect(pushed.stdout).toMatch(
      /^one v1 \([0-9a-f]{12}\): 1 file, 4 B\n {2}new 4 B in 1 of 1 chunk,/,
    );
    const verified = await tv(['verify'], env);
    expect(verified.stdout).toMatch(/^ok: 1 version, 3 objects present/);
    const report = await tv(['report', 'one'], env);
    expect(report.stdout).toMatch(/4 B in 1 file,/);
    expect(report.stdout).toMatch(/new 4 B \(1 of 1 chunk\)/);
    expect((await tv(['gc', '--dry-run'], env)).stdout).toContain('1 live version needs 3 objects');
    const pulled = await tv(['pull', 'one', join(work.path, 'one-out')], env);
    expect(pulled.stdout).toMatch(/^one v1: 1 file, 4 B written to /);
  });
});

describe('progress on a terminal', () => {
  it('shows no ETA before the rate is measured over a second', async () => {
    const env = fresh();
    const big = join(work.path, 'big');
    await mkdir(big);
    await writeFile(join(big, 'weights.bin'), seededBytes(99, 48_000_000));
    const pushed = await tvOnTerminal(['push', 'big', big], env);
    expect(pushed.code).toBe(0);
    const etas = [...pushed.output.matchAll(/ETA (\d+)s/g)].map((m) => Number(m[1]));
    // Every ETA shown is a plausible one (this push takes seconds, not days).
    for (const eta of etas) expect(eta).toBeLessThan(600);
    expect(pushed.output).not.toContain('ETA -');
  });
});

describe('--json keeps its fields', () => {
  it('push --json has every field it had, plus the new ones', async () => {
    const env = fresh();
    const r = json((await tv(['push', 'm', src, '--json'], env)).stdout) as Record<string, unknown>;
    for (const key of [
      'model',
      'version',
      'number',
      'id',
      'shortId',
      'files',
      'logicalBytes',
      'newBytes',
      'reusedBytes',
      'reusedFromParentBytes',
      'chunks',
      'newChunks',
      'metadataBytes',
      'seconds',
      'dedupRatio',
      'createdRepository',
      'skipped',
      'created',
      'identicalTo',
    ])
      expect(r, key).toHaveProperty(key);
    expect(await readFile(join(env.TV_REPO, 'config'), 'utf8')).toContain('repositoryId');
  });
});
