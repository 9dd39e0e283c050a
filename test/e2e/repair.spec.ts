import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { startServe, type ServeProcess } from './serve';

const shots = 'test-results/screens';
let serve: ServeProcess;
let dir: string;
let src: string;

test.beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tv-repair-'));
  src = join(dir, 'src');
  await mkdir(src);
  await writeFile(join(src, 'model.bin'), randomBytes(400_000));
  await writeFile(join(src, 'config.json'), '{"layers": 2}');
  const env = { ...process.env, TV_REPO: join(dir, 'repo'), TV_REDIS_URL: '' };
  const pushed = spawnSync(process.execPath, ['bin/tv.mjs', 'push', 'r', src], { env });
  expect(pushed.status, String(pushed.stderr)).toBe(0);
  serve = await startServe({ ...env, XDG_CACHE_HOME: join(dir, 'cache-app') });
});
test.afterAll(async () => {
  await serve?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Flips one bit of the first object in the repository's only pack. */
async function corruptThePack(): Promise<void> {
  const data = join(dir, 'repo', 'data');
  const [folder] = await readdir(data);
  const [pack] = await readdir(join(data, folder!));
  const handle = await open(join(data, folder!, pack!), 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, 8 + 100); // past the 8-byte header, in the first object
    byte[0] = byte[0]! ^ 0x01;
    await handle.write(byte, 0, 1, 8 + 100);
  } finally {
    await handle.close();
  }
}

test('a corrupt copy in a pack: a full verify finds it, the app drops it, a push that checks every chunk stores it again', async ({
  page,
}) => {
  await corruptThePack();
  await page.goto(serve.url);
  await page.getByRole('button', { name: /^r/ }).first().click();
  await expect(page.getByRole('heading', { name: 'r', exact: true })).toBeVisible();

  // A presence check passes: the object is there, only its bytes are wrong.
  await page.getByRole('button', { name: 'Verify r' }).click();
  const result = page.getByTestId('verify-result');
  await expect(result).toContainText('present');
  await page.getByLabel('read every byte back and check its hash').check();
  await page.getByRole('button', { name: 'Verify r' }).click();
  await expect(result).toContainText('✗ 1 object missing or corrupt in 1 version');
  await expect(result).toContainText('v1: model.bin');
  await page.getByRole('button', { name: 'Drop the corrupt copies' }).click();
  const repair = page.getByTestId('repair-result');
  await expect(repair).toContainText('Dropped 1 corrupt copy in 1 pack checked');
  await expect(repair).toContainText('r v1: model.bin');
  await page.screenshot({ path: `${shots}/repair.png`, fullPage: true });

  // The files again, every chunk checked: the dropped one is stored again, no version written.
  await page
    .getByTestId('file-input')
    .setInputFiles([join(src, 'model.bin'), join(src, 'config.json')]);
  await page.getByLabel(/Check every chunk/).check();
  await page.getByRole('button', { name: 'Push r' }).click();
  await expect(page.getByTestId('push-done')).toContainText('Identical to v1');
  await expect(page.getByLabel(/Check every chunk/)).not.toBeChecked();
  await page.getByRole('button', { name: 'Verify r' }).click();
  await expect(result).toContainText('✓ 1 version');
  await expect(result).toContainText('read back and checked');
});
