/**
 * Source of the codec worker thread. It is evaluated with `new Worker(src, {eval: true})`
 * because a worker needs a JavaScript file and this project runs from TypeScript sources in tests
 * and from dist/ in production; a string works in both without a copy step.
 *
 * One worker hosts many codecs on ONE QuickJS WebAssembly module (the module and the worker are
 * what cost ~12 MiB; see README "Codec sandbox"): each codec has its own QuickJS runtime (its
 * memory limit and time limit), and each device its own context in that runtime, so codec
 * globals persist across one device's calls but are never shared between devices. Limits:
 *  - time: QuickJS interrupt handler with a deadline, per call;
 *  - object heap: runtime.setMemoryLimit, per codec;
 *  - large strings/arrays: setMemoryLimit does not bound them in quickjs-emscripten 0.32
 *    (justjake/quickjs-emscripten#255, #271), so WebAssembly.Memory.prototype.grow is capped in
 *    this worker's realm (`capBytes` beyond the start, raised as codecs are loaded): growth past
 *    the cap fails, emscripten's malloc returns NULL and QuickJS throws "out of memory". After a
 *    timeout or memory exhaustion the codec's runtime (all its contexts) is disposed — its
 *    globals may be half-updated — and its memory is reused by the others (malloc's free list).
 * The main thread's watchdog terminates the worker if a call runs too long anyway; it reads the
 * start time and id of the running call from shared memory.
 *
 * Messages in: {type: "load", codec, source, capBytes} | {type: "call", id, codec, key, op, input};
 * out: {id, ok, value?, error?, kind?, broken?} and once {ready: true} (or {fatal: message}).
 */
export const CODEC_WORKER_SOURCE = String.raw`
"use strict";
const { parentPort, workerData } = require("node:worker_threads");
const { quickjsPath, timeoutMs, memoryBytes, heartbeat } = workerData;
// Shared with the main thread's watchdog: [0] start time (ms) of the running call (0 idle), [1] its id.
const beat = new Float64Array(heartbeat);

async function main() {
  const { newQuickJSWASMModule, shouldInterruptAfterDeadline } = require(quickjsPath);
  const Q = await newQuickJSWASMModule();
  const memory = Q.getWasmMemory();
  const base = memory.buffer.byteLength;
  let cap = base + memoryBytes;
  const grow = WebAssembly.Memory.prototype.grow;
  WebAssembly.Memory.prototype.grow = function (pages) {
    if (this === memory && this.buffer.byteLength + pages * 65536 > cap) throw new RangeError("codec memory limit");
    return grow.call(this, pages);
  };

  const WRAPPER = "\n;function __eclor_call(op, json) {" +
    "var input = JSON.parse(json);" +
    "if (op === 'decode') { input.recvTime = new Date(input.recvTime); input.variables = {};" +
    // TTN v3 / ChirpStack v4 first; then the legacy entry points, which return the data itself:
    // TTN v2 Decoder(bytes, port) and ChirpStack v3 Decode(fPort, bytes, variables).
    "if (typeof decodeUplink === 'function') return JSON.stringify(decodeUplink(input));" +
    "if (typeof Decoder === 'function') return JSON.stringify({ data: Decoder(input.bytes, input.fPort) });" +
    "if (typeof Decode === 'function') return JSON.stringify({ data: Decode(input.fPort, input.bytes, input.variables) });" +
    "throw new Error('the codec has no decodeUplink (TTN v3), Decoder (TTN v2) or Decode (ChirpStack v3) function'); }" +
    "if (typeof encodeDownlink !== 'function') throw new Error('the codec has no encodeDownlink function');" +
    "return JSON.stringify(encodeDownlink(input)); }";

  /** name → { name, source, rt, contexts: Map<device key, {ctx, fn}>, broken } */
  const codecs = new Map();

  function context(c, key) {
    let e = c.contexts.get(key);
    if (e) return e;
    if (!c.rt) {
      c.rt = Q.newRuntime();
      c.rt.setMemoryLimit(memoryBytes);
      c.rt.setMaxStackSize(256 * 1024);
    }
    const ctx = c.rt.newContext();
    c.rt.setInterruptHandler(shouldInterruptAfterDeadline(Date.now() + Math.max(timeoutMs, 1000)));
    const r = ctx.evalCode(c.source + WRAPPER, c.name + ".js");
    if (r.error) {
      const d = ctx.dump(r.error);
      r.error.dispose();
      ctx.dispose();
      const err = new Error("codec " + c.name + " does not load: " + (d && d.message ? d.message : String(d)));
      err.load = true;
      throw err;
    }
    r.value.dispose();
    e = { ctx, fn: ctx.getProp(ctx.global, "__eclor_call") };
    c.contexts.set(key, e);
    return e;
  }
  function reset(c) {
    for (const e of c.contexts.values()) { e.fn.dispose(); e.ctx.dispose(); }
    c.contexts.clear();
    if (c.rt) c.rt.dispose();
    c.rt = undefined;
  }
  function call(m) {
    const c = codecs.get(m.codec);
    if (!c) return { ok: false, kind: "crashed", error: "codec " + m.codec + " is not loaded in this worker" };
    if (c.broken) return { ok: false, kind: "crashed", error: c.broken, broken: true };
    let e;
    try { e = context(c, m.key); } catch (err) {
      if (!err.load) throw err;
      c.broken = err.message;
      reset(c);
      return { ok: false, kind: "crashed", error: err.message, broken: true };
    }
    c.rt.setInterruptHandler(shouldInterruptAfterDeadline(Date.now() + timeoutMs));
    const ctx = e.ctx;
    const opH = ctx.newString(m.op);
    const arg = ctx.newString(JSON.stringify(m.input));
    const res = ctx.callFunction(e.fn, ctx.undefined, opH, arg);
    opH.dispose();
    arg.dispose();
    if (res.error) {
      const d = ctx.dump(res.error);
      res.error.dispose();
      const message = d && typeof d === "object" && "message" in d ? String(d.message) : String(d);
      let kind = "exception";
      if (message === "interrupted") kind = "timeout";
      // A null exception: QuickJS could not even allocate its "out of memory" error object.
      else if (d === null || message === "out of memory" || /memory limit|stack overflow|too long/.test(message)) kind = "memory";
      // After a timeout or memory exhaustion the codec's globals may be half-updated: start afresh.
      if (kind !== "exception") reset(c);
      return { ok: false, kind, error: kind === "timeout" ? "codec exceeded its time limit of " + timeoutMs + " ms" : d === null ? "out of memory" : message };
    }
    const s = ctx.getString(res.value);
    res.value.dispose();
    return { ok: true, value: s === undefined || s === "undefined" ? null : JSON.parse(s) };
  }

  parentPort.on("message", (m) => {
    if (m.type === "load") {
      if (!codecs.has(m.codec)) codecs.set(m.codec, { name: m.codec, source: m.source, rt: undefined, contexts: new Map(), broken: undefined });
      cap = base + m.capBytes;
      return;
    }
    let out;
    beat[1] = m.id;
    beat[0] = Date.now();
    try { out = call(m); } catch (e) { out = { ok: false, kind: "crashed", error: String(e && e.message || e) }; }
    beat[0] = 0;
    out.id = m.id;
    parentPort.postMessage(out);
    if (out.kind === "crashed" && !out.broken) process.exit(3);
  });
  parentPort.postMessage({ ready: true });
}
main().catch((e) => { parentPort.postMessage({ fatal: String(e && e.message || e) }); });
`;
