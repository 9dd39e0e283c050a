/** Domain types every front end sees (results of the service, events). No runtime code. */

export type HashAlgorithmName = 'sha256' | 'blake3';
export type CacheStateName = 'up' | 'degraded' | 'down' | 'disabled';

export interface RepositoryInfo {
  /** Where the repository lives, for display (never a credential). */
  location: string;
  repositoryId: string;
  format: number;
  hash: HashAlgorithmName;
  chunking: { minSize: number; avgSize: number; maxSize: number };
  /** Bytes at which a pack is sealed (format 3); null for formats without packs of their own size. */
  packSize: number | null;
  /** How chunks are compressed in packs: none, lz4 or zstd (`tv init --compression`). */
  compression: 'none' | 'lz4' | 'zstd';
  createdAt: string;
}

export interface ModelSummary {
  name: string;
  versions: number;
  latest: VersionSummary | null;
}

export interface VersionStats {
  logicalBytes: number;
  newBytes: number;
  /**
   * Bytes the new chunks take in the repository (compressed where it paid); equals newBytes
   * without compression. Absent for versions pushed before compression existed.
   */
  storedBytes?: number;
  reusedBytes: number;
  reusedFromParentBytes: number;
  chunks: number;
  newChunks: number;
  /** Bytes of file manifests this version stores (its chunk lists). */
  metadataBytes: number;
  seconds: number;
}

export interface VersionSummary {
  model: string;
  /** 1-based, in order of creation. */
  number: number;
  /** "v3" */
  label: string;
  id: string;
  shortId: string;
  parent: string | null;
  createdAt: string;
  author: string;
  message: string;
  files: number;
  stats: VersionStats;
  /** Logical bytes per new chunk byte (shared/format dedupRatio); null when nothing was new. */
  dedupRatio: number | null;
  /** The tags that point at this version, by name. */
  tags: string[];
}

/** A tag and the version it points at (`tv tags`). */
export interface TagSummary {
  model: string;
  name: string;
  /** "v3"; null when the version's ref is gone. */
  version: string | null;
  id: string;
  shortId: string;
  /** The version was removed (tv rm): MODEL@TAG is refused until the tag moves. */
  removed: boolean;
  /** Who pointed it there, and when (null where its record does not say who). */
  by: string | null;
  at: string;
}

/** One move of a tag (`tv tags --history`): set, moved or deleted. */
export interface TagMoveSummary {
  model: string;
  name: string;
  at: string;
  by: string | null;
  /** Where it pointed before; null when it was new (or deleted). */
  from: { version: string | null; id: string } | null;
  /** Where it points from then on; null: deleted. */
  to: { version: string | null; id: string } | null;
}

/** What `tv tag` did. */
export interface TagResult {
  model: string;
  name: string;
  /** The version it points at now; null once deleted. */
  version: string | null;
  id: string | null;
  shortId: string | null;
  /** Where it pointed before; null when it is new. */
  previous: { version: string | null; id: string } | null;
  /** False when it already pointed there (nothing was written). */
  changed: boolean;
}

/**
 * Requests a command made to the storage backend, by kind: on S3 the HTTP requests (POST starts
 * and completes multipart uploads), on a folder the blob operations.
 */
export interface RequestCounts {
  put: number;
  post: number;
  list: number;
  get: number;
  head: number;
  delete: number;
}

/** What a push made: the version's figures (see VersionStats) and where it stands. */
export interface PushResult extends VersionStats {
  model: string;
  version: string;
  number: number;
  id: string;
  shortId: string;
  files: number;
  /** Logical bytes per new chunk byte (shared/format dedupRatio); null when nothing was new. */
  dedupRatio: number | null;
  /** True when this push created the repository. */
  createdRepository: boolean;
  skipped: { path: string; reason: string }[];
  /** Requests this push made to the storage backend, by kind. */
  requests: RequestCounts;
  /** Bytes this push sent to the storage backend (packs, indexes, manifests, the version, its ref). */
  uploadedBytes: number;
  /**
   * What the requests would cost at S3 Standard list prices, in US dollars: an estimate, for S3
   * repositories only (null for a folder).
   */
  estimatedRequestCostUsd: number | null;
  /**
   * False when the content was identical to the model's latest version and no version was
   * written (see `identicalTo`; model, version, number, id and shortId then name that version).
   */
  created: boolean;
  /** The latest version this content is identical to, when no version was written; else null. */
  identicalTo: { version: string; id: string; shortId: string } | null;
  /** Files the files cache vouched for (not read: they looked as when last pushed), and their bytes. */
  filesFromCache: number;
  bytesFromCache: number;
  /** An update (`--update`): what it did to the parent's files; null for a whole new version. */
  update: {
    added: string[];
    replaced: string[];
    /** Given files identical to the parent's file at the same path (nothing changed there). */
    unchanged: string[];
    removed: string[];
    kept: number;
  } | null;
}

/** A path of a push compared with a version (`tv status`, `tv push --dry-run`). */
export interface StatusFile {
  path: string;
  status: ChangeStatus;
  /** Null where the file is not in that side. */
  size: number | null;
  sizeBefore: number | null;
  /** Bytes of new chunks a push would upload for this file (shared chunks counted once). */
  newBytes: number;
  /** The files cache vouched for the file: it was not read. */
  fromCache: boolean;
}

/** What a push of some files would do (nothing is written): `tv status`, `tv push --dry-run`. */
export interface PushStatus {
  model: string;
  /** The files and folders compared (absolute paths; empty for files sent by a browser). */
  sources: string[];
  /** The version compared with (the latest, or --against); null when the model has none. */
  against: { version: string; id: string; shortId: string } | null;
  /** Every path of either side, by status (modified, added, removed, unchanged), then path. */
  files: StatusFile[];
  added: number;
  removed: number;
  modified: number;
  unchanged: number;
  /** The size of the version the push would make. */
  logicalBytes: number;
  /** New chunk bytes a push would upload (chunks no version or push stored yet). */
  newBytes: number;
  newChunks: number;
  /** Files read and chunked for this answer, and those the files cache vouched for. */
  filesRead: number;
  bytesRead: number;
  filesFromCache: number;
  bytesFromCache: number;
  /** True when the push would write no version (its files are identical to `against`). */
  identical: boolean;
  skipped: { path: string; reason: string }[];
  seconds: number;
}

export interface PushProgress {
  phase: 'scanning' | 'chunking' | 'finishing' | 'done';
  files: number;
  filesDone: number;
  currentFile: string | null;
  totalBytes: number;
  bytesRead: number;
  bytesHashed: number;
  bytesDeduplicated: number;
  bytesUploaded: number;
  /** Bytes of files the files cache vouched for (counted as hashed, not read). */
  bytesFromCache: number;
  chunks: number;
  newChunks: number;
  mbps: number;
  etaSeconds: number | null;
  /**
   * S3 asked to slow down (503 SlowDown) within the last few seconds: requests are being retried,
   * adaptively, for up to the retry time (`--retry-for`); the push goes on, slower.
   */
  throttled: boolean;
  /** Requests this push retried after S3 asked to slow down. */
  throttledRetries: number;
}

export interface RestoreProgress {
  /** Checking what the destination already holds, then writing what differs. */
  phase: 'checking' | 'writing';
  files: number;
  filesDone: number;
  totalBytes: number;
  /** Bytes of files found in place already (the version's bytes): not written. */
  bytesChecked: number;
  bytesWritten: number;
  mbps: number;
  etaSeconds: number | null;
}

/** How far a report or a diff has got (the first time: later ones come from the cache). */
export interface ReportProgress {
  /** Reading the manifests of the versions compared with, then going through the files. */
  phase: 'manifests' | 'files';
  files: number;
  filesDone: number;
  manifestsRead: number;
  /** Model file headers read and parsed. */
  headersRead: number;
  /** Bytes of chunks fetched (headers, and bytes no chunk hash settled). */
  bytesRead: number;
}

export interface RestoreResult {
  model: string;
  version: string;
  id: string;
  destination: string;
  files: number;
  bytes: number;
  chunks: number;
  seconds: number;
  /** Files written; the others were in place already, with the version's bytes. */
  filesWritten: number;
  filesUnchanged: number;
  bytesUnchanged: number;
  /** Bytes of chunks read from files already in the destination rather than the repository. */
  bytesFromDestination: number;
}

/** Versions pushed lately (the app's cheap look for teammates' pushes). */
export interface RecentChanges {
  /** The server's clock (ms): the `since` of the next call. */
  now: number;
  /** Live versions whose refs were written after `since` (less a margin for clocks), oldest first. */
  versions: VersionSummary[];
}

/** A version's files (`tv ls`), for picking some to pull. */
export interface VersionFiles {
  model: string;
  version: string;
  id: string;
  files: { path: string; size: number }[];
}

/** Where a restore to a folder as typed would write, checked before it starts. */
export interface RestoreTarget {
  /** The folder as given. */
  input: string;
  /** The absolute folder it names (`~` expanded); null when it names none (a relative path in the app). */
  path: string | null;
  /**
   * A folder the restore creates, an existing empty one, or one holding files (those of the version
   * already there are checked, not written again; others are left alone); null when it cannot be
   * used.
   */
  state: 'new' | 'empty' | 'files' | null;
  /** Why it cannot be used, in one line; null when it can. */
  problem: string | null;
}

export interface CacheStatus {
  state: CacheStateName;
  /** The Redis URL with any password removed; null when no cache is configured. */
  redis: string | null;
  latencyMs: { p50: number; p99: number } | null;
  recentLatencyMs: number[];
  hits: number;
  misses: number;
  hitRate: number | null;
  backfills: number;
  fallbacks: number;
  backendCallsAvoided: number;
  errors: number;
  lastError: string | null;
  since: string | null;
  /** Redis commands that did not answer within their timeout (this process). */
  timeouts: number;
  /**
   * Why the state is what it is: the failure when down; the timeouts, failed PINGs or recent
   * recovery when degraded; null when up or disabled.
   */
  reason: string | null;
  /** Median round trip of the PINGs this status sent, in milliseconds; null when none answered. */
  pingMs: number | null;
  /** The timeout a Redis command gets now, sized from measured round trips; null when disabled. */
  commandTimeoutMs: number | null;
  /**
   * `hits` to `errors` above count this process's own work since it started: a fresh `tv` shows
   * zeros. What every client of the repository counted is in `shared.totals`.
   */
  countersScope: 'process';
  /** The shared cache, as read from Redis; null when disabled or when Redis did not answer. */
  shared: CacheShared | null;
  /** One server, or a Redis Cluster; null when no cache is configured. */
  kind: 'standalone' | 'cluster' | null;
  /** Each master of a cluster (the server itself when standalone); [] when disabled. */
  nodes: CacheNodeStatus[];
  /**
   * Hash slots this process saw move from one master to another (a failover, or slots moved by
   * an operator), latest last; [] on one server.
   */
  failovers: { at: string; from: string; to: string; slots: number }[];
}

/** One master of the cache (or the one server). */
export interface CacheNodeStatus {
  /** host:port */
  address: string;
  /** up, degraded, or down (its keys go to the storage backend). */
  state: CacheStateName;
  /** Its PING's round trip now, in milliseconds; null when it did not answer. */
  pingMs: number | null;
  /** Why it is down or degraded; null when up. */
  reason: string | null;
  /** Hash slots it serves (16384 for one server). */
  slots: number;
  /** Keys in its database; null when it did not answer. */
  dbKeys: number | null;
  /** This repository's keys on it (counted, or estimated like `shared.keys`); null when unknown. */
  keys: number | null;
}

/** What any client can read about the shared cache from Redis itself. */
export interface CacheShared {
  /** The repository whose keys are counted (keys are bound to its id). */
  repositoryId: string;
  /** This repository's existence keys: counted one by one, or estimated from a sample of keys. */
  keys: { count: number; method: 'counted' | 'sampled'; sampledKeys: number } | null;
  /** Estimated memory of those keys, in bytes. */
  keyBytes: number | null;
  memory: {
    usedBytes: number;
    /** Redis' maxmemory; null when it has no limit. */
    maxBytes: number | null;
    /** maxmemory-policy: what Redis does at the limit. */
    policy: string;
    /** Keys Redis evicted since it started: each one a cache entry lost. */
    evictedKeys: number;
  } | null;
  /** Counters every client of this repository adds to in Redis (approximate), and since when. */
  totals: {
    hits: number;
    misses: number;
    backfills: number;
    uploads: number;
    fallbacks: number;
    hitRate: number | null;
    since: string;
  } | null;
  /** When these figures were read (ISO 8601). */
  readAt: string;
}

export type ChunkSource = 'new' | 'parent' | 'elsewhere';

/** A stretch of a file whose chunks all came from the same place. */
export interface ChunkRun {
  offset: number;
  length: number;
  source: ChunkSource;
}

export type ChangeStatus = 'unchanged' | 'modified' | 'added' | 'removed';

/** The model file formats read tensor by tensor. */
export type ModelFormatName = 'safetensors' | 'gguf' | 'onnx' | 'pytorch';

/** How a modified tensor changed: its bytes only, its dtype (a new quantization), its shape. */
export type TensorChangeKind = 'content' | 'retyped' | 'reshaped';

export interface TensorChange {
  name: string;
  status: ChangeStatus;
  /** The format's own name for the element type: BF16, Q4_K, FLOAT16, torch.HalfStorage... */
  dtype: string;
  shape: number[];
  bytes: number;
  /**
   * Where the tensor's bytes start in the file (the newer file; the older one for a removed
   * tensor). Together with `bytes`, the tensor's place on the chunk map.
   */
  offset?: number;
  /** When the bytes live in another file of the version (ONNX external data): its path. */
  file?: string;
  /** PyTorch: the storage holding the tensor's elements (several tensors may share one). */
  storage?: string;
  /** For a modified tensor: what changed ('retyped' and 'reshaped' may come together). */
  changes?: TensorChangeKind[];
  /** For a retyped or reshaped tensor: its dtype, shape and size in the older file. */
  before?: { dtype: string; shape: number[]; bytes: number };
  /** In a version report: bytes of the tensor held in chunks new in this version. */
  newBytes?: number;
  /** How much its elements moved, once computed (on demand: `tv diff --stats`, the app's button). */
  stats?: TensorStats;
}

/**
 * How much a tensor's elements moved between two versions (a = older, b = newer), over the
 * elements finite on both sides.
 */
export interface TensorStats {
  /** ||b − a|| / ||a||: 0 when nothing moved, about 1.41 for new values of the same distribution; null when a is all zeros and b is not. */
  relativeL2: number | null;
  /** max |b − a|. */
  maxAbsChange: number;
  /** Share of elements whose value changed (0 to 1). */
  changedFraction: number;
  elements: number;
  /** Elements NaN or infinite on either side, left out of the sums. */
  nonFinite: number;
}

/** Delta statistics of tensors of one model file between two versions. */
export interface TensorStatsResult {
  from: string;
  to: string;
  path: string;
  /** In the order asked; `skipped` says why a tensor has none (added, retyped, an integer dtype). */
  tensors: { name: string; stats?: TensorStats; skipped?: string }[];
}

/** A metadata key of a model file (GGUF key/value, ONNX producer and opset...), compared. */
export interface MetadataChange {
  key: string;
  status: ChangeStatus;
  /** The value in the newer file, for display (long arrays summarized); absent when removed. */
  value?: string;
  /** The value in the older file, when the key was modified or removed. */
  before?: string;
  /** What differs inside a long value: "3 of 151,936 items differ, the first at index 1,042". */
  detail?: string;
}

export interface FileReport {
  path: string;
  size: number;
  newBytes: number;
  reusedFromParentBytes: number;
  reusedElsewhereBytes: number;
  chunks: number;
  newChunks: number;
  runs: ChunkRun[];
  /** The model format the file was read as (absent for other files). */
  format?: ModelFormatName;
  /** For model files: each tensor compared with the parent version's file. */
  tensors?: TensorChange[];
  /** For model files: each metadata key compared with the parent version's file. */
  metadata?: MetadataChange[];
  /** Small text files changed since the parent version: what changed (see TextDiff). */
  text?: TextDiff;
  note?: string;
}

/** The version a version was pushed on, as the report found it. */
export interface VersionParent {
  id: string;
  shortId: string;
  /** "v1"; null when its ref is gone. */
  label: string | null;
  /**
   * live; removed (`tv rm`, its record still there to compare with); collected (removed, and gc
   * has reclaimed it: no comparison with it is possible).
   */
  state: 'live' | 'removed' | 'collected';
  removedAt: string | null;
  removedBy: string | null;
}

/**
 * Where a version's bytes came from. The version's figures (new, from the previous version, from
 * elsewhere, the ratio) are the ones its push recorded, so they never change; the per-file figures
 * and chunk maps are computed from manifests (see `note` where the two differ).
 */
export interface VersionReport {
  version: VersionSummary;
  logicalBytes: number;
  newBytes: number;
  /** Bytes the new chunks take in the repository (compressed); null for versions pushed before. */
  storedBytes: number | null;
  reusedBytes: number;
  reusedFromParentBytes: number;
  reusedElsewhereBytes: number;
  chunks: number;
  newChunks: number;
  /** Logical bytes per new chunk byte (shared/format dedupRatio); null when nothing was new. */
  dedupRatio: number | null;
  /** Bytes of file manifests the push stored, apart from the chunks. */
  metadataBytes: number;
  seconds: number;
  mbps: number;
  /** The version it was pushed on; null for a model's first version. */
  parent: VersionParent | null;
  /** Why the per-file figures differ from the recorded ones, when they do. */
  note: string | null;
  files: FileReport[];
  /** When it was computed (reports are kept on the machine that computed them). */
  computedAt: string;
  /** True when read from this machine's cache rather than computed now. */
  cached: boolean;
}

/** A small text file compared with the older version's: JSON key by key, other text line by line. */
export interface TextDiff {
  kind: 'json' | 'lines';
  /** JSON: each key path that differs (`generation.max_length`, `eos_token_id[1]`). */
  keys?: MetadataChange[];
  /** Text: the hunks of a unified diff, each line prefixed with ' ', '+' or '-'. */
  hunks?: { oldStart: number; newStart: number; lines: string[] }[];
  /** Changed lines or keys left out (the diff shows the first ones). */
  truncated?: number;
}

export interface FileDiff {
  path: string;
  status: ChangeStatus;
  /** Bytes of the newer file not found in the older one (the whole file when added or removed). */
  bytesChanged: number;
  sizeBefore: number | null;
  sizeAfter: number | null;
  format?: ModelFormatName;
  tensors?: TensorChange[];
  metadata?: MetadataChange[];
  /** Small text files (config, tokenizer config, JSON, YAML, TXT up to 1 MiB): what changed. */
  text?: TextDiff;
  note?: string;
}

export interface VersionDiff {
  from: VersionSummary;
  to: VersionSummary;
  files: FileDiff[];
  bytesChanged: number;
  /** When it was computed (diffs are kept on the machine that computed them). */
  computedAt: string;
  /** True when read from this machine's cache rather than computed now. */
  cached: boolean;
}

export interface DamagedObject {
  hash: string;
  kind: 'chunk' | 'manifest' | 'version';
  problem: 'missing' | 'corrupt';
  /** Where it is needed: "model vN" and the file path, when a chunk or manifest. */
  neededBy: { version: string; file?: string }[];
  /**
   * A corrupt object in a repository of packs: the packs (names) holding its corrupt copies,
   * which `tv repair packs` drops from the index.
   */
  corruptIn?: string[];
  /** A corrupt object: whether another pack holds an intact copy (nothing to push again then). */
  intactCopy?: boolean;
}

export interface VerifyResult {
  ok: boolean;
  versionsChecked: number;
  objectsChecked: number;
  /**
   * How existence was checked: "index" (a repository of packs: its index, listed whole), "list"
   * (the backend's listing, cheaper than one check per object), "head" (one check per object).
   */
  method: 'list' | 'head' | 'index';
  full: boolean;
  damaged: DamagedObject[];
  damagedVersions: { model: string; version: string; id: string; files: string[] }[];
  staleCacheKeysRemoved: number;
  /** With full, in a repository of packs: each pack's trailer checked against the index. */
  packs?: {
    checked: number;
    /** Packs no index names (a push running now has some; `tv repair index` indexes the others). */
    unindexed: number;
    /** What disagrees, one line each. */
    problems: string[];
  };
  /**
   * With --full, in a repository of packs: when the index lacked objects the versions need (or an
   * index object was damaged), the index was rebuilt from the packs' trailers first (as `tv
   * repair index` does), and this says what that did; absent otherwise.
   */
  repaired?: RepairResult;
  seconds: number;
}

export interface RemoveResult {
  model: string;
  removed: { version: string; id: string }[];
  /**
   * Tags that point at a version this removed (they stay, and a selector naming one says the
   * version was removed, until they are moved or deleted); by name.
   */
  tagsLeft: { name: string; version: string }[];
}

export interface GcResult {
  dryRun: boolean;
  liveVersions: number;
  reachableObjects: number;
  unreachableObjects: number;
  /** Objects deleted (or that would be, with dryRun). */
  sweptObjects: number;
  sweptBytes: number;
  /** Unreachable objects kept for now: too recent, or not yet unreachable for a whole grace period. */
  deferredObjects: number;
  deferredBytes: number;
  /** Bytes of packs and temp files that unfinished pushes left, removed once old. */
  abandonedBytes: number;
  graceSeconds: number;
  seconds: number;
  /** Packs removed whole (every object in them swept), in a repository of packs. */
  packsDeleted?: number;
  /** Packs rewritten without their swept objects (too little of them was still needed). */
  packsRewritten?: number;
  /** Bytes copied into new packs by those rewrites. */
  repackedBytes?: number;
  /** Bytes of swept objects left in packs that are still mostly needed (below --repack-below). */
  deadBytesKept?: number;
}

/** What `tv repair index` found and did. */
export interface RepairResult {
  /** Packs in the store. */
  packsListed: number;
  /** Packs no index object named, indexed again from their trailers. */
  packsIndexed: number;
  /** Packs an index object named that the store no longer holds, dropped from the index. */
  packsMissing: number;
  /** Index objects that failed their checks, replaced and removed. */
  damagedIndexObjects: number;
  /** Loose objects (manifests, version records) no index object named, named now. */
  looseIndexed: number;
  /** Packs whose trailer is unreadable, left as they are: "key: why". */
  unreadablePacks: string[];
  /** Objects only the missing packs held: `tv verify` names the versions that need them. */
  objectsLost: number;
  seconds: number;
}

/** What `tv repair packs` did: corrupt copies of objects in packs dropped from the index. */
export interface PackRepairResult {
  /** Packs whose copies were read back and checked against their hashes. */
  packsChecked: number;
  copiesChecked: number;
  /**
   * Corrupt copies dropped from the index (their cache keys removed first): the object's hash,
   * the pack (name), and whether an intact copy of the object stays in another pack.
   */
  dropped: { hash: string; pack: string; intactCopy: boolean }[];
  /**
   * Objects no intact copy holds any more, and the live versions and files that need them (the
   * first few): pushing those files again (`--no-cache --allow-same`) stores them again.
   */
  toPushAgain: { hash: string; neededBy: { version: string; file?: string }[] }[];
  /** Objects whose Redis keys were removed, before any index object changed (0 with no cache). */
  cacheKeysRemoved: number;
  /**
   * Bytes of dropped copies left in packs that keep intact objects: dead bytes, named by no
   * index, until gc rewrites those packs.
   */
  deadBytes: number;
  /** Packs that held nothing but corrupt copies: deleted (nothing in them could be read). */
  packsDeleted: number;
  /** Packs that could not be checked, left as they are: "key: why". */
  problems: string[];
  seconds: number;
}

/** Settings as the UI sees them: never a secret, only whether one is set. */
export interface Settings {
  /** A folder, file:// URL or s3://bucket/prefix; empty means the default local repository. */
  repository: string;
  s3Endpoint: string;
  s3Region: string;
  s3AccessKeyId: string;
  s3SecretAccessKeySet: boolean;
  /** redis://host:port (without password); empty means no cache. */
  redisUrl: string;
  redisPasswordSet: boolean;
  /** Uploads in flight at once. */
  uploadConcurrency: number;
  /** Pushes skip files that look as when last pushed from this machine (the files cache). */
  filesCache: boolean;
  /** How long a request S3 throttles (503 SlowDown) keeps being retried, in seconds. */
  retryForSeconds: number;
  /** False where settings come from the environment (browser mode, the command line). */
  editable: boolean;
}

/** Settings to save or test: a secret left out keeps the one already saved; "" clears it. */
export interface SettingsInput {
  repository: string;
  s3Endpoint: string;
  s3Region: string;
  s3AccessKeyId: string;
  s3SecretAccessKey?: string;
  redisUrl: string;
  redisPassword?: string;
  uploadConcurrency: number;
  /** Left out: kept as saved. */
  filesCache?: boolean;
  /** Left out: keeps the saved one. */
  retryForSeconds?: number;
}

export interface ConnectionTest {
  target: 's3' | 'redis';
  ok: boolean;
  /** What was reached, or exactly what failed. */
  message: string;
  latencyMs: number | null;
}
