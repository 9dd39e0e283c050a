import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Service } from '../../electron/engine/service';
import { seededBytes } from '../unit/prng';
import { tempDir } from './stores';
import { json, tv } from './tv';

let work: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  work = await tempDir('tv-update-');
});
afterAll(() => work?.remove());

let n = 0;
const fresh = (name: string) => join(work.path, `${name}-${++n}`);

function client(repo = fresh('repo')) {
  return new Service({
    repository: repo,
    redisUrl: undefined,
    mode: 'cli',
    workers: 2,
    filesCache: fresh('cache'),
  });
}

async function folder(files: Record<string, Uint8Array | string>): Promise<string> {
  const dir = fresh('src');
  for (const [path, data] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), data);
  }
  return dir;
}

async function tree(root: string, dir = root): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, e.name);
    if (e.isDirectory()) Object.assign(out, await tree(root, full));
    else out[full.slice(root.length + 1)] = (await readFile(full)).toString('base64').slice(0, 24);
  }
  return out;
}

const weights = seededBytes(1, 2_000_000);
const base = {
  'model.bin': weights,
  'config.json': '{"layers": 2}',
  'tok/vocab.json': '{"a": 1}',
  'tok/merges.txt': 'a b',
};

describe('updating a few files (--update, --remove)', () => {
  it('makes the parent plus the given files added or replaced, minus the removed ones', async () => {
    const src = await folder(base);
    const svc = client();
    try {
      await svc.push({ model: 'm', paths: [src] });
      const patch = await folder({ 'vocab.json': '{"a": 2}', 'extra.txt': 'new' });
      const updated = await svc.push({
        model: 'm',
        paths: [join(patch, 'vocab.json')],
        at: 'tok',
        update: { remove: [] },
      });
      expect(updated).toMatchObject({
        version: 'v2',
        files: 4,
        update: { replaced: ['tok/vocab.json'], added: [], removed: [], kept: 3 },
        reusedFromParentBytes: 2_000_000 + 13 + 3,
      });
      const removed = await svc.push({
        model: 'm',
        paths: [join(patch, 'extra.txt')],
        update: { remove: ['tok'] },
      });
      expect(removed.update).toEqual({
        added: ['extra.txt'],
        replaced: [],
        unchanged: [],
        removed: ['tok/merges.txt', 'tok/vocab.json'],
        kept: 2,
      });
      const dest = fresh('out');
      await svc.pull('m@v3', dest);
      expect(await tree(dest)).toEqual(
        await tree(
          await folder({
            'model.bin': weights,
            'config.json': '{"layers": 2}',
            'extra.txt': 'new',
          }),
        ),
      );
      const v2 = fresh('out');
      await svc.pull('m@v2', v2);
      expect(await readFile(join(v2, 'tok/vocab.json'), 'utf8')).toBe('{"a": 2}');
      expect(await readFile(join(v2, 'tok/merges.txt'), 'utf8')).toBe('a b');
      // The same file again: identical, no version.
      const same = await svc.push({
        model: 'm',
        paths: [join(patch, 'extra.txt')],
        update: { remove: [] },
      });
      expect(same).toMatchObject({ created: false, identicalTo: { version: 'v3' } });
    } finally {
      await svc.close();
    }
  });

  it("says which given files are identical to the parent's: unchanged, in the summary and in --json", async () => {
    const src = await folder(base);
    const patch = await folder({ 'extra.txt': 'new' });
    const env = { TV_REPO: fresh('repo'), XDG_CACHE_HOME: fresh('xdg') };
    expect((await tv(['push', 'm', src], env)).code).toBe(0);
    const args = ['push', 'm', join(src, 'config.json'), join(patch, 'extra.txt'), '--update'];
    const pushed = await tv(args, env);
    expect(pushed.code, pushed.stderr).toBe(0);
    expect(pushed.stdout).toContain(
      '  added extra.txt; unchanged config.json; kept 3 files of the previous version',
    );
    const again = await tv([...args, '--allow-same', '--json'], env);
    expect((json(again.stdout) as { update: unknown }).update).toEqual({
      added: [],
      replaced: [],
      unchanged: ['config.json', 'extra.txt'],
      removed: [],
      kept: 3,
    });
  });

  it('refuses a removal of nothing, or of a file it also adds, before reading anything', async () => {
    const src = await folder(base);
    const svc = client();
    try {
      await svc.push({ model: 'm', paths: [src] });
      await expect(
        svc.push({ model: 'm', paths: [], update: { remove: ['nothere.bin'] } }),
      ).rejects.toThrow(
        'nothing to remove at "nothere.bin": m@v1 has no such file or folder (`tv ls m@v1` lists its files)',
      );
      await expect(
        svc.push({
          model: 'm',
          paths: [join(src, 'config.json')],
          update: { remove: ['config.json'] },
        }),
      ).rejects.toThrow('"config.json" is both given and removed');
      await expect(
        svc.push({
          model: 'm',
          paths: [join(src, 'config.json')],
          at: '../up',
          update: { remove: [] },
        }),
      ).rejects.toThrow('--at "../up" is not a folder inside the version');
      expect((await svc.log('m')).map((v) => v.label)).toEqual(['v1']);
    } finally {
      await svc.close();
    }
  });

  it('on a model with no version, an update is a first version of the given files', async () => {
    const src = await folder({ 'a.txt': 'a' });
    const svc = client();
    try {
      const first = await svc.push({
        model: 'm',
        paths: [join(src, 'a.txt')],
        update: { remove: [] },
      });
      expect(first).toMatchObject({
        version: 'v1',
        files: 1,
        update: { added: ['a.txt'], kept: 0 },
      });
    } finally {
      await svc.close();
    }
  });
});

describe('status and push --dry-run', () => {
  it('shows added, removed, modified and unchanged files and the new bytes a push would upload, writing nothing', async () => {
    const src = await folder(base);
    const repo = fresh('repo');
    const svc = client(repo);
    try {
      await svc.push({ model: 'm', paths: [src] });
      await writeFile(join(src, 'tok/vocab.json'), '{"a": 3}');
      await writeFile(join(src, 'new.bin'), seededBytes(2, 300_000));
      await rm(join(src, 'tok/merges.txt'));
      const objects = async () => (await readdir(repo, { recursive: true })).sort();
      const before = await objects();
      const status = await svc.status({ model: 'm', paths: [src] });
      expect(status).toMatchObject({
        model: 'm',
        against: { version: 'v1' },
        added: 1,
        removed: 1,
        modified: 1,
        unchanged: 2,
        identical: false,
        newBytes: 300_000 + 8,
      });
      expect(status.files.map((f) => [f.status, f.path])).toEqual([
        ['modified', 'tok/vocab.json'],
        ['added', 'new.bin'],
        ['removed', 'tok/merges.txt'],
        ['unchanged', 'config.json'],
        ['unchanged', 'model.bin'],
      ]);
      expect(await objects()).toEqual(before);
      expect((await svc.log('m')).length).toBe(1);
      // What the push then uploads is what status said.
      const pushed = await svc.push({ model: 'm', paths: [src] });
      expect(pushed.newBytes).toBe(status.newBytes);
      // Against an older version.
      const againstV1 = await svc.status({ model: 'm', paths: [src], against: 'm@v1' });
      expect(againstV1.against?.version).toBe('v1');
      expect((await svc.status({ model: 'm', paths: [src] })).identical).toBe(true);
    } finally {
      await svc.close();
    }
  });

  it('tv status MODEL compares the folder last pushed from here; push --dry-run says the same', async () => {
    const src = await folder(base);
    const env = { TV_REPO: fresh('repo'), XDG_CACHE_HOME: fresh('xdg') };
    expect((await tv(['push', 'm', src], env)).code).toBe(0);
    const none = await tv(['status', 'other'], env);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('give the files or folder to compare');
    await sleep(1100);
    await writeFile(join(src, 'config.json'), '{"layers": 3}');
    const status = json((await tv(['status', 'm', '--json'], env)).stdout) as {
      sources: string[];
      modified: number;
      filesFromCache: number;
    };
    expect(status).toMatchObject({ sources: [src], modified: 1 });
    const text = await tv(['status', 'm', src], env);
    const dry = await tv(['push', 'm', src, '--dry-run'], env);
    const strip = (s: string) => s.replace(/; [\d.]+ s$/m, '');
    expect(strip(dry.stdout)).toBe(strip(text.stdout));
    expect(text.stdout).toContain('modified  config.json');
    expect(text.stdout).toContain('a push would upload 13 B of new chunks (1 chunk)');
    expect((json((await tv(['log', 'm', '--json'], env)).stdout) as unknown[]).length).toBe(1);
  });
});
