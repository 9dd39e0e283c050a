import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  app,
  BrowserWindow,
  dialog,
  ipcMain,
  Menu,
  session,
  shell,
  type IpcMainInvokeEvent,
  type MenuItemConstructorOptions,
} from 'electron';
import {
  channelOf,
  eventChannelOf,
  eventNames,
  methods,
  parseArgs,
  type Method,
} from '../../shared/contract';
import { resolveConfig } from '../engine/config';
import { createJsonLogger } from '../engine/log';
import { engineOptions } from '../engine/settings';
import { Service } from '../engine/service';
import { CHOOSE_FOLDER_CHANNEL } from '../../shared/wire';
import { CONTENT_SECURITY_POLICY } from '../server/csp';
import { cliArguments, cliEntry, installAppImageCli } from './cli';
import { DesktopSettings } from './settings';

let service: Service;
let mainWindow: BrowserWindow | undefined;

/** The service over the saved settings (the environment fills in what they leave empty). */
async function createService(): Promise<Service> {
  const settings = new DesktopSettings();
  const stored = await settings.load();
  const fallback = resolveConfig({});
  const engine = engineOptions({ ...stored, repository: stored.repository || fallback.repository });
  // The app's log: JSON lines in the user-data folder, credentials redacted.
  const folder = app.getPath('userData');
  mkdirSync(folder, { recursive: true });
  const logger = createJsonLogger(
    createWriteStream(join(folder, 'tensorvault.log'), { flags: 'a' }),
  );
  return new Service({
    repository: engine.repository,
    redisUrl: engine.redisUrl ?? fallback.redisUrl,
    cacheDir: fallback.cacheDir,
    s3: engine.s3,
    mode: 'desktop',
    settings,
    logger,
  });
}

/** Only our own window's top frame may call the API. */
function checkSender(event: IpcMainInvokeEvent): void {
  const frame = event.senderFrame;
  if (
    !mainWindow ||
    event.sender !== mainWindow.webContents ||
    !frame ||
    frame !== mainWindow.webContents.mainFrame
  ) {
    throw new Error('refused: IPC call from an unknown frame');
  }
}

/** Sends every service event to the window. */
function forwardEvents(): void {
  for (const event of eventNames) {
    service.on(event, (payload) => {
      if (mainWindow && !mainWindow.isDestroyed())
        mainWindow.webContents.send(eventChannelOf(event), payload);
    });
  }
}

/** Wires every contract entry onto the service, with sender check and argument validation. */
export function registerApi(): void {
  for (const method of methods) {
    ipcMain.handle(channelOf(method), async (event, ...raw: unknown[]) => {
      checkSender(event);
      const args = parseArgs(method, raw);
      const fn = service[method as Method] as (...a: unknown[]) => Promise<unknown>;
      return fn.apply(service, args as unknown[]);
    });
  }
  // The folder picker for a restore's destination: the path the user chose, or null.
  ipcMain.handle(CHOOSE_FOLDER_CHANNEL, async (event) => {
    checkSender(event);
    const options = {
      title: 'Restore into folder',
      buttonLabel: 'Restore here',
      properties: ['openDirectory' as const, 'createDirectory' as const],
    };
    const chosen = mainWindow
      ? await dialog.showOpenDialog(mainWindow, options)
      : await dialog.showOpenDialog(options);
    return chosen.canceled ? null : (chosen.filePaths[0] ?? null);
  });
}

function createWindow(): void {
  mainWindow = new BrowserWindow({
    width: 1280,
    height: 800,
    minWidth: 960,
    minHeight: 600,
    title: 'TensorVault',
    show: false,
    webPreferences: {
      preload: join(import.meta.dirname, '../preload/index.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webviewTag: false,
    },
  });
  mainWindow.once('ready-to-show', () => mainWindow?.show());
  // No navigation away from the app, no new windows; external links open in the browser.
  mainWindow.webContents.on('will-navigate', (event) => event.preventDefault());
  mainWindow.webContents.setWindowOpenHandler(({ url }) => {
    if (url.startsWith('https://')) void shell.openExternal(url);
    return { action: 'deny' };
  });
  const devUrl = process.env['ELECTRON_RENDERER_URL'];
  if (devUrl) void mainWindow.loadURL(devUrl);
  else void mainWindow.loadFile(join(import.meta.dirname, '../renderer/index.html'));
}

/**
 * `tv` through the AppImage (see cli.ts): the bundled command line, run as plain Node by this
 * binary with the same arguments; the app exits with its status and opens no window.
 */
function runCommandLine(): void {
  const child = spawn(
    process.execPath,
    [cliEntry(app.getAppPath()), ...cliArguments(process.argv)],
    {
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1', TV_CLI: '' },
      stdio: 'inherit',
    },
  );
  child.once('exit', (code, signal) => app.exit(code ?? (signal ? 1 : 0)));
}

function startApp(): void {
  void app.whenReady().then(async () => {
    service = await createService();
    // Run from an AppImage: keep ~/.local/bin/tv pointing at it (never over another `tv`).
    const appImage = process.env['APPIMAGE'];
    if (appImage) void installAppImageCli(appImage).catch(() => {});
    session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
      callback({
        responseHeaders: {
          ...details.responseHeaders,
          'Content-Security-Policy': [CONTENT_SECURITY_POLICY],
        },
      });
    });
    session.defaultSession.setPermissionRequestHandler((_wc, _permission, callback) =>
      callback(false),
    );
    registerApi();
    forwardEvents();
    const menu: MenuItemConstructorOptions[] = [
      ...(process.platform === 'darwin' ? [{ role: 'appMenu' as const }] : []),
      { role: 'fileMenu' },
      { role: 'editMenu' },
      { role: 'viewMenu' },
      { role: 'windowMenu' },
    ];
    Menu.setApplicationMenu(Menu.buildFromTemplate(menu));
    createWindow();
    app.on('activate', () => {
      if (BrowserWindow.getAllWindows().length === 0) createWindow();
    });
  });

  app.on('before-quit', () => void service?.close());

  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });
}

if (process.env['TV_CLI'] === '1') runCommandLine();
else startApp();
