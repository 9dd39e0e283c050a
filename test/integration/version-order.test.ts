import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, expect, it } from 'vitest';
import { Service } from '../../electron/engine/service';

const dir = await mkdtemp(join(tmpdir(), 'tv-order-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

it("a version lists its files in path order, whatever order the app's uploads came in", async () => {
  const service = new Service({
    repository: join(dir, 'repo'),
    redisUrl: undefined,
    mode: 'cli',
    filesCache: false,
  });
  try {
    const bytes = (text: string) => Buffer.from(text);
    const streamed = (path: string, text: string) => ({
      path,
      size: bytes(text).length,
      stream: () => Readable.from([bytes(text)]),
    });
    await writeFile(join(dir, 'model.bin'), Buffer.alloc(100_000, 7));
    const pushed = await service.push({
      model: 'm',
      files: [
        streamed('tokenizer.json', '{"vocab": {}}'),
        { path: 'model.bin', size: 100_000, file: join(dir, 'model.bin') },
        streamed('config.json', '{"layers": 2}'),
      ],
    });
    expect(pushed.version).toBe('v1');
    const listed = await service.files('m@v1');
    expect(listed.files.map((f) => f.path)).toEqual(['config.json', 'model.bin', 'tokenizer.json']);
  } finally {
    await service.close();
  }
});
