import type { ReportProgress } from '../../../shared/types';

/** What the readers of a report or diff have fetched so far (shared by every file's reader). */
export interface ReadCounter {
  /** Bytes of chunks fetched to read headers and compare bytes. */
  bytes: number;
  /** Chunks fetched. */
  chunks: number;
  /** Model file headers parsed. */
  headers: number;
}

export const newReadCounter = (): ReadCounter => ({ bytes: 0, chunks: 0, headers: 0 });

/**
 * The progress of one report or diff: files done, manifests read, headers parsed, bytes fetched.
 * Sent at most every `intervalMs` (and at each phase change), so a repository of thousands of
 * files sends a few events a second, not one per file.
 */
export class ReportTracker {
  readonly reads = newReadCounter();
  private readonly progress: ReportProgress = {
    phase: 'manifests',
    files: 0,
    filesDone: 0,
    manifestsRead: 0,
    headersRead: 0,
    bytesRead: 0,
  };
  private last = 0;

  constructor(
    private readonly report: ((p: ReportProgress) => void) | undefined,
    private readonly intervalMs = 100,
  ) {}

  manifestRead(): void {
    this.progress.manifestsRead++;
    this.emit();
  }

  startFiles(files: number): void {
    this.progress.phase = 'files';
    this.progress.files = files;
    this.emit(true);
  }

  fileDone(): void {
    this.progress.filesDone++;
    this.emit(this.progress.filesDone === this.progress.files);
  }

  private emit(force = false): void {
    if (!this.report) return;
    const now = performance.now();
    if (!force && now - this.last < this.intervalMs) return;
    this.last = now;
    this.progress.headersRead = this.reads.headers;
    this.progress.bytesRead = this.reads.bytes;
    this.report({ ...this.progress });
  }
}
