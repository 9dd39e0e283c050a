import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RestoreResult } from '../../shared/types';
import { Service } from '../../electron/engine/service';
import { seededBytes } from '../unit/prng';
import { s3Options, startServers, type TestServers } from './stores';
import { json, tv } from './tv';

let servers: TestServers;
let n = 0;
const fresh = (name: string) => join(servers.work.path, `${name}-${++n}`);
beforeAll(async () => {
  servers = await startServers('tv-partial-');
});
afterAll(() => servers?.stop());

async function folder(files: Record<string, Uint8Array | string>): Promise<string> {
  const dir = fresh('src');
  for (const [path, data] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), data);
  }
  return dir;
}

async function list(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

const model = {
  'model-00001.safetensors': seededBytes(1, 400_000),
  'model-00002.safetensors': seededBytes(2, 400_000),
  'tokenizer.json': '{"vocab": {}}',
  'tokenizer/merges.txt': 'a b',
  'config.json': '{"layers": 2}',
};

describe('partial pull', () => {
  it('--include and --exclude restore only the matching files, each verified', async () => {
    const env = { TV_REPO: fresh('repo') };
    expect((await tv(['push', 'm', await folder(model)], env)).code).toBe(0);
    const dest = fresh('out');
    const pulled = await tv(['pull', 'm', dest, '--include', 'tokenizer*', '--json'], env);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(json(pulled.stdout)).toMatchObject({ files: 2, filesWritten: 2 });
    expect(await list(dest)).toEqual(['tokenizer.json', 'tokenizer/merges.txt']);
    const weights = fresh('out');
    await tv(['pull', 'm', weights, '--include', '*.safetensors', '--exclude', '*-00002.*'], env);
    expect(await list(weights)).toEqual(['model-00001.safetensors']);
    expect(
      (await readFile(join(weights, 'model-00001.safetensors'))).equals(
        model['model-00001.safetensors'],
      ),
    ).toBe(true);
    const none = await tv(['pull', 'm', fresh('out'), '--include', '*.gguf'], env);
    expect(none.code).toBe(1);
    expect(none.stderr.trim()).toBe(
      "tv: no file of m@v1 matches --include '*.gguf' (its 5 files are listed by `tv ls m@v1`)",
    );
    expect(json((await tv(['ls', 'm', '--json'], env)).stdout)).toMatchObject({
      version: 'v1',
      files: [{ path: 'config.json', size: 13 }, { path: 'model-00001.safetensors' }, {}, {}, {}],
    });
  });

  it('the files ticked (exact paths) and nothing else; a path the version lacks is refused', async () => {
    const svc = new Service({
      repository: fresh('repo'),
      redisUrl: undefined,
      mode: 'cli',
      workers: 2,
    });
    try {
      await svc.push({ model: 'm', paths: [await folder(model)] });
      const dest = fresh('out');
      await svc.pull('m', dest, { paths: ['config.json', 'tokenizer/merges.txt'] });
      expect(await list(dest)).toEqual(['config.json', 'tokenizer/merges.txt']);
      await expect(svc.pull('m', fresh('out'), { paths: ['nope.bin'] })).rejects.toThrow(
        'm@v1 has no file "nope.bin"',
      );
    } finally {
      await svc.close();
    }
  });

  it('into a folder holding an older version: unchanged files are checked, not written; changed ones read what they share from there', async () => {
    const { s3, redis } = servers;
    const svc = new Service({
      repository: `s3://${s3.bucket}/partial-${++n}`,
      redisUrl: redis.url,
      s3: s3Options(s3),
      mode: 'cli',
      workers: 2,
    });
    try {
      const src = await folder(model);
      await svc.push({ model: 'm', paths: [src] });
      // v2: one shard fine-tuned in place (a few hundred bytes), one file added.
      const tuned = Buffer.from(model['model-00002.safetensors']);
      tuned.fill(9, 200_000, 200_300);
      await writeFile(join(src, 'model-00002.safetensors'), tuned);
      await writeFile(join(src, 'added.txt'), 'new');
      await svc.push({ model: 'm', paths: [src] });
      const dest = fresh('out');
      await svc.pull('m@v1', dest);
      await writeFile(join(dest, 'mine.txt'), 'not in any version');
      s3.resetCounts();
      const result: RestoreResult = await svc.pull('m@v2', dest);
      expect(result).toMatchObject({ files: 6, filesWritten: 2, filesUnchanged: 4 });
      // Only the chunks the destination lacked came from the bucket.
      expect(result.bytesFromDestination).toBeGreaterThan(250_000);
      const gets = s3.count('GET');
      expect(gets).toBeLessThan(10);
      expect(await list(dest)).toEqual([...Object.keys(model), 'added.txt', 'mine.txt'].sort());
      expect((await readFile(join(dest, 'model-00002.safetensors'))).equals(tuned)).toBe(true);
      expect(await readFile(join(dest, 'mine.txt'), 'utf8')).toBe('not in any version');
      // Again: nothing to write.
      expect(await svc.pull('m@v2', dest)).toMatchObject({ filesWritten: 0, filesUnchanged: 6 });
    } finally {
      await svc.close();
    }
  });

  it('a pull killed part way resumes: finished files are checked, the file it was writing is read from its temp', async () => {
    const repo = fresh('repo');
    const big = seededBytes(3, 96 << 20);
    const src = await folder({ 'a.txt': 'first', 'big.bin': big });
    expect((await tv(['push', 'm', src], { TV_REPO: repo })).code).toBe(0);
    const dest = fresh('out');
    const child = spawn(process.execPath, ['bin/tv.mjs', 'pull', 'm', dest], {
      env: { ...process.env, TV_REPO: repo, TV_REDIS_URL: '' },
      stdio: 'ignore',
    });
    const temp = join(dest, '.big.bin.tv-partial');
    for (let i = 0; i < 600; i++) {
      const size = await stat(temp).then(
        (s) => s.size,
        () => 0,
      );
      if (size > 16 << 20) break;
      await sleep(25);
    }
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    expect(await list(dest)).toContain('.big.bin.tv-partial');
    const resumed = json(
      (await tv(['pull', 'm', dest, '--json'], { TV_REPO: repo })).stdout,
    ) as RestoreResult;
    expect(resumed.filesWritten).toBeGreaterThanOrEqual(1);
    expect(resumed.bytesFromDestination).toBeGreaterThan(0);
    expect(await list(dest)).toEqual(['a.txt', 'big.bin']);
    expect((await readFile(join(dest, 'big.bin'))).equals(big)).toBe(true);
  });

  it('a pull stopped with Ctrl-C (cancelled) keeps the file it was writing as its temp, and resumes from it', async () => {
    const svc = new Service({
      repository: fresh('repo'),
      redisUrl: undefined,
      mode: 'cli',
      workers: 2,
    });
    try {
      const big = seededBytes(4, 64 << 20);
      await svc.push({ model: 'm', paths: [await folder({ 'big.bin': big })] });
      const dest = fresh('out');
      const controller = new AbortController();
      await expect(
        svc.pull('m', dest, {
          signal: controller.signal,
          onProgress: (p) => {
            if (p.bytesWritten > 8 << 20) controller.abort(new Error('pull cancelled'));
          },
        }),
      ).rejects.toThrow('pull cancelled (1 partly written; the same pull resumes from them)');
      expect(await list(dest)).toEqual(['.big.bin.tv-partial']);
      const resumed = await svc.pull('m', dest);
      expect(resumed.bytesFromDestination).toBeGreaterThan(8 << 20);
      expect(await list(dest)).toEqual(['big.bin']);
      expect((await readFile(join(dest, 'big.bin'))).equals(big)).toBe(true);
    } finally {
      await svc.close();
    }
  });
});
