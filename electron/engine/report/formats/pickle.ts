import { LayoutError } from './model-format';

/**
 * A restricted pickle reader for PyTorch state dicts. It understands the opcodes torch.save
 * writes (protocols 2 to 5) and a short list of globals, each turned into plain data here:
 * OrderedDict, the tensor and parameter rebuild functions, storage types and a few harmless
 * helpers. It never imports or calls anything: any other global, or an opcode outside the list,
 * ends the read with "not readable as a state dict", naming what it met.
 */

export class PickleError extends LayoutError {
  override name = 'PickleError';
}

/** A storage of a checkpoint: data/<key> in the archive, `numel` elements of `storageType`. */
export interface StorageRef {
  kind: 'storage';
  storageType: string;
  key: string;
  numel: number;
}

export interface TensorRef {
  kind: 'tensor';
  storage: StorageRef;
  /** In elements. */
  offset: number;
  size: number[];
  stride: number[];
}

interface Global {
  kind: 'global';
  name: string;
}

export type PickleValue =
  | string
  | number
  | bigint
  | boolean
  | null
  | Uint8Array
  | PickleValue[]
  | Map<PickleValue, PickleValue>
  | StorageRef
  | TensorRef
  | Global;

const MARK = Symbol('mark');
type StackItem = PickleValue | typeof MARK;

const STORAGE_TYPES = new Set(
  [
    'Double',
    'Float',
    'Half',
    'BFloat16',
    'Long',
    'Int',
    'Short',
    'Char',
    'Byte',
    'Bool',
    'ComplexFloat',
    'ComplexDouble',
    'QInt8',
    'QUInt8',
    'QInt32',
    'QUInt4x2',
    'QUInt2x4',
    'Float8_e4m3fn',
    'Float8_e5m2',
    'Float8_e4m3fnuz',
    'Float8_e5m2fnuz',
    'UInt16',
    'UInt32',
    'UInt64',
    'Untyped',
  ].map((t) => `torch.${t}Storage`),
);

/** The globals a state dict may name, and what each becomes when called. */
const CALLABLE: Record<string, (args: PickleValue[]) => PickleValue> = {
  'collections.OrderedDict': () => new Map(),
  'torch._utils._rebuild_tensor_v2': (a) => tensor(a),
  'torch._utils._rebuild_tensor': (a) => tensor(a),
  'torch._utils._rebuild_parameter': (a) => a[0] as PickleValue,
  'torch._utils._rebuild_parameter_with_state': (a) => a[0] as PickleValue,
  'torch._tensor._rebuild_from_type_v2': (a) => call(a[0] as PickleValue, asArray(a[2])),
  '_codecs.encode': (a) => Buffer.from(String(a[0]), 'latin1'),
  'torch.device': (a) => a.map(String).join(':'),
};

const asArray = (v: PickleValue | undefined): PickleValue[] => {
  if (!Array.isArray(v))
    throw new PickleError('not readable as a state dict: a call without an argument tuple');
  return v;
};

const int = (v: PickleValue | undefined, what: string): number => {
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
    throw new PickleError(`not readable as a state dict: tensor ${what} is not a count`);
  return n;
};

function tensor(args: PickleValue[]): TensorRef {
  const storage = args[0] as StorageRef;
  if (storage?.kind !== 'storage')
    throw new PickleError('not readable as a state dict: a tensor without a storage');
  return {
    kind: 'tensor',
    storage,
    offset: int(args[1], 'offset'),
    size: asArray(args[2]).map((d) => int(d, 'size')),
    stride: asArray(args[3]).map((d) => int(d, 'stride')),
  };
}

function call(fn: PickleValue, args: PickleValue[]): PickleValue {
  const g = fn as Global;
  const impl = g?.kind === 'global' ? CALLABLE[g.name] : undefined;
  if (!impl)
    throw new PickleError(
      `not readable as a state dict: it calls ${g?.kind === 'global' ? g.name : 'a non-global'}`,
    );
  return impl(args);
}

function persistentLoad(pid: PickleValue): StorageRef {
  const t = pid as PickleValue[];
  const type = (t?.[1] as Global | undefined)?.name;
  if (
    !Array.isArray(t) ||
    t[0] !== 'storage' ||
    !type ||
    !STORAGE_TYPES.has(type) ||
    typeof t[2] !== 'string'
  )
    throw new PickleError(
      'not readable as a state dict: a persistent id that is not a tensor storage',
    );
  return {
    kind: 'storage',
    storageType: type.slice('torch.'.length),
    key: t[2],
    numel: int(t[4], 'storage size'),
  };
}

/** Reads the pickle `data` (a torch.save data.pkl) into plain values; never executes anything. */
export function readPickle(data: Uint8Array): PickleValue {
  const r = new PickleReader(Buffer.from(data.buffer, data.byteOffset, data.length));
  return r.run();
}

class PickleReader {
  private pos = 0;
  private stack: StackItem[] = [];
  private marks: number[] = [];
  private memo = new Map<number, PickleValue>();

  constructor(private readonly b: Buffer) {}

  private need(n: number): number {
    if (this.pos + n > this.b.length)
      throw new PickleError('pickle ends in the middle of an opcode');
    const at = this.pos;
    this.pos += n;
    return at;
  }
  private u8 = () => this.b.readUInt8(this.need(1));
  private u16 = () => this.b.readUInt16LE(this.need(2));
  private u32 = () => this.b.readUInt32LE(this.need(4));
  private u64 = () => {
    const n = this.b.readBigUInt64LE(this.need(8));
    if (n > BigInt(this.b.length)) throw new PickleError('pickle length runs past its end');
    return Number(n);
  };
  private raw = (n: number) => this.b.subarray(this.need(n), this.pos);
  private line = () => {
    const end = this.b.indexOf(0x0a, this.pos);
    if (end < 0) throw new PickleError('pickle ends in the middle of a global name');
    const text = this.b.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return text;
  };

  private pop(): PickleValue {
    if (this.stack.length === 0 || this.stack.at(-1) === MARK)
      throw new PickleError('pickle pops an empty stack');
    return this.stack.pop() as PickleValue;
  }
  private top(): PickleValue {
    const v = this.stack.at(-1);
    if (v === undefined || v === MARK) throw new PickleError('pickle reads an empty stack');
    return v;
  }
  private popMark(): PickleValue[] {
    const mark = this.marks.pop();
    if (mark === undefined) throw new PickleError('pickle closes a mark it never opened');
    const items = this.stack.splice(mark) as PickleValue[];
    items.shift(); // the MARK itself
    return items;
  }
  private push(v: PickleValue) {
    this.stack.push(v);
  }
  private memoGet(i: number) {
    if (!this.memo.has(i)) throw new PickleError(`pickle reads memo ${i}, never written`);
    this.push(this.memo.get(i) as PickleValue);
  }

  private setItems(target: PickleValue, items: PickleValue[]) {
    if (!(target instanceof Map))
      throw new PickleError('not readable as a state dict: items set on a non-dict');
    for (let i = 0; i + 1 < items.length; i += 2)
      target.set(items[i] as PickleValue, items[i + 1] as PickleValue);
  }
  private appendItems(target: PickleValue, items: PickleValue[]) {
    if (!Array.isArray(target))
      throw new PickleError('not readable as a state dict: items appended to a non-list');
    target.push(...items);
  }

  private global(name: string) {
    if (!(name in CALLABLE) && !STORAGE_TYPES.has(name))
      throw new PickleError(`not readable as a state dict: the pickle names ${name}`);
    this.push({ kind: 'global', name });
  }

  private long(n: number): number | bigint {
    const bytes = this.raw(n);
    if (n === 0) return 0;
    let value = 0n;
    for (let i = n - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i] as number);
    if ((bytes[n - 1] as number) & 0x80) value -= 1n << BigInt(8 * n);
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value;
  }

  run(): PickleValue {
    for (;;) {
      const op = this.u8();
      if (op === 0x2e) return this.pop(); // STOP
      this.step(op);
    }
  }

  // One opcode; grouped as the pickle module documents them.
  private step(op: number): void {
    switch (op) {
      case 0x80:
        this.u8();
        return; // PROTO
      case 0x95:
        this.u64();
        return; // FRAME
      case 0x7d:
        this.push(new Map());
        return; // EMPTY_DICT
      case 0x5d:
        this.push([]);
        return; // EMPTY_LIST
      case 0x29:
        this.push([]);
        return; // EMPTY_TUPLE
      case 0x28:
        this.marks.push(this.stack.length);
        this.stack.push(MARK);
        return; // MARK
      case 0x74:
        this.push(this.popMark());
        return; // TUPLE
      case 0x6c:
        this.push(this.popMark());
        return; // LIST
      case 0x64: {
        const m = new Map();
        this.setItems(m, this.popMark());
        this.push(m);
        return;
      } // DICT
      case 0x85:
        this.push([this.pop()]);
        return; // TUPLE1
      case 0x86: {
        const b = this.pop();
        this.push([this.pop(), b]);
        return;
      } // TUPLE2
      case 0x87: {
        const c = this.pop();
        const b = this.pop();
        this.push([this.pop(), b, c]);
        return;
      } // TUPLE3
      case 0x61: {
        const v = this.pop();
        this.appendItems(this.top(), [v]);
        return;
      } // APPEND
      case 0x65: {
        const items = this.popMark();
        this.appendItems(this.top(), items);
        return;
      } // APPENDS
      case 0x73: {
        const v = this.pop();
        const k = this.pop();
        this.setItems(this.top(), [k, v]);
        return;
      } // SETITEM
      case 0x75: {
        const items = this.popMark();
        this.setItems(this.top(), items);
        return;
      } // SETITEMS
      case 0x58:
        this.push(this.raw(this.u32()).toString('utf8'));
        return; // BINUNICODE
      case 0x8c:
        this.push(this.raw(this.u8()).toString('utf8'));
        return; // SHORT_BINUNICODE
      case 0x8d:
        this.push(this.raw(this.u64()).toString('utf8'));
        return; // BINUNICODE8
      case 0x54:
        this.push(this.raw(this.u32()).toString('latin1'));
        return; // BINSTRING
      case 0x55:
        this.push(this.raw(this.u8()).toString('latin1'));
        return; // SHORT_BINSTRING
      case 0x42:
        this.push(Buffer.from(this.raw(this.u32())));
        return; // BINBYTES
      case 0x43:
        this.push(Buffer.from(this.raw(this.u8())));
        return; // SHORT_BINBYTES
      case 0x8e:
        this.push(Buffer.from(this.raw(this.u64())));
        return; // BINBYTES8
      case 0x4a:
        this.push(this.b.readInt32LE(this.need(4)));
        return; // BININT
      case 0x4b:
        this.push(this.u8());
        return; // BININT1
      case 0x4d:
        this.push(this.u16());
        return; // BININT2
      case 0x8a:
        this.push(this.long(this.u8()));
        return; // LONG1
      case 0x8b:
        this.push(this.long(this.u32()));
        return; // LONG4
      case 0x47:
        this.push(this.b.readDoubleBE(this.need(8)));
        return; // BINFLOAT
      case 0x4e:
        this.push(null);
        return; // NONE
      case 0x88:
        this.push(true);
        return; // NEWTRUE
      case 0x89:
        this.push(false);
        return; // NEWFALSE
      case 0x63:
        this.global(`${this.line()}.${this.line()}`);
        return; // GLOBAL
      case 0x93: {
        const name = this.pop();
        this.global(`${String(this.pop())}.${String(name)}`);
        return;
      } // STACK_GLOBAL
      case 0x52: {
        const args = asArray(this.pop());
        this.push(call(this.pop(), args));
        return;
      } // REDUCE
      case 0x81: {
        const args = asArray(this.pop());
        this.push(call(this.pop(), args));
        return;
      } // NEWOBJ
      case 0x62:
        this.pop();
        this.top();
        return; // BUILD: object state (OrderedDict._metadata) is not needed
      case 0x51:
        this.push(persistentLoad(this.pop()));
        return; // BINPERSID
      case 0x71:
        this.memo.set(this.u8(), this.top());
        return; // BINPUT
      case 0x72:
        this.memo.set(this.u32(), this.top());
        return; // LONG_BINPUT
      case 0x94:
        this.memo.set(this.memo.size, this.top());
        return; // MEMOIZE
      case 0x68:
        this.memoGet(this.u8());
        return; // BINGET
      case 0x6a:
        this.memoGet(this.u32());
        return; // LONG_BINGET
      case 0x30:
        this.pop();
        return; // POP
      case 0x31:
        this.popMark();
        return; // POP_MARK
      case 0x32:
        this.push(this.top());
        return; // DUP
      default:
        throw new PickleError(
          `not readable as a state dict: pickle opcode 0x${op.toString(16)} at byte ${this.pos - 1}`,
        );
    }
  }
}
