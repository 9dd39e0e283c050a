import { GEAR } from './gear';
import { FASTCDC_WASM_BASE64 } from './generated/fastcdc-wasm';
import { cutBits, validateParams, type ChunkingParams } from './params';
import type { CutScanner } from './scanner';

interface ScannerExports {
  memory: WebAssembly.Memory;
  OUT: WebAssembly.Global;
  DATA: WebAssembly.Global;
  WINDOW: WebAssembly.Global;
  configure(min: number, avg: number, max: number, bitsSmall: number, bitsLarge: number): void;
  reset(): void;
  scan(len: number): number;
}

let compiled: WebAssembly.Module | undefined;
function wasmModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(Buffer.from(FASTCDC_WASM_BASE64, 'base64'));
  return compiled;
}

/**
 * The fast path: the scanner compiled to WebAssembly from fastcdc.wat. Input is copied into the
 * module's memory a window (1 MiB) at a time; the scanner's state lives in the module between
 * calls, so the window size never changes a cut point.
 */
export class WasmScanner implements CutScanner {
  private readonly wasm: ScannerExports;
  private readonly bytes: Uint8Array;
  private readonly out: Int32Array;
  private readonly dataOffset: number;
  private readonly window: number;

  constructor(readonly params: ChunkingParams) {
    validateParams(params);
    this.wasm = new WebAssembly.Instance(wasmModule()).exports as unknown as ScannerExports;
    const buffer = this.wasm.memory.buffer;
    this.bytes = new Uint8Array(buffer);
    this.dataOffset = this.wasm.DATA.value as number;
    this.window = this.wasm.WINDOW.value as number;
    this.out = new Int32Array(buffer, this.wasm.OUT.value as number, (this.window >>> 6) + 2);
    new BigUint64Array(buffer, 0, 256).set(GEAR);
    const bits = cutBits(params);
    this.wasm.configure(params.minSize, params.avgSize, params.maxSize, bits.small, bits.large);
  }

  reset(): void {
    this.wasm.reset();
  }

  push(data: Uint8Array): number[] {
    const cuts: number[] = [];
    for (let start = 0; start < data.length; start += this.window) {
      const piece = data.subarray(start, Math.min(start + this.window, data.length));
      this.bytes.set(piece, this.dataOffset);
      const n = this.wasm.scan(piece.length);
      for (let k = 0; k < n; k++) cuts.push(start + (this.out[k] as number));
    }
    return cuts;
  }
}
