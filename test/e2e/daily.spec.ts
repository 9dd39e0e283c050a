import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { startServe, type ServeProcess } from './serve';

const shots = 'test-results/screens';
let serve: ServeProcess;
let dir: string;
let env: NodeJS.ProcessEnv;

/** Runs `tv` against the test repository (a teammate's process, or setup). */
function tv(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/tv.mjs', ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test.beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tv-daily-'));
  env = {
    ...process.env,
    TV_REPO: join(dir, 'repo'),
    TV_REDIS_URL: '',
    XDG_CACHE_HOME: join(dir, 'cache-teammate'),
  };
  const v1 = join(dir, 'v1');
  await mkdir(join(v1, 'tok'), { recursive: true });
  await writeFile(join(v1, 'model.bin'), Buffer.alloc(200_000, 7));
  await writeFile(join(v1, 'config.json'), '{"layers": 2}');
  await writeFile(join(v1, 'tok', 'vocab.json'), '{"a": 1}');
  const pushed = spawnSync(process.execPath, ['bin/tv.mjs', 'push', 'm', v1, '-m', 'base'], {
    env,
  });
  expect(pushed.status, String(pushed.stderr)).toBe(0);
  serve = await startServe({ ...env, XDG_CACHE_HOME: join(dir, 'cache-app') });
});
test.afterAll(async () => {
  await serve?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function open(page: Page): Promise<void> {
  await page.goto(serve.url);
  await page.getByRole('button', { name: /^m/ }).first().click();
  await expect(page.getByRole('heading', { name: 'm', exact: true })).toBeVisible();
}

/** A synthetic drop of files (name and text) onto the model's drop zone. */
async function drop(page: Page, files: Record<string, string>): Promise<void> {
  await page.getByTestId('dropzone').evaluate((zone, given) => {
    const transfer = new DataTransfer();
    for (const [name, text] of Object.entries(given)) transfer.items.add(new File([text], name));
    zone.dispatchEvent(
      new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }),
    );
  }, files);
}

test('dropped files: status, the update choice, tags, and a restore of ticked files', async ({
  page,
}) => {
  await open(page);
  // One file dropped: by default it updates the latest version, replacing tok/vocab.json.
  await drop(page, { 'vocab.json': '{"a": 2}' });
  const choice = page.getByTestId('push-choice');
  await expect(choice.getByLabel('Update this file in v1')).toBeChecked();
  await expect(page.getByTestId('update-targets')).toContainText(
    'vocab.json → replaces tok/vocab.json',
  );
  const preview = page.getByTestId('push-preview');
  await expect(preview).toHaveText(
    "Pushing makes a new version of m: v1's 3 files with 1 file replaced; its other files stay as they are.",
  );
  const status = page.getByTestId('push-status');
  await expect(status).toContainText('Against v1: 1 modified · 0 added · 0 removed · 2 unchanged');
  await expect(status).toContainText('a push would upload 8 B');
  await page.screenshot({ path: `${shots}/drop-update.png`, fullPage: true });
  // The other choice: a version of this file only (the others would be removed).
  await choice.getByLabel('New version of only this file').check();
  await expect(status).toContainText('0 modified · 1 added · 3 removed · 0 unchanged');
  await expect(preview).toHaveText(
    'Pushing makes a new version of m with only this file (its latest, v1, has 3 files).',
  );
  await choice.getByLabel('Update this file in v1').check();
  await expect(status).toContainText('1 modified');
  await page.getByLabel('Message').fill('new vocab');
  await page.getByRole('button', { name: 'Push m' }).click();
  await expect(page.getByTestId('push-done')).toContainText('v2 written');
  // An update reads only its file: the done line says what was read, and the reuse is on the
  // result line, not a live "0% deduplicated".
  await expect(page.getByTestId('push-progress')).toContainText('Push done · 8 B read · ');
  await expect(page.getByTestId('push-progress')).not.toContainText('deduplicated');
  await expect(page.getByTestId('push-done')).toContainText('reused');
  await expect(page.getByTestId('timeline').locator('li')).toHaveCount(2);
  // The restore panel follows the latest version until one is picked.
  await expect(page.getByLabel('Version to restore')).toHaveValue('v2');

  // Tags: set on v1, move to v2, delete.
  await page.getByRole('button', { name: 'Tag v1' }).click();
  // A name a selector reads otherwise is refused as it is typed, and what was typed stays.
  await page.getByLabel('Tag name for v1').fill('v2');
  await expect(page.getByTestId('tag-problem')).toHaveText(
    '"v2" cannot be a tag: MODEL@v2 already means a version (latest, vN); choose another name',
  );
  await expect(page.getByRole('button', { name: 'Set tag' })).toBeDisabled();
  await expect(page.getByLabel('Tag name for v1')).toHaveValue('v2');
  await page.getByLabel('Tag name for v1').fill('prod');
  await expect(page.getByTestId('tag-problem')).toHaveCount(0);
  await page.getByRole('button', { name: 'Set tag' }).click();
  await expect(page.getByTestId('tags-v1')).toContainText('prod');
  await page.getByRole('button', { name: 'Tag v2' }).click();
  await page.getByLabel('Tag name for v2').fill('prod');
  await page.getByRole('button', { name: 'Set tag' }).click();
  await expect(page.getByTestId('tags-v2')).toContainText('prod');
  await expect(page.getByTestId('tags-v1')).not.toContainText('prod');
  await expect(
    page.getByRole('status').filter({ hasText: 'prod moved from v1 to v2' }),
  ).toBeVisible();
  await page.screenshot({ path: `${shots}/tags.png`, fullPage: true });
  // In a narrow window each version's figures stay on one line, under its name.
  await page.setViewportSize({ width: 900, height: 900 });
  for (const figures of await page.getByTestId('timeline').locator('.figures').all())
    expect((await figures.boundingBox())!.height).toBeLessThan(30);
  await page.screenshot({ path: `${shots}/narrow.png`, fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });
  // Deleting asks first: dismissed, the tag stays; accepted, it goes.
  let question = '';
  page.once('dialog', (dialog) => {
    question = dialog.message();
    void dialog.dismiss();
  });
  await page.getByRole('button', { name: 'Delete tag prod' }).click();
  await expect.poll(() => question).toContain('Delete the tag prod of m?');
  await expect(page.getByTestId('tags-v2')).toContainText('prod');
  page.once('dialog', (dialog) => void dialog.accept());
  await page.getByRole('button', { name: 'Delete tag prod' }).click();
  await expect(page.getByTestId('tags-v2')).not.toContainText('prod');

  // Restore only the ticked file of v2.
  await page.getByLabel('Version to restore').selectOption('v2');
  const picks = page.getByTestId('restore-files');
  await picks.locator('summary').click();
  await picks.getByRole('button', { name: 'none' }).click();
  await picks.getByLabel('tok/vocab.json').check();
  await expect(picks.locator('summary')).toContainText('1 of 3 files');
  const dest = join(dir, 'restored');
  await page.getByLabel('Destination folder').fill(dest);
  await expect(page.getByTestId('restore-target')).toHaveText(
    `Writes m@v2 (1 of 3 files) into ${dest} (a new folder).`,
  );
  await page.getByRole('button', { name: 'Restore', exact: true }).click();
  await expect(page.getByTestId('restore-done')).toContainText('1 file');
  await page.screenshot({ path: `${shots}/restore-ticked.png`, fullPage: true });
  expect(await readdir(dest, { recursive: true })).toEqual(['tok', 'tok/vocab.json']);
  expect(await readFile(join(dest, 'tok', 'vocab.json'), 'utf8')).toBe('{"a": 2}');

  // All of v2 into the same folder: the file already there is checked and kept, and the line
  // says how many were written.
  await picks.getByRole('button', { name: 'all' }).click();
  await page.getByLabel('Destination folder').fill(dest);
  await expect(page.getByTestId('restore-target')).toContainText(
    "(a folder holding files: the version's files already there are checked and kept where they match, replaced where they differ",
  );
  await page.getByRole('button', { name: 'Restore', exact: true }).click();
  await expect(page.getByTestId('restore-done')).toContainText(`3 files`);
  await expect(page.getByTestId('restore-done')).toContainText(
    `in ${dest}: 2 written, 1 already there (8 B, checked)`,
  );
});

test("a teammate's push shows up without a reload, with who pushed it", async ({ page }) => {
  test.setTimeout(90_000);
  await open(page);
  const before = await page.getByTestId('timeline').locator('li').count();
  const v3 = join(dir, 'v3');
  await mkdir(v3);
  await writeFile(join(v3, 'model.bin'), Buffer.alloc(200_000, 9));
  const pushed = await tv(['push', 'm', v3, '-m', 'from a teammate']);
  expect(pushed.code, pushed.stderr).toBe(0);
  // The page looks every ~15 s while it is visible.
  await expect(page.getByTestId('timeline')).toContainText('from a teammate', { timeout: 30_000 });
  await expect(page.getByTestId('timeline').locator('li')).toHaveCount(before + 1);
  await expect(page.getByTestId('fresh-version')).toContainText('new from');
  await expect(page.getByRole('status').filter({ hasText: /pushed m v\d/ })).toBeVisible();
  await page.screenshot({ path: `${shots}/teammate.png`, fullPage: true });
  // Elsewhere in the app (Settings), a teammate's push is a notice; the page stays where it is.
  await page.getByRole('button', { name: 'Settings' }).click();
  await expect(page.getByTestId('settings-readonly')).toBeVisible();
  const v4 = join(dir, 'v4');
  await mkdir(v4);
  await writeFile(join(v4, 'model.bin'), Buffer.alloc(200_000, 4));
  const again = await tv(['push', 'm', v4, '-m', 'again from a teammate', '--json']);
  expect(again.code, again.stderr).toBe(0);
  const { version } = JSON.parse(again.stdout) as { version: string };
  await expect(page.getByRole('status').filter({ hasText: `pushed m ${version}` })).toBeVisible({
    timeout: 30_000,
  });
  await expect(page.getByTestId('settings-readonly')).toBeVisible();
});
