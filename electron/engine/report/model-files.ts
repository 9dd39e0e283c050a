import type {
  ChunkRun,
  MetadataChange,
  ModelFormatName,
  TensorChange,
} from '../../../shared/types';
import type { Manifest } from '../repository/format';
import type { Repository } from '../repository/repository';
import { ChunkReadError, FileReader } from './file-reader';
import { gguf } from './formats/gguf';
import {
  hasExtension,
  LayoutError,
  type ModelFormat,
  type ModelLayout,
} from './formats/model-format';
import { onnx } from './formats/onnx';
import { pytorch } from './formats/pytorch';
import { safetensors } from './formats/safetensors';
import { compareMetadata, compareNodes } from './metadata';
import type { ReadCounter } from './progress';
import { compareTensorTables, describeTensor } from './tensors';

/** Every format read tensor by tensor; the report and the diff know them only through here. */
export const FORMATS: readonly ModelFormat[] = [safetensors, gguf, onnx, pytorch];
const EXTENSIONS = FORMATS.flatMap((f) => f.extensions);
const LABEL: Record<ModelFormatName, string> = {
  safetensors: 'safetensors',
  gguf: 'GGUF',
  onnx: 'ONNX',
  pytorch: 'PyTorch checkpoint',
};

/** The files of one version, opened on demand: each manifest read once, each reader kept. */
export class VersionFiles {
  readonly sizes: Map<string, number>;
  private readonly hashes: Map<string, string>;
  private readonly readers = new Map<string, Promise<FileReader | undefined>>();

  constructor(
    private readonly repo: Repository,
    files: readonly { path: string; size: number; manifest: string }[],
    /** Counts what the readers fetch and parse (a report's progress). */
    readonly reads?: ReadCounter,
  ) {
    this.sizes = new Map(files.map((f) => [f.path, f.size]));
    this.hashes = new Map(files.map((f) => [f.path, f.manifest]));
  }

  /**
   * A manifest the caller has read already (the report reads each for its chunk map): versions
   * holding the file with that manifest get it without reading it again, and share one reader.
   */
  static remember(
    path: string,
    hash: string,
    manifest: Manifest,
    ...versions: (VersionFiles | undefined)[]
  ): void {
    let reader: FileReader | undefined;
    for (const v of versions)
      if (v && v.hashes.get(path) === hash && !v.readers.has(path))
        v.readers.set(
          path,
          Promise.resolve((reader ??= new FileReader(v.repo, manifest, v.reads))),
        );
  }

  open = (path: string): Promise<FileReader | undefined> => {
    let reader = this.readers.get(path);
    if (!reader) {
      const hash = this.hashes.get(path);
      reader =
        hash === undefined
          ? Promise.resolve(undefined)
          : this.repo.readManifest(hash).then((m) => new FileReader(this.repo, m, this.reads));
      this.readers.set(path, reader);
    }
    return reader;
  };
}

interface ReadResult {
  format?: ModelFormat;
  layout?: ModelLayout;
  /** Why the file could not be read, in one line. */
  problem?: string;
}

const labelled = (format: ModelFormat, message: string) =>
  message.startsWith(LABEL[format.name]) ? message : `${LABEL[format.name]}: ${message}`;

/** Detects the file's format from its path and first bytes, and reads its tensor table. */
async function readModel(files: VersionFiles, path: string): Promise<ReadResult> {
  if (!hasExtension(path, EXTENSIONS)) return {};
  const reader = await files.open(path);
  if (!reader) return {};
  let format: ModelFormat | undefined;
  try {
    const head = await reader.read(0, 64);
    format = FORMATS.find((f) => f.detect(path, head));
    if (!format) return {};
    const layout = await format.read(reader, { path, files: files.sizes });
    if (files.reads) files.reads.headers++;
    return { format, layout };
  } catch (err) {
    if (err instanceof LayoutError) return { format, problem: labelled(format!, err.message) };
    if (err instanceof ChunkReadError) return { format, problem: err.message };
    throw err;
  }
}

/**
 * The older file's layout: the newer one's when the older file holds the same bytes wherever the
 * newer header was read (a fine-tune that left the header alone), else read.
 */
async function readOlder(
  older: VersionFiles,
  path: string,
  newer: VersionFiles,
  layout: ModelLayout,
): Promise<ReadResult> {
  const [a, b] = await Promise.all([newer.open(path), older.open(path)]);
  if (a && b && a.sameBytesRead(b)) return { layout };
  return readModel(older, path);
}

/**
 * The layouts of a model file in two versions (for delta statistics): each side read (or the
 * newer one reused when the older file's header bytes are the same), or why not.
 */
export async function readLayouts(
  path: string,
  newer: VersionFiles,
  older: VersionFiles,
): Promise<{ newer: ModelLayout; older: ModelLayout } | { problem: string }> {
  const n = await readModel(newer, path);
  if (!n.layout)
    return { problem: n.problem ?? `${path} is not a model file read tensor by tensor` };
  const o = await readOlder(older, path, newer, n.layout);
  if (!o.layout)
    return { problem: o.problem ?? `the older ${path} is not ${LABEL[n.layout.format]}` };
  return { newer: n.layout, older: o.layout };
}

export interface ModelFileChanges {
  format?: ModelFormatName;
  tensors?: TensorChange[];
  metadata?: MetadataChange[];
  note?: string;
}

/**
 * A model file of the newer version against the same path in the older one (absent: every
 * tensor and key added): tensors, metadata and graph nodes compared. A file that is not a model
 * gives nothing; one that claims a format and is damaged gives a note and is compared as an
 * opaque file.
 */
export async function compareModelFile(
  path: string,
  newer: VersionFiles,
  older: VersionFiles | undefined,
): Promise<ModelFileChanges> {
  const n = await readModel(newer, path);
  if (!n.layout)
    return {
      ...(n.format && { format: n.format.name }),
      ...(n.problem && { note: `${n.problem}; compared as an opaque file` }),
    };
  const format = n.layout.format;
  const notes = [...(n.layout.warnings ?? [])];
  const o = older ? await readOlder(older, path, newer, n.layout) : {};
  if (!o.layout && o.problem) notes.push(`the older file is not readable (${o.problem})`);
  else if (!o.layout && o.format) notes.push(`the older file was not ${LABEL[format]}`);
  const result: ModelFileChanges = { format };
  if (o.layout && older) {
    result.tensors = await compareTensorTables(
      n.layout.tensors,
      o.layout.tensors,
      { open: newer.open, path },
      { open: older.open, path },
    );
    result.metadata = compareMetadata(n.layout.metadata, o.layout.metadata);
    const nodes =
      n.layout.nodes && o.layout.nodes ? compareNodes(n.layout.nodes, o.layout.nodes) : undefined;
    const entry = result.metadata.find((m) => m.key === 'graph.nodes');
    if (nodes && entry)
      Object.assign(entry, {
        status: 'modified',
        detail: nodes,
        before: entry.before ?? entry.value,
      });
  } else {
    result.tensors = n.layout.tensors.map((t) => describeTensor(t, 'added'));
    result.metadata = compareMetadata(n.layout.metadata, undefined);
  }
  if (notes.length) result.note = notes.join('; ');
  return result;
}

/** Bytes of [start, end) that lie in runs of new chunks. */
function newBytesIn(runs: ChunkRun[], start: number, end: number): number {
  let lo = 0;
  let hi = runs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const r = runs[mid] as ChunkRun;
    if (r.offset + r.length <= start) lo = mid + 1;
    else hi = mid;
  }
  let bytes = 0;
  for (let i = lo; i < runs.length && (runs[i] as ChunkRun).offset < end; i++) {
    const r = runs[i] as ChunkRun;
    if (r.source === 'new') bytes += Math.min(end, r.offset + r.length) - Math.max(start, r.offset);
  }
  return bytes;
}

/**
 * Which tensors the new chunks carry: each tensor of a version report gets the bytes of it held
 * in new chunks (from the chunk map of the file holding its data), and a file holding another's
 * external data says so.
 */
export function attributeNewChunks(
  files: { path: string; runs: ChunkRun[]; tensors?: TensorChange[]; note?: string }[],
): void {
  const byPath = new Map(files.map((f) => [f.path, f]));
  const holders = new Map<string, { of: string; count: number }>();
  for (const f of files) {
    for (const t of f.tensors ?? []) {
      if (t.status === 'removed' || t.offset === undefined) continue;
      const holder = byPath.get(t.file ?? f.path);
      if (holder) t.newBytes = newBytesIn(holder.runs, t.offset, t.offset + t.bytes);
      if (t.file && holder)
        holders.set(t.file, { of: f.path, count: (holders.get(t.file)?.count ?? 0) + 1 });
    }
  }
  for (const [path, { of, count }] of holders) {
    const f = byPath.get(path);
    if (f && !f.note)
      f.note = `holds the data of ${count} ${count === 1 ? 'tensor' : 'tensors'} of ${of}`;
  }
}

/**
 * A model file whose own bytes did not change may still point at data that did (ONNX external
 * data): its changes when any tensor differs, else nothing.
 */
export async function externalDataChanges(
  path: string,
  newer: VersionFiles,
  older: VersionFiles,
): Promise<ModelFileChanges> {
  if (!hasExtension(path, onnx.extensions)) return {};
  const changes = await compareModelFile(path, newer, older);
  if (!changes.tensors?.some((t) => t.status !== 'unchanged' && t.file !== undefined)) return {};
  const note = 'the file is unchanged; external data its tensors point to changed';
  return { ...changes, note: changes.note ? `${changes.note}; ${note}` : note };
}
