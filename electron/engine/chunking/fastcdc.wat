;; The cut-point scanner of repository format 1, as WebAssembly. The same algorithm as
;; reference.ts (see scanner.ts), byte for byte; compiled by scripts/build-wasm.mjs.
;;
;; Memory layout:
;;   [0, 2048)            the gear table, 256 x i64, written by the host at configure time
;;   [OUT, OUT + 65544)   cut offsets found by one scan call, i32 each (at most WINDOW/64 + 1)
;;   [DATA, DATA+WINDOW)  the bytes to scan, written by the host before each scan call
(module
  (memory (export "memory") 19)
  (global $OUT i32 (i32.const 2048))
  (global $DATA i32 (i32.const 131072))
  (global $WINDOW i32 (i32.const 1048576))
  (export "OUT" (global $OUT))
  (export "DATA" (global $DATA))
  (export "WINDOW" (global $WINDOW))

  (global $min (mut i32) (i32.const 0))
  (global $avg (mut i32) (i32.const 0))
  (global $max (mut i32) (i32.const 0))
  ;; A cut happens when hash <u threshold: 2^(64 - zero high bits wanted).
  (global $thrSmall (mut i64) (i64.const 0))
  (global $thrLarge (mut i64) (i64.const 0))
  ;; Scanner state carried between calls: position in the current chunk and its hash.
  (global $pos (mut i32) (i32.const 0))
  (global $hash (mut i64) (i64.const 0))

  (func (export "configure") (param $min i32) (param $avg i32) (param $max i32)
        (param $bitsSmall i32) (param $bitsLarge i32)
    (global.set $min (local.get $min))
    (global.set $avg (local.get $avg))
    (global.set $max (local.get $max))
    (global.set $thrSmall (i64.shl (i64.const 1) (i64.extend_i32_u (i32.sub (i32.const 64) (local.get $bitsSmall)))))
    (global.set $thrLarge (i64.shl (i64.const 1) (i64.extend_i32_u (i32.sub (i32.const 64) (local.get $bitsLarge)))))
    (global.set $pos (i32.const 0))
    (global.set $hash (i64.const 0)))

  (func (export "reset")
    (global.set $pos (i32.const 0))
    (global.set $hash (i64.const 0)))

  ;; Scans DATA[0, len); writes the end offset of each chunk completed inside it to OUT and
  ;; returns how many. Addresses are absolute; $cs is where the current chunk started (it may lie
  ;; before DATA when the chunk began in an earlier call: signed arithmetic throughout).
  (func (export "scan") (param $len i32) (result i32)
    (local $i i32) (local $end i32) (local $cs i32) (local $t i32) (local $lim i32)
    (local $hash i64) (local $n i32) (local $thr i64)
    (local.set $i (global.get $DATA))
    (local.set $end (i32.add (global.get $DATA) (local.get $len)))
    (local.set $cs (i32.sub (local.get $i) (global.get $pos)))
    (local.set $hash (global.get $hash))
    (block $done
      (loop $chunk
        (block $cut
          ;; Skip the first min bytes: they cannot hold a cut.
          (local.set $t (i32.add (local.get $cs) (global.get $min)))
          (if (i32.lt_s (local.get $i) (local.get $t))
            (then (local.set $i (select (local.get $t) (local.get $end)
                                        (i32.lt_s (local.get $t) (local.get $end))))))
          (br_if $done (i32.ge_s (local.get $i) (local.get $end)))
          ;; Before avg: the stricter threshold.
          (local.set $thr (global.get $thrSmall))
          (local.set $t (i32.add (local.get $cs) (global.get $avg)))
          (local.set $lim (select (local.get $t) (local.get $end) (i32.lt_s (local.get $t) (local.get $end))))
          (if (i32.lt_s (local.get $i) (local.get $lim))
            (then
              (loop $small
                (local.set $hash (i64.add (i64.shl (local.get $hash) (i64.const 1))
                  (i64.load (i32.shl (i32.load8_u (local.get $i)) (i32.const 3)))))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br_if $cut (i64.lt_u (local.get $hash) (local.get $thr)))
                (br_if $small (i32.lt_s (local.get $i) (local.get $lim))))))
          (br_if $done (i32.ge_s (local.get $i) (local.get $end)))
          ;; From avg to max: the looser threshold.
          (local.set $thr (global.get $thrLarge))
          (local.set $t (i32.add (local.get $cs) (global.get $max)))
          (local.set $lim (select (local.get $t) (local.get $end) (i32.lt_s (local.get $t) (local.get $end))))
          (if (i32.lt_s (local.get $i) (local.get $lim))
            (then
              (loop $large
                (local.set $hash (i64.add (i64.shl (local.get $hash) (i64.const 1))
                  (i64.load (i32.shl (i32.load8_u (local.get $i)) (i32.const 3)))))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br_if $cut (i64.lt_u (local.get $hash) (local.get $thr)))
                (br_if $large (i32.lt_s (local.get $i) (local.get $lim))))))
          ;; At max the chunk ends regardless.
          (br_if $cut (i32.eq (local.get $i) (local.get $t)))
          (br $done))
        ;; A chunk ends at $i.
        (i32.store (i32.add (global.get $OUT) (i32.shl (local.get $n) (i32.const 2)))
                   (i32.sub (local.get $i) (global.get $DATA)))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (local.set $cs (local.get $i))
        (local.set $hash (i64.const 0))
        (br_if $chunk (i32.lt_s (local.get $i) (local.get $end)))))
    (global.set $pos (i32.sub (local.get $i) (local.get $cs)))
    (global.set $hash (local.get $hash))
    (local.get $n)))
