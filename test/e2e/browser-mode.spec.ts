import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { WebSocket as NodeWebSocket } from 'ws';
import { startServe, type ServeProcess } from './serve';

let serve: ServeProcess;
let dir: string;
test.beforeAll(async () => {
  // A repository of its own (never the user's data folder), so the app opens it and the server
  // sends events (cache status every second) beside the replies.
  dir = await mkdtemp(join(tmpdir(), 'tv-browser-'));
  const repo = join(dir, 'repo');
  const init = spawnSync(process.execPath, ['bin/tv.mjs', 'init'], {
    env: { ...process.env, TV_REPO: repo, TV_REDIS_URL: '' },
  });
  expect(init.status, String(init.stderr)).toBe(0);
  serve = await startServe({ TV_REPO: repo, TV_REDIS_URL: '' });
});
test.afterAll(async () => {
  await serve?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the app opens in a browser through the printed URL and talks to the API', async ({
  page,
}) => {
  await page.goto(serve.url);
  await expect(page.getByRole('heading', { name: 'TensorVault' })).toBeVisible();
  await expect(page.getByTestId('app-version')).toContainText('browser');
  await expect(page.getByTestId('repository')).toBeVisible();
  // The token moved into a cookie: it is not left in the address bar.
  expect(page.url()).not.toContain('token=');
  await page.screenshot({ path: 'test-results/screens/shell.png' });
});

test('a request without the token is refused', async ({ request }) => {
  const response = await request.get(`${serve.origin}/`);
  expect(response.status()).toBe(401);
  expect(await response.text()).toContain('token');
});

test('a path that is not valid percent-encoding is a bad request, not an internal error', async ({
  request,
}) => {
  const token = new URL(serve.url).searchParams.get('token') ?? '';
  const response = await request.get(`${serve.origin}/assets/%E0%A4%A?token=${token}`, {
    maxRedirects: 0,
  });
  // The token goes into a cookie first (303), then the path is read.
  expect(response.status()).toBe(303);
  const cookie = response.headers()['set-cookie']?.split(';')[0] ?? '';
  const bad = await request.get(`${serve.origin}/assets/%E0%A4%A`, { headers: { cookie } });
  expect(bad.status()).toBe(400);
  expect(await bad.text()).toBe('malformed path: not valid percent-encoding');
});

test('a WebSocket without the token, or from another origin, is refused', async ({ page }) => {
  await page.goto(serve.url);
  const results = await page.evaluate(async (origin) => {
    const attempt = (url: string) =>
      new Promise<string>((resolve) => {
        const ws = new WebSocket(url);
        ws.onopen = () => resolve('open');
        ws.onerror = () => resolve('refused');
      });
    // Same origin with the cookie: allowed. A wrong path is refused.
    return [
      await attempt(`${origin.replace('http', 'ws')}/api`),
      await attempt(`${origin.replace('http', 'ws')}/other`),
    ];
  }, serve.origin);
  expect(results).toEqual(['open', 'refused']);
  // The right token from a foreign page (another Origin) is still refused.
  const token = new URL(serve.url).searchParams.get('token') ?? '';
  const open = (origin: string) =>
    new Promise<string>((resolve) => {
      const ws = new NodeWebSocket(`${serve.origin.replace('http', 'ws')}/api?token=${token}`, {
        origin,
      });
      ws.on('open', () => {
        ws.close();
        resolve('open');
      });
      ws.on('error', () => resolve('refused'));
    });
  expect(await open('http://evil.example')).toBe('refused');
  expect(await open(serve.origin)).toBe('open');
});

test('a malformed API argument gets a clear error, not a crash', async ({ page }) => {
  await page.goto(serve.url);
  const replies = await page.evaluate(async (origin) => {
    const ws = new WebSocket(`${origin.replace('http', 'ws')}/api`);
    await new Promise((r) => (ws.onopen = r));
    // Events (cache status every second, progress) share the socket with replies: a reply is the
    // message with its request's id, whatever arrives between.
    const messages: { id?: number; event?: string }[] = [];
    const waiting: (() => void)[] = [];
    ws.onmessage = (m) => {
      messages.push(JSON.parse(String(m.data)) as { id?: number; event?: string });
      for (const wake of waiting.splice(0)) wake();
    };
    const until = async (found: () => boolean) => {
      while (!found()) await new Promise<void>((r) => waiting.push(r));
    };
    const reply = async (id: number) => {
      await until(() => messages.some((m) => m.id === id));
      return messages.find((m) => m.id === id);
    };
    // An event arrives between each request and the reading of its reply.
    const afterAnEvent = async (send: () => void) => {
      const seen = messages.length;
      send();
      await until(() => messages.slice(seen).some((m) => m.event !== undefined));
    };
    await afterAnEvent(() =>
      ws.send(JSON.stringify({ id: 7, method: 'appInfo', args: ['unexpected'] })),
    );
    const bad = await reply(7);
    await afterAnEvent(() => ws.send('not json'));
    const garbage = await reply(-1);
    await afterAnEvent(() => ws.send(JSON.stringify({ id: 8, method: 'appInfo', args: [] })));
    const good = await reply(8);
    ws.close();
    return { bad, garbage, good, events: messages.filter((m) => m.event).length };
  }, serve.origin);
  expect(replies.events).toBeGreaterThanOrEqual(3);
  expect(replies.bad).toEqual({
    id: 7,
    error: expect.stringContaining('appInfo: arguments'),
  });
  expect(replies.garbage).toEqual({ id: -1, error: 'malformed request: not JSON' });
  expect(replies.good).toMatchObject({ id: 8, result: { product: 'TensorVault' } });
});

test('a push that fails before any progress says why, and the message stays', async ({ page }) => {
  // A repository location that cannot be created: the push fails when it opens it.
  const failing = await startServe({ TV_REPO: '/dev/null/repo', TV_REDIS_URL: '' });
  try {
    await page.goto(failing.url);
    await page.getByRole('button', { name: 'New model' }).click();
    await page.getByLabel('Model name').fill('broken');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByTestId('file-input').setInputFiles({
      name: 'a.bin',
      mimeType: 'application/octet-stream',
      buffer: Buffer.alloc(10),
    });
    await page.getByRole('button', { name: 'Push broken' }).click();
    const progress = page.getByTestId('push-progress');
    await expect(progress).toContainText('Push failed');
    await expect(progress.locator('.error')).toContainText('/dev/null/repo');
    // Still there once the notification has gone.
    await page.waitForTimeout(7000);
    await expect(progress.locator('.error')).toBeVisible();
  } finally {
    await failing.stop();
  }
});
