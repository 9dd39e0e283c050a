import { EventEmitter } from 'node:events';
import { join, resolve as resolvePath } from 'node:path';
import type { Api, AppInfo, EventName, Events } from '../../shared/contract';
import type {
  CacheStatus,
  ConnectionTest,
  GcResult,
  ModelSummary,
  PackRepairResult,
  RepairResult,
  PushProgress,
  PushResult,
  PushStatus,
  RecentChanges,
  RemoveResult,
  ReportProgress,
  RepositoryInfo,
  RestoreProgress,
  RestoreResult,
  RestoreTarget,
  Settings,
  SettingsInput,
  TagMoveSummary,
  TagResult,
  TagSummary,
  TensorStatsResult,
  VerifyResult,
  VersionDiff,
  VersionFiles,
  VersionReport,
  VersionSummary,
} from '../../shared/types';
import { DEFAULT_PROFILE, type ChunkingParams } from './chunking/params';
import { userCacheDir, type EngineConfig } from './config';
import type { HashAlgorithm } from './hashing';
import { gc } from './integrity/gc';
import { repairIndex } from './integrity/repair';
import { repairPacks } from './integrity/repair-packs';
import { verify } from './integrity/verify';
import { push, pushStatus } from './ingest/push';
import { FilesCache } from './ingest/files-cache';
import { collectFiles, SourceError, type FileSource } from './ingest/sources';
import { inPathOrder } from './ingest/versions';
import { silentLogger, type Logger } from './log';
import { validateModelName } from './repository/format';
import { currentTags, readTagRecord, validateTagName } from './repository/tags';
import { mapLimit } from './concurrency';
import {
  engineOptions,
  environmentSettings,
  mergeSettings,
  publicSettings,
  type SettingsStore,
  type StoredSettings,
} from './settings';
import { openBackend, parseLocation } from './storage/compose';
import type { CompressionScheme } from './storage/packs/encodings';
import { Repository, type OpenOptions } from './repository/repository';
import { changedTensors, tensorDeltaStats } from './report/delta-stats';
import { ReportCache } from './report/report-cache';
import { ReportTracker } from './report/progress';
import { diffVersions, parentOf, REPORT_FORMAT, versionReport } from './report/report';
import { restore, safeJoin } from './restore/restore';
import type { FileSelection } from './restore/select';
import { describeDestination, resolveDestination } from './restore/destination';
import { UploadSession } from './ingest/upload';
import { parseRedisSetting, redactRedisSetting } from './storage/redis-url';
import type { S3Options } from './storage/s3';
import { PRODUCT, VERSION } from './version';
import { ChunkHashPool } from './workers/pool';

/** The connection test answers within seconds: one try, short timeouts. */
const CONNECTION_TEST_MS = 3_000;
const CONNECTION_TEST_S3: S3Options = {
  maxAttempts: 1,
  retryForMs: CONNECTION_TEST_MS,
  connectTimeoutMs: CONNECTION_TEST_MS,
  idleTimeoutMs: CONNECTION_TEST_MS,
};

export interface ServiceOptions extends EngineConfig {
  mode: AppInfo['mode'];
  /**
   * Where the files cache lives (default: `files` in the user's cache folder); false: none. The
   * desktop app's Settings can also turn it off.
   */
  filesCache?: string | false;
  logger?: Logger;
  s3?: S3Options;
  /** Worker threads for chunking and hashing (default: one per core). */
  workers?: number;
  /** Where settings are kept; by default read-only, from the configuration above. */
  settings?: SettingsStore;
  /** The user's cache folder (default: the platform's; tests give each workstation its own). */
  cacheDir?: string;
}

export interface PushRequest {
  model: string;
  /** Files and folders on this machine... */
  paths?: string[];
  /** ...or files given as streams (browser uploads). */
  files?: FileSource[];
  message?: string;
  signal?: AbortSignal;
  onProgress?: (progress: PushProgress) => void;
  /** For the benchmark: the original one-check-per-chunk path. */
  existenceChecks?: 'batched' | 'per-chunk';
  /** Write a version even when the files are identical to the latest version's. */
  allowSame?: boolean;
  /** Read every file, whatever the files cache says (--no-cache). */
  noCache?: boolean;
  /** An update: the latest version's files with these added or replaced, `remove` left out. */
  update?: { remove: string[] };
  /** A folder of the version to put the given files under (`--at`), "/"-separated. */
  at?: string;
  /** Where each of `paths` (each a file) goes in the version, instead of its name. */
  versionPaths?: string[];
}

export interface StatusRequest {
  model: string;
  /** Files and folders on this machine (default: what the last push from here was given)... */
  paths?: string[];
  /** ...or files given as streams (browser uploads). */
  files?: FileSource[];
  /** Compare with this version (a selector) instead of the latest. */
  against?: string;
  noCache?: boolean;
  update?: { remove: string[] };
  at?: string;
  versionPaths?: string[];
  signal?: AbortSignal;
  onProgress?: (progress: PushProgress) => void;
}

/** What the app may ask of a push or its status beside the files: the update choice. */
export interface AppPushOptions {
  update?: { remove: string[] };
  versionPaths?: string[];
  noCache?: boolean;
}

function appOptions(o: AppPushOptions): Partial<PushRequest> {
  return {
    ...(o.update ? { update: o.update } : {}),
    ...(o.versionPaths ? { versionPaths: o.versionPaths } : {}),
    ...(o.noCache ? { noCache: true } : {}),
  };
}

/**
 * Gives each file given by name its path in the version (`versionPaths[i]` for `given[i]`, which
 * must each be a file); refused where a path could escape a destination.
 */
function renameFiles(files: FileSource[], given: string[], versionPaths: string[]): void {
  if (versionPaths.length !== given.length || files.length !== given.length)
    throw new SourceError('give one version path per file (and files only, not folders)');
  const byFile = new Map(given.map((p, i) => [resolvePath(p), versionPaths[i] as string]));
  for (const file of files) {
    const path = byFile.get(file.file ?? '');
    if (path === undefined) throw new SourceError(`no version path given for ${file.file}`);
    safeJoin('/', path);
    file.path = path;
  }
  files.sort(inPathOrder);
}

/** How far before `since` changes() looks: writers' clocks differ. */
const CLOCK_MARGIN_MS = 5 * 60_000;

/** The names of a model's tags, by the version each points at. */
async function tagsByVersion(repo: Repository, model: string): Promise<Map<string, string[]>> {
  const byVersion = new Map<string, string[]>();
  for (const move of currentTags(await repo.tagMoves(model)).values()) {
    const id = move.version as string;
    byVersion.set(id, [...(byVersion.get(id) ?? []), move.tag].sort());
  }
  return byVersion;
}

/** A folder inside a version (`--at`): relative, "/"-separated, no empty, "." or ".." part. */
function versionFolder(at: string): string {
  const folder = at.replace(/^\.\/+/, '').replace(/\/+$/, '');
  try {
    safeJoin('/', folder);
  } catch {
    throw new SourceError(
      `--at "${at}" is not a folder inside the version: give a relative path such as tokenizer or weights/shards`,
    );
  }
  return folder;
}

/**
 * The engine's front door: every front end (the desktop app over IPC, `tv`, browser mode) calls
 * this. It opens the repository lazily, once, and owns the worker pool.
 */
export class Service implements Api {
  private opened: Promise<Repository> | undefined;
  /** Whether `opened` creates the repository when it is missing. */
  private openedWithCreate = false;
  private pool: ChunkHashPool | undefined;
  private readonly logger: Logger;
  private readonly events = new EventEmitter();
  private readonly running = new Map<string, AbortController>();
  private readonly uploads = new Map<string, UploadSession>();
  /** Requests whose bytes arrived before the call that opens their upload, by push id. */
  private readonly uploadWaiters = new Map<string, ((session: UploadSession) => void)[]>();
  private ticker: NodeJS.Timeout | undefined;

  private readonly settings: SettingsStore;

  constructor(private readonly options: ServiceOptions) {
    this.logger = options.logger ?? silentLogger;
    this.settings = options.settings ?? environmentSettings(options.repository, options.redisUrl);
  }

  async getSettings(): Promise<Settings> {
    return publicSettings(await this.settings.load(), this.settings.editable);
  }

  /** Saves settings and reopens the repository with them on the next call. */
  async saveSettings(input: SettingsInput): Promise<Settings> {
    const merged = mergeSettings(await this.settings.load(), input);
    if (merged.repository) parseLocation(merged.repository); // a clear error for a bad location
    if (merged.redisUrl) parseRedisSetting(merged.redisUrl, 'the Redis URL in Settings');
    await this.settings.save(merged); // where settings come from the environment, this says so
    await this.reconfigure(merged);
    return publicSettings(merged, true);
  }

  /** Applies stored settings: the next call opens the repository (and cache) they name. */
  async reconfigure(stored: StoredSettings): Promise<void> {
    const engine = engineOptions(stored);
    const previous = this.opened;
    this.opened = undefined;
    this.options.repository = engine.repository;
    this.options.redisUrl = engine.redisUrl;
    this.options.s3 = engine.s3;
    if (previous) await (await previous.catch(() => undefined))?.close();
  }

  /**
   * Checks that S3 (the repository's bucket) or Redis answers with these settings, unsaved, within
   * a few seconds: one try, short timeouts, and what failed in words.
   */
  async testConnection(target: 's3' | 'redis', input: SettingsInput): Promise<ConnectionTest> {
    const started = performance.now();
    const result = (ok: boolean, message: string): ConnectionTest => ({
      target,
      ok,
      message,
      latencyMs: ok ? Math.round(performance.now() - started) : null,
    });
    try {
      const engine = engineOptions(mergeSettings(await this.settings.load(), input));
      if (target === 's3') {
        const location = parseLocation(engine.repository);
        if (location.kind !== 's3')
          return result(
            false,
            `the repository is ${engine.repository}, not an s3://bucket/prefix location`,
          );
        const store = await openBackend(location.url, { ...engine.s3, ...CONNECTION_TEST_S3 });
        await store.close();
        return result(
          true,
          `reached ${location.url}${engine.s3.endpoint ? ` at ${engine.s3.endpoint}` : ''}`,
        );
      }
      if (!engine.redisUrl)
        return result(false, 'no Redis URL is set: without one there is no cache');
      const { RedisConnection } = await import('./storage/redis');
      const connection = new RedisConnection(engine.redisUrl, {
        source: 'the Redis URL in Settings',
      });
      try {
        if (!(await connection.waitReady(CONNECTION_TEST_MS)))
          return result(false, connection.notReadyReason(CONNECTION_TEST_MS));
        await connection.ping();
        return result(
          true,
          connection.kind === 'cluster'
            ? `the Redis Cluster at ${connection.display} answers (${connection.masters().length} masters)`
            : `Redis at ${connection.display} answers`,
        );
      } catch (err) {
        return result(false, connection.describe(err));
      } finally {
        connection.disconnect();
      }
    } catch (err) {
      return result(false, err instanceof Error ? err.message : String(err));
    }
  }

  /** Subscribes to service events; while anyone listens, cache health is sent every second. */
  on<E extends EventName>(event: E, listener: (payload: Events[E]) => void): () => void {
    this.events.on(event, listener);
    if (!this.ticker) {
      this.ticker = setInterval(() => void this.tick(), 1000);
      this.ticker.unref();
    }
    return () => this.events.off(event, listener);
  }

  private async tick(): Promise<void> {
    if (!this.opened || this.events.listenerCount('cacheStatus') === 0) return;
    const status = await this.cacheStatus().catch(() => undefined);
    if (status) this.events.emit('cacheStatus', status);
  }

  /**
   * Desktop: push files and folders on this machine, with progress events tagged by pushId. With
   * `update`, the latest version's files plus these; `versionPaths` (one per path, each a file)
   * names where each goes in the version.
   */
  async pushPaths(
    pushId: string,
    model: string,
    paths: string[],
    message: string,
    options: AppPushOptions = {},
  ): Promise<PushResult> {
    return this.tracked(pushId, (signal) =>
      this.push({
        model,
        paths,
        message,
        signal,
        ...appOptions(options),
        onProgress: (progress) => this.events.emit('pushProgress', { pushId, progress }),
      }),
    );
  }

  /** Desktop: what pushPaths would do (files added, removed, modified; new bytes); cancellable. */
  async statusPaths(
    pushId: string,
    model: string,
    paths: string[],
    options: AppPushOptions = {},
  ): Promise<PushStatus> {
    return this.tracked(pushId, (signal) =>
      this.status({
        model,
        paths,
        signal,
        ...appOptions(options),
        onProgress: (progress) => this.events.emit('pushProgress', { pushId, progress }),
      }),
    );
  }

  /**
   * Browser mode: a push whose files arrive as byte streams (see acceptUpload), each read as the
   * pipeline reaches it.
   */
  async uploadPush(
    pushId: string,
    model: string,
    message: string,
    files: { path: string; size: number }[],
    options: AppPushOptions = {},
  ): Promise<PushResult> {
    return this.uploaded(pushId, model, files, (streams, signal) =>
      this.push({
        model,
        message,
        signal,
        files: streams,
        ...appOptions(options),
        onProgress: (progress) => this.events.emit('pushProgress', { pushId, progress }),
      }),
    );
  }

  /** Browser mode: what uploadPush would do; the page sends the bytes as for a push. */
  async uploadStatus(
    pushId: string,
    model: string,
    files: { path: string; size: number }[],
    options: AppPushOptions = {},
  ): Promise<PushStatus> {
    return this.uploaded(pushId, model, files, (streams, signal) =>
      this.status({
        model,
        signal,
        files: streams,
        ...appOptions(options),
        onProgress: (progress) => this.events.emit('pushProgress', { pushId, progress }),
      }),
    );
  }

  /** Runs work over the files of upload `pushId`, whose bytes arrive through acceptUpload. */
  private async uploaded<T>(
    pushId: string,
    model: string,
    files: { path: string; size: number }[],
    work: (streams: FileSource[], signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    validateModelName(model);
    for (const f of files) safeJoin('/', f.path); // refuses paths that could escape a destination
    const session = new UploadSession(files.length);
    this.uploads.set(pushId, session);
    for (const wake of this.uploadWaiters.get(pushId) ?? []) wake(session);
    this.uploadWaiters.delete(pushId);
    try {
      return await this.tracked(pushId, (signal) =>
        work(
          files.map((f, i) => ({
            path: f.path,
            size: f.size,
            stream: () => session.stream(i, signal),
          })),
          signal,
        ),
      );
    } finally {
      session.close();
      this.uploads.delete(pushId);
    }
  }

  /**
   * Hands the bytes of file `index` of upload `pushId` to its push; resolves when they are read.
   * The page sends the bytes right after the call that starts the upload, on another connection:
   * a request that arrives first waits (up to 10 s) for that call to open the upload.
   */
  async acceptUpload(
    pushId: string,
    index: number,
    body: AsyncIterable<Uint8Array>,
  ): Promise<void> {
    const session = this.uploads.get(pushId) ?? (await this.waitForUpload(pushId, 10_000));
    if (!session) throw new Error(`no upload ${pushId} is waiting for files`);
    return session.accept(index, body);
  }

  /** The upload `pushId` once its call opens it, or undefined after `ms`. */
  private waitForUpload(pushId: string, ms: number): Promise<UploadSession | undefined> {
    return new Promise((resolve) => {
      const waiters = this.uploadWaiters.get(pushId) ?? [];
      const wake = (session: UploadSession | undefined) => {
        clearTimeout(timer);
        resolve(session);
      };
      const timer = setTimeout(() => {
        const left = (this.uploadWaiters.get(pushId) ?? []).filter((w) => w !== wake);
        if (left.length > 0) this.uploadWaiters.set(pushId, left);
        else this.uploadWaiters.delete(pushId);
        wake(undefined);
      }, ms);
      waiters.push(wake);
      this.uploadWaiters.set(pushId, waiters);
    });
  }

  async cancelPush(pushId: string): Promise<boolean> {
    const controller = this.running.get(pushId);
    controller?.abort();
    return controller !== undefined;
  }

  private async tracked<T>(pushId: string, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.running.has(pushId)) throw new Error(`a push with id ${pushId} is already running`);
    const controller = new AbortController();
    this.running.set(pushId, controller);
    try {
      return await run(controller.signal);
    } finally {
      this.running.delete(pushId);
    }
  }

  async appInfo(): Promise<AppInfo> {
    return {
      product: PRODUCT,
      version: VERSION,
      repository: this.options.repository,
      mode: this.options.mode,
    };
  }

  private openOptions(): OpenOptions {
    return {
      repository: this.options.repository,
      redisUrl: this.options.redisUrl,
      logger: this.logger,
      ...(this.options.s3 ? { s3: this.options.s3 } : {}),
      ...(this.options.cacheDir ? { cacheDir: this.options.cacheDir } : {}),
    };
  }

  /** The repository, opened on first use; with `create`, made with defaults when missing. */
  async repository(create = false): Promise<Repository> {
    const open = (withCreate: boolean) =>
      Repository.open({ ...this.openOptions(), ...(withCreate ? { createIfMissing: {} } : {}) });
    let opening = this.opened;
    if (!opening) opening = open(create);
    else if (create && !this.openedWithCreate) {
      // An open without create may be under way (the page lists models while a push starts):
      // if it finds no repository, this one makes it.
      opening = opening.catch(() => open(true));
    } else return opening;
    this.opened = opening;
    this.openedWithCreate = create;
    opening.catch(() => {
      if (this.opened === opening) this.opened = undefined;
    });
    return opening;
  }

  private workers(): ChunkHashPool {
    this.pool ??= new ChunkHashPool(this.options.workers);
    return this.pool;
  }

  async init(
    options: {
      hash?: HashAlgorithm;
      chunking?: ChunkingParams;
      packSize?: number;
      compression?: CompressionScheme;
    } = {},
  ): Promise<RepositoryInfo> {
    const repo = await Repository.init({
      ...this.openOptions(),
      hash: options.hash ?? 'sha256',
      chunking: options.chunking ?? DEFAULT_PROFILE,
      ...(options.packSize !== undefined ? { packSize: options.packSize } : {}),
      ...(options.compression !== undefined ? { compression: options.compression } : {}),
    });
    this.opened = Promise.resolve(repo);
    this.openedWithCreate = true;
    return repo.info();
  }

  /** Upgrades a repository of format 1 or 2 to the current format (see Repository.upgrade). */
  async upgrade(): Promise<{ location: string; from: number; to: number; looseObjects: number }> {
    const repo = await this.repository();
    return { location: repo.location, ...(await repo.upgrade()) };
  }

  async repositoryInfo(): Promise<RepositoryInfo> {
    return (await this.repository()).info();
  }

  async push(request: PushRequest): Promise<PushResult> {
    // Bad input is refused before anything is opened or created.
    validateModelName(request.model);
    const { files, skipped, paths } = await this.sources(request);
    const repo = await this.repository(true);
    const filesCache = await this.filesCache(repo, request.model);
    // Workers start (load, compile) while the repository is listed, unless the files cache
    // vouches for every file: then none may be needed (an unchanged re-push reads nothing).
    const pool = this.workers();
    if (!filesCache || request.noCache || !(await filesCache.vouchesForAll(files))) pool.prewarm();
    // What `tv status MODEL` compares by default: the last whole version pushed from here.
    if (filesCache && paths && !request.update) filesCache.setSources(paths);
    // Redis connects while the first batches are chunked (or is given up on within its budget).
    repo.stack.cache?.connect();
    return push(repo, {
      model: request.model,
      files,
      pool,
      skipped,
      ...(request.message !== undefined ? { message: request.message } : {}),
      ...(request.signal ? { signal: request.signal } : {}),
      ...(request.onProgress ? { onProgress: request.onProgress } : {}),
      ...(request.existenceChecks ? { existenceChecks: request.existenceChecks } : {}),
      ...(request.allowSame ? { allowSame: true } : {}),
      ...(filesCache ? { filesCache, readAll: request.noCache ?? false } : {}),
      ...(request.noCache ? { checkParent: true } : {}),
      ...(request.update ? { update: request.update } : {}),
    });
  }

  /**
   * What a push of these files would do, against the latest version (or `against`): files added,
   * removed, modified and unchanged, and the new bytes it would upload. Nothing is written.
   */
  async status(request: StatusRequest): Promise<PushStatus> {
    validateModelName(request.model);
    const pool = this.workers();
    pool.prewarm();
    const repo = await this.repository();
    const against = request.against ? await repo.resolve(request.against) : undefined;
    if (against && against.model !== request.model)
      throw new SourceError(
        `--against ${request.against} is a version of ${against.model}, not of ${request.model}`,
      );
    const filesCache = await this.filesCache(repo, request.model);
    let paths = request.paths;
    if (!request.files && (!paths || paths.length === 0)) {
      paths = filesCache?.sources ?? [];
      if (paths.length === 0)
        throw new SourceError(
          `give the files or folder to compare: no push of ${request.model} from this machine recorded where its files were`,
        );
    }
    const { files, skipped, paths: sources } = await this.sources({ ...request, paths });
    const status = await pushStatus(repo, {
      model: request.model,
      files,
      pool,
      skipped,
      ...(against ? { against } : {}),
      ...(request.signal ? { signal: request.signal } : {}),
      ...(request.onProgress ? { onProgress: request.onProgress } : {}),
      ...(filesCache ? { filesCache, readAll: request.noCache ?? false } : {}),
      ...(request.update ? { update: request.update } : {}),
    });
    return { ...status, sources: sources ?? [] };
  }

  /**
   * A push's files: streams as given, or the files and folders at `paths` walked; under the
   * folder `at` of the version when given. An update may give none (it only removes files).
   */
  private async sources(request: {
    paths?: string[];
    files?: FileSource[];
    update?: { remove: string[] };
    at?: string;
    versionPaths?: string[];
  }): Promise<{ files: FileSource[]; skipped: PushResult['skipped']; paths?: string[] }> {
    const prefix = request.at === undefined ? '' : `${versionFolder(request.at)}/`;
    const under = (files: FileSource[]) =>
      prefix ? files.map((f) => ({ ...f, path: `${prefix}${f.path}` })) : files;
    if (request.files) return { files: under(request.files), skipped: [] };
    const paths = request.paths ?? [];
    if (paths.length === 0 && request.update?.remove.length)
      return { files: [], skipped: [], paths: [] };
    const collected = await collectFiles(paths);
    if (request.versionPaths) renameFiles(collected.files, paths, request.versionPaths);
    return {
      files: under(collected.files),
      skipped: collected.skipped,
      paths: paths.map((p) => resolvePath(p)),
    };
  }

  /** The files cache of this repository and model, unless it is turned off. */
  private async filesCache(repo: Repository, model: string): Promise<FilesCache | undefined> {
    const dir = this.options.filesCache ?? join(this.options.cacheDir ?? userCacheDir(), 'files');
    if (dir === false || !(await this.settings.load()).filesCache) return undefined;
    return FilesCache.open(dir, repo.config.repositoryId, model, this.logger);
  }

  async models(): Promise<ModelSummary[]> {
    const repo = await this.repository();
    const names = await repo.modelNames();
    return Promise.all(
      names.map(async (name) => {
        const [versions, tags] = await Promise.all([
          repo.versions(name),
          tagsByVersion(repo, name),
        ]);
        const latest = versions.at(-1);
        return {
          name,
          versions: versions.length,
          latest: latest ? repo.summarize(latest, tags.get(latest.id)) : null,
        };
      }),
    );
  }

  async log(model: string): Promise<VersionSummary[]> {
    const repo = await this.repository();
    const [versions, tags] = await Promise.all([
      repo.requireVersions(model),
      tagsByVersion(repo, model),
    ]);
    return versions.map((v) => repo.summarize(v, tags.get(v.id)));
  }

  /**
   * Versions pushed since `since` (the `now` of the previous answer), from one listing of the
   * refs: what the app looks at every ~15 s while it is open. Refs are named by their writer's
   * clock, so the window reaches back a few minutes more (callers drop what they have seen).
   */
  async changes(since?: number): Promise<RecentChanges> {
    const now = Date.now();
    if (since === undefined) return { now, versions: [] };
    const repo = await this.repository();
    const refs = await repo.refs();
    const removed = new Set(refs.filter((r) => r.tombstone).map((r) => r.base));
    const numbers = new Map<string, number>();
    const recent: { ref: (typeof refs)[number]; number: number }[] = [];
    for (const ref of refs) {
      if (ref.tombstone) continue;
      const number = (numbers.get(ref.model) ?? 0) + 1;
      numbers.set(ref.model, number);
      if (ref.createdAtMs > since - CLOCK_MARGIN_MS && !removed.has(ref.base))
        recent.push({ ref, number });
    }
    const versions = await mapLimit(recent, 16, async ({ ref, number }) =>
      repo.summarize({
        model: ref.model,
        number,
        id: ref.versionId,
        ref,
        record: await repo.readVersion(ref.versionId),
      }),
    );
    return { now, versions };
  }

  /** A model's tags and the versions they point at, by name. */
  async tags(model: string): Promise<TagSummary[]> {
    const repo = await this.repository();
    const [numbered, moves] = await Promise.all([repo.numberedRefs(model), repo.tagMoves(model)]);
    if (numbered.length === 0) await repo.requireVersions(model); // the model's own error
    const byId = new Map(numbered.map((r) => [r.ref.versionId, r]));
    const current = [...currentTags(moves).values()];
    const records = await Promise.all(current.map((m) => readTagRecord(repo.store, m)));
    return current
      .map((move, i) => {
        const ref = byId.get(move.version as string);
        return {
          model,
          name: move.tag,
          version: ref ? `v${ref.number}` : null,
          id: move.version as string,
          shortId: (move.version as string).slice(0, 12),
          removed: !ref || ref.removed !== undefined,
          by: records[i]?.by ?? null,
          at: new Date(move.at).toISOString(),
        };
      })
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Every move of a model's tags, oldest first. */
  async tagHistory(model: string): Promise<TagMoveSummary[]> {
    const repo = await this.repository();
    const [numbered, moves] = await Promise.all([repo.numberedRefs(model), repo.tagMoves(model)]);
    if (numbered.length === 0) await repo.requireVersions(model);
    const label = (id: string | null) => {
      if (id === null) return null;
      const ref = numbered.find((r) => r.ref.versionId === id);
      return { version: ref ? `v${ref.number}` : null, id };
    };
    const records = await mapLimit(moves, 16, (m) => readTagRecord(repo.store, m));
    // `from` follows each tag's own order (its keys'); the list is by time across tags.
    const before = new Map<string, string | null>();
    const history = moves.map((move, i) => {
      const from = before.get(move.tag) ?? null;
      before.set(move.tag, move.version);
      return {
        model,
        name: move.tag,
        at: new Date(move.at).toISOString(),
        by: records[i]?.by ?? null,
        from: label(from),
        to: label(move.version),
      };
    });
    return history.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  }

  /** Points a tag at a version (`MODEL@VERSION`), setting or moving it. */
  async tag(selector: string, name: string): Promise<TagResult> {
    const repo = await this.repository();
    validateTagName(name);
    const entry = await repo.resolve(selector);
    const { move, previous } = await repo.setTag(entry, name);
    const numbered = previous ? await repo.numberedRefs(entry.model) : [];
    const was = numbered.find((r) => r.ref.versionId === previous);
    return {
      model: entry.model,
      name,
      version: `v${entry.number}`,
      id: entry.id,
      shortId: entry.id.slice(0, 12),
      previous: previous ? { version: was ? `v${was.number}` : null, id: previous } : null,
      changed: move !== undefined,
    };
  }

  /** Deletes a tag (its record stays in the history). */
  async untag(model: string, name: string): Promise<TagResult> {
    const repo = await this.repository();
    const { previous } = await repo.deleteTag(model, name);
    const was = (await repo.numberedRefs(model)).find((r) => r.ref.versionId === previous);
    return {
      model,
      name,
      version: null,
      id: null,
      shortId: null,
      previous: { version: was ? `v${was.number}` : null, id: previous },
      changed: true,
    };
  }

  /**
   * The folder a relative destination is resolved against: the command line's current folder;
   * none in the app (its server's folder means nothing to the user), where relative paths are
   * refused.
   */
  private destinationBase(): string | undefined {
    return this.options.mode === 'cli' ? process.cwd() : undefined;
  }

  /** Where a restore to `folder` (as typed) would write, and whether it can: before it starts. */
  async restoreTarget(folder: string): Promise<RestoreTarget> {
    return describeDestination(folder, this.destinationBase());
  }

  /**
   * Writes a version's files (or those selected) into a folder: only what differs from what the
   * folder holds (see restore).
   */
  async pull(
    selector: string,
    destination: string,
    options: FileSelection & {
      signal?: AbortSignal;
      onProgress?: (p: RestoreProgress) => void;
    } = {},
  ): Promise<RestoreResult> {
    // Checked before anything is opened: a path the app cannot place costs no request.
    const folder = resolveDestination(destination, this.destinationBase());
    const pool = this.workers();
    pool.prewarm();
    const repo = await this.repository();
    return restore(repo, await repo.resolve(selector), folder, {
      ...options,
      pool,
      onProgress: (progress) => {
        options.onProgress?.(progress);
        this.events.emit('restoreProgress', { selector, progress });
      },
    });
  }

  /** A version's files (paths and sizes), in path order. */
  async files(selector: string): Promise<VersionFiles> {
    const repo = await this.repository();
    const entry = await repo.resolve(selector);
    return {
      model: entry.model,
      version: `v${entry.number}`,
      id: entry.id,
      files: entry.record.files.map((f) => ({ path: f.path, size: f.size })),
    };
  }

  /** Reports and diffs kept on this machine, when a cache folder is configured. */
  private reportCache(repo: Repository): ReportCache | undefined {
    const dir = this.options.cacheDir;
    return dir ? new ReportCache(dir, repo.config.repositoryId, REPORT_FORMAT) : undefined;
  }

  /** Progress of a report or diff, to the caller and to every front end (keyed as asked). */
  private reportTracker(key: string, onProgress?: (p: ReportProgress) => void): ReportTracker {
    return new ReportTracker((progress) => {
      onProgress?.(progress);
      this.events.emit('reportProgress', { key, progress });
    });
  }

  /**
   * Where a version's bytes came from. Computed once per version on this machine, then read from
   * the cache; only whether its parent is still there is looked up again (a parent gc has
   * reclaimed since leaves nothing to compare tensors with, so that report is computed again).
   */
  async report(
    selector: string,
    options: { onProgress?: (p: ReportProgress) => void } = {},
  ): Promise<VersionReport> {
    const repo = await this.repository();
    const entry = await repo.resolve(selector);
    const cache = this.reportCache(repo);
    const cached = await cache?.get<VersionReport>('report', entry.id);
    if (cached) {
      const parent = (await parentOf(repo, entry))?.info ?? null;
      if ((parent?.state === 'collected') === (cached.parent?.state === 'collected'))
        return { ...cached, version: repo.summarize(entry), parent, cached: true };
    }
    const tracker = this.reportTracker(selector, options.onProgress);
    const report = await versionReport(repo, entry, tracker);
    await cache?.put('report', entry.id, report);
    return report;
  }

  /** What changed between two versions; computed once per pair on this machine (see report). */
  async diff(
    from: string,
    to: string,
    options: { onProgress?: (p: ReportProgress) => void } = {},
  ): Promise<VersionDiff> {
    const repo = await this.repository();
    // Both settle before an error is thrown: the service may close the repository right after.
    const [a, b] = await Promise.allSettled([repo.resolve(from), repo.resolve(to)]);
    if (a.status === 'rejected') throw a.reason;
    if (b.status === 'rejected') throw b.reason;
    const cache = this.reportCache(repo);
    const key = `${a.value.id}-${b.value.id}`;
    const cached = await cache?.get<VersionDiff>('diff', key);
    if (cached)
      return {
        ...cached,
        from: repo.summarize(a.value),
        to: repo.summarize(b.value),
        cached: true,
      };
    const tracker = this.reportTracker(`${from}..${to}`, options.onProgress);
    const diff = await diffVersions(repo, a.value, b.value, tracker);
    await cache?.put('diff', key, diff);
    return diff;
  }

  /**
   * How much tensors of a model file moved between two versions (`tensors` absent: every tensor
   * whose bytes changed at the same dtype and shape). Computed in the workers, streaming both
   * versions' chunks; kept in this machine's copy of the diff, so the diff shows them next time.
   */
  async tensorStats(
    from: string,
    to: string,
    request: { path: string; tensors?: string[] },
  ): Promise<TensorStatsResult> {
    const diff = await this.diff(from, to);
    const file = diff.files.find((f) => f.path === request.path);
    if (!file) throw new Error(`${request.path} is in neither ${from} nor ${to}`);
    if (!file.tensors)
      throw new Error(
        `${request.path} is not a model file read tensor by tensor: it has no tensors to compare`,
      );
    const names = request.tensors ?? changedTensors(file.tensors);
    const repo = await this.repository();
    const [a, b] = await Promise.all([repo.resolve(from), repo.resolve(to)]);
    const pool = this.workers();
    pool.prewarm();
    const tensors = await tensorDeltaStats(repo, pool, a, b, request.path, names);
    const computed = new Map(tensors.map((t) => [t.name, t.stats]));
    for (const t of file.tensors) {
      const stats = computed.get(t.name);
      if (stats) t.stats = stats;
    }
    await this.reportCache(repo)?.put('diff', `${a.id}-${b.id}`, { ...diff, cached: false });
    return { from, to, path: request.path, tensors };
  }

  async verify(options: { selector?: string; full?: boolean } = {}): Promise<VerifyResult> {
    const repo = await this.repository();
    // A model that has no versions is an error, as for every command that names one.
    if (options.selector && !options.selector.includes('@'))
      await repo.requireVersions(options.selector);
    return verify(repo, options);
  }

  async remove(selector: string): Promise<RemoveResult> {
    const repo = await this.repository();
    const removed = await repo.remove(selector);
    const model = removed[0]?.model ?? selector;
    const label = new Map(removed.map((v) => [v.id, `v${v.number}`]));
    const tagsLeft = [...currentTags(await repo.tagMoves(model)).values()]
      .filter((move) => move.version !== null && label.has(move.version))
      .map((move) => ({ name: move.tag, version: label.get(move.version as string) as string }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return {
      model,
      removed: removed.map((v) => ({ version: `v${v.number}`, id: v.id })),
      tagsLeft,
    };
  }

  async gc(
    options: { dryRun?: boolean; graceSeconds?: number; repackBelowPercent?: number } = {},
  ): Promise<GcResult> {
    return gc(await this.repository(), options);
  }

  /** Rebuilds the index of a repository of packs from the packs themselves (see repairIndex). */
  async repairIndex(): Promise<RepairResult> {
    return repairIndex(await this.repository());
  }

  /**
   * Reads back the copies of objects in these packs (every pack when none is named) and drops
   * the corrupt ones from the index, their cache keys first (see repairPacks).
   */
  async repairPacks(packs: string[] = []): Promise<PackRepairResult> {
    return repairPacks(await this.repository(), packs);
  }

  /**
   * The cache's state, from PINGs sent now, and the shared cache's figures from Redis. A
   * long-running front end asks every second: it sends one PING and rereads the figures every
   * 15 s; the command line sends three and reads them now.
   */
  async cacheStatus(): Promise<CacheStatus> {
    const redis = this.options.redisUrl ? redactRedisSetting(this.options.redisUrl) : null;
    const repo = await this.repository();
    const cache = repo.stack.cache;
    if (!cache || !redis) {
      return {
        state: 'disabled',
        redis,
        latencyMs: null,
        recentLatencyMs: [],
        hits: 0,
        misses: 0,
        hitRate: null,
        backfills: 0,
        fallbacks: 0,
        backendCallsAvoided: 0,
        errors: 0,
        timeouts: 0,
        lastError: null,
        since: null,
        reason: null,
        pingMs: null,
        commandTimeoutMs: null,
        countersScope: 'process',
        shared: null,
        kind: null,
        nodes: [],
        failovers: [],
      };
    }
    const { cacheStatus } = await import('./storage/cache-status');
    return cacheStatus(
      cache,
      redis,
      this.options.mode === 'cli'
        ? { pings: 3, quiet: true }
        : { pings: 1, sharedMaxAgeMs: 15_000 },
    );
  }

  async close(): Promise<void> {
    if (this.ticker) clearInterval(this.ticker);
    for (const controller of this.running.values()) controller.abort();
    await this.pool?.close();
    const opened = this.opened;
    this.opened = undefined;
    if (opened) await (await opened.catch(() => undefined))?.close();
  }
}
